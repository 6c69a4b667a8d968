/// The Collatz tables in ClickHouse, as docker/clickhouse/schema.sql states the contract with
/// the Metabase cards and docker/ENVIRONMENT.md (there with the database fixed to `collatz`;
/// here the database is a parameter). The SQL runs unchanged on ClickHouse 18.16 (Debian, what
/// the tests here start) and on current releases (what the docker setup runs).
///
/// ```
/// data_series     number UInt64, step UInt32, value Float64, value_text String, timestamp DateTime
///                 ReplacingMergeTree ORDER BY (number, step)   -- one row per step; replays collapse
/// chains          number UInt64, steps max(UInt32), max_value max(Float64),
///                 max_value_text argMax(String, Float64), first_seen min, last_seen max
///                 AggregatingMergeTree ORDER BY number         -- fed by chains_mv
/// passes_through  value Float64, value_text String, number UInt64
///                 ReplacingMergeTree ORDER BY (value, value_text, number)  -- fed by passes_through_mv
/// ```
///
/// - Exact values: 18.16 has no UInt128, and its `toString(Decimal(38, 0))` garbles 38-digit
///   values, so the exact value is `value_text` (decimal digits, no sign, no leading zeros)
///   next to `value` as Float64 (exact to 2^53, for ordering, ranges and plots). Exact numeric
///   order of two texts is (length, text); Float64 rounding is monotonic, so ordering by
///   `value` and then by (length, text) is the exact order.
/// - Replays: the sink is at-least-once. `data_series` folds duplicate (number, step) rows at
///   merge time, and every answer is right before merges: max/argMax are idempotent
///   (`chains`), DISTINCT / GROUP BY absorb duplicates (pass-through, plot).
/// - `chains` keeps one aggregate row per start number after merges, so the longest-chain and
///   highest-value answers read ~1 row per start number instead of ~100s.
/// - `passes_through` (ours, beyond the docker contract) is the same rows ordered by value, so
///   "which chains pass through x" is an index lookup instead of a full scan; it doubles the
///   stored rows, the price of that speed.
public struct ClickHouseSchema: Sendable {
    public let database: String

    public enum Failure: Error, CustomStringConvertible {
        case badIdentifier(String)
        public var description: String {
            switch self {
            case .badIdentifier(let s): return "'\(s)' is not a plain ClickHouse identifier ([A-Za-z_][A-Za-z0-9_]*)"
            }
        }
    }

    public init(database: String = "collatz") throws {
        guard Self.isPlainIdentifier(database) else { throw Failure.badIdentifier(database) }
        self.database = database
    }

    public static func isPlainIdentifier(_ s: String) -> Bool {
        guard let first = s.utf8.first, s.utf8.count <= 64 else { return false }
        func letter(_ c: UInt8) -> Bool { (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F }
        return letter(first) && s.utf8.allSatisfy { letter($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }

    public var dataTable: String { "\(database).data_series" }
    public var chainsTable: String { "\(database).chains" }
    public var passesTable: String { "\(database).passes_through" }

    /// The largest value the API accepts as `x` (39 digits would already pass UInt128).
    public static let maxQueryValue: UInt128 = .max

    /// Idempotent DDL, in order (IF NOT EXISTS everywhere).
    public var statements: [String] {
        [
            "CREATE DATABASE IF NOT EXISTS \(database)",
            """
            CREATE TABLE IF NOT EXISTS \(dataTable)
            (
                number     UInt64,
                step       UInt32,
                value      Float64,
                value_text String,
                timestamp  DateTime
            )
            ENGINE = ReplacingMergeTree()
            ORDER BY (number, step)
            """,
            """
            CREATE TABLE IF NOT EXISTS \(chainsTable)
            (
                number         UInt64,
                steps          AggregateFunction(max, UInt32),
                max_value      AggregateFunction(max, Float64),
                max_value_text AggregateFunction(argMax, String, Float64),
                first_seen     AggregateFunction(min, DateTime),
                last_seen      AggregateFunction(max, DateTime)
            )
            ENGINE = AggregatingMergeTree()
            ORDER BY number
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS \(database).chains_mv TO \(chainsTable) AS
            SELECT
                number,
                maxState(step)                 AS steps,
                maxState(value)                AS max_value,
                argMaxState(value_text, value) AS max_value_text,
                minState(timestamp)            AS first_seen,
                maxState(timestamp)            AS last_seen
            FROM \(dataTable)
            GROUP BY number
            """,
            """
            CREATE TABLE IF NOT EXISTS \(passesTable)
            (
                value      Float64,
                value_text String,
                number     UInt64
            )
            ENGINE = ReplacingMergeTree()
            ORDER BY (value, value_text, number)
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS \(database).passes_through_mv TO \(passesTable) AS
            SELECT value, value_text, number FROM \(dataTable)
            """,
        ]
    }

    /// Creates the database, tables and views if missing.
    public func create(on client: ClickHouseClient) async throws {
        for statement in statements { _ = try await client.execute(statement) }
    }
}
