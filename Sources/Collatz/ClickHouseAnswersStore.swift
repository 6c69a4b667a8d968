/// The four answers from the ClickHouse tables of `ClickHouseSchema`. Every query is correct
/// while duplicates from replays are still unmerged: maxima are idempotent and the lists use
/// DISTINCT / GROUP BY. Exact values are read from the `value_text` columns.
public struct ClickHouseAnswersStore: AnswersStore {
    public let client: ClickHouseClient
    public let schema: ClickHouseSchema
    /// A chain longer than this is cut in `chain(of:)` (the longest known chains below 2^64
    /// have under 2,000 steps).
    public var maxChainSteps: Int = 100_000

    public init(client: ClickHouseClient, schema: ClickHouseSchema) {
        self.client = client
        self.schema = schema
    }

    public func longestChain() async throws -> LongestChain? {
        let rows = try await select("""
            SELECT number, maxMerge(steps) AS s FROM \(schema.chainsTable)
            GROUP BY number ORDER BY s DESC, number ASC LIMIT 1
            """)
        guard let row = rows.first else { return nil }
        guard row.count == 2, let n = UInt64(row[0]), let s = UInt64(row[1]) else { throw malformed(row) }
        return LongestChain(number: n, steps: s)
    }

    /// Ordered by the Float64 peak, then by the exact text as (length, text): the exact order.
    public func highestValue() async throws -> HighestValue? {
        let rows = try await select("""
            SELECT number, t FROM (
                SELECT number, maxMerge(max_value) AS p, argMaxMerge(max_value_text) AS t
                FROM \(schema.chainsTable) GROUP BY number
            ) ORDER BY p DESC, length(t) DESC, t DESC, number ASC LIMIT 1
            """)
        guard let row = rows.first else { return nil }
        guard row.count == 2, let n = UInt64(row[0]), let v = UInt128(decimalDigits: row[1]) else { throw malformed(row) }
        return HighestValue(number: n, value: v)
    }

    /// An index range on the Float64 column (one ulp either side, whatever ClickHouse's float
    /// parser rounds to), then the exact text.
    public func numbersPassingThrough(_ x: UInt128, after: UInt64?, offset: Int = 0, limit: Int) async throws -> [UInt64] {
        guard x >= 1, limit > 0, offset >= 0 else { return [] }
        let approx = Double(x)
        var conditions = [
            "value >= \(approx.nextDown)", "value <= \(approx.nextUp)", "value_text = '\(x)'",
        ]
        if x <= UInt128(UInt64.max) { conditions.append("number != \(x)") }
        if let after { conditions.append("number > \(after)") }
        let rows = try await select("""
            SELECT DISTINCT number FROM \(schema.passesTable)
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY number LIMIT \(offset), \(limit)
            """)
        return try rows.map { row in
            guard row.count == 1, let n = UInt64(row[0]) else { throw malformed(row) }
            return n
        }
    }

    public func chain(of number: UInt64) async throws -> [ChainStep] {
        let rows = try await select("""
            SELECT step, any(value_text) FROM \(schema.dataTable) WHERE number = \(number)
            GROUP BY step ORDER BY step LIMIT \(maxChainSteps)
            """)
        return try rows.map { row in
            guard row.count == 2, let s = UInt64(row[0]), let v = UInt128(decimalDigits: row[1]) else { throw malformed(row) }
            return ChainStep(step: s, value: v)
        }
    }

    public func checkHealth() async throws {
        _ = try await client.execute("SELECT count() FROM system.tables WHERE database = '\(schema.database)'")
    }

    func select(_ sql: String) async throws -> [[Substring]] {
        let text = try await client.execute(sql + "\nFORMAT TabSeparated")
        return text.split(separator: "\n", omittingEmptySubsequences: true).map {
            $0.split(separator: "\t", omittingEmptySubsequences: false)
        }
    }

    func malformed(_ row: [Substring]) -> ClickHouseError {
        ClickHouseError(kind: .malformedResponse, message: "unexpected row: \(row.joined(separator: "\t").prefix(200))")
    }
}
