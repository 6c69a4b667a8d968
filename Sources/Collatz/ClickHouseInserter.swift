import Logging
import NIOCore

/// One row of `data_series`: a step and the Kafka record's timestamp (seconds since 1970,
/// so that a replayed row keeps its time).
public struct CollatzRow: Sendable, Hashable {
    public var record: CollatzRecord
    public var timestamp: UInt32

    public init(_ record: CollatzRecord, timestamp: UInt32) {
        self.record = record
        self.timestamp = timestamp
    }
}

/// The wire format of an INSERT. RowBinary is the smaller and faster; TabSeparated is
/// readable when debugging.
public enum ClickHouseInsertFormat: String, Sendable, CaseIterable {
    case rowBinary = "RowBinary"
    case tabSeparated = "TabSeparated"

    /// Encodes rows for `INSERT INTO data_series (number, step, value, value_text, timestamp)`.
    /// RowBinary: UInt64 LE, UInt32 LE, Float64 LE, String (LEB128 length + bytes), DateTime
    /// (UInt32 LE seconds).
    public func encode(_ rows: some Collection<CollatzRow>, into buffer: inout ByteBuffer) {
        var digits = [UInt8]()
        digits.reserveCapacity(40)
        switch self {
        case .rowBinary:
            buffer.reserveCapacity(minimumWritableBytes: rows.count * 48)
            for row in rows {
                let r = row.record
                buffer.writeInteger(r.number, endianness: .little)
                buffer.writeInteger(r.step, endianness: .little)
                buffer.writeInteger(Double(r.value).bitPattern, endianness: .little)
                digits.removeAll(keepingCapacity: true)
                CollatzRecord.appendDecimal(r.value, to: &digits)
                buffer.writeInteger(UInt8(digits.count))  // ≤ 39 digits: one LEB128 byte
                buffer.writeBytes(digits)
                buffer.writeInteger(row.timestamp, endianness: .little)
            }
        case .tabSeparated:
            var line = [UInt8]()
            line.reserveCapacity(120)
            for row in rows {
                let r = row.record
                line.removeAll(keepingCapacity: true)
                CollatzRecord.appendDecimal(UInt128(r.number), to: &line)
                line.append(0x09)
                CollatzRecord.appendDecimal(UInt128(r.step), to: &line)
                line.append(0x09)
                line.append(contentsOf: Self.floatText(r.value).utf8)
                line.append(0x09)
                CollatzRecord.appendDecimal(r.value, to: &line)
                line.append(0x09)
                CollatzRecord.appendDecimal(UInt128(row.timestamp), to: &line)
                line.append(0x0A)
                buffer.writeBytes(line)
            }
        }
    }

    /// Float64 text ClickHouse reads back to the same double: plain digits up to 2^53,
    /// Swift's shortest round-trip form above (e.g. `2.0722398914405052e+19`).
    static func floatText(_ v: UInt128) -> String {
        v <= 1 << 53 ? String(v) : "\(Double(v))"
    }
}

/// Exponential backoff with full jitter, capped.
public struct InsertRetryPolicy: Sendable {
    public var initialDelay: Duration
    public var maxDelay: Duration
    /// nil: retry until cancelled (what the sink wants: never drop a batch).
    public var maxAttempts: Int?

    public init(initialDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(10), maxAttempts: Int? = nil) {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
    }

    /// The delay before attempt `attempt + 1` (attempt counts from 1).
    public func delay(afterAttempt attempt: Int) -> Duration {
        let factor = 1 << min(max(attempt - 1, 0), 20)
        let ceiling = min(initialDelay * factor, maxDelay)
        let ms = max(1, ceiling.components.seconds * 1000 + ceiling.components.attoseconds / 1_000_000_000_000_000)
        return .milliseconds(Int64.random(in: ms / 2 ... ms))
    }
}

/// Writes batches of records into `data_series`, one INSERT per batch, retrying with backoff
/// while ClickHouse is down or overloaded.
public struct ClickHouseInserter: Sendable {
    public let client: ClickHouseClient
    public let schema: ClickHouseSchema
    public var format: ClickHouseInsertFormat
    public var retry: InsertRetryPolicy
    let logger: Logger

    public init(client: ClickHouseClient, schema: ClickHouseSchema, format: ClickHouseInsertFormat = .rowBinary,
                retry: InsertRetryPolicy = InsertRetryPolicy(), logger: Logger = Logger(label: "petrel.clickhouse")) {
        self.client = client
        self.schema = schema
        self.format = format
        self.retry = retry
        self.logger = logger
    }

    static let columns = ["number", "step", "value", "value_text", "timestamp"]

    /// One INSERT, no retry.
    public func insertOnce(_ records: some Collection<CollatzRow>) async throws {
        guard !records.isEmpty else { return }
        var buffer = ByteBufferAllocator().buffer(capacity: records.count * 48)
        format.encode(records, into: &buffer)
        try await client.insert(table: schema.dataTable, columns: Self.columns, format: format.rawValue, data: buffer)
    }

    /// Inserts `records`, retrying retriable failures with backoff until it succeeds, the
    /// policy's attempts run out, or the task is cancelled (then `CancellationError`).
    /// `onRetry(attempt, error)` is told about every failed attempt (logging, metrics, pausing).
    /// Returns the number of attempts it took.
    @discardableResult
    public func insert(_ records: some Collection<CollatzRow>,
                       onRetry: (Int, any Error) -> Void = { _, _ in }) async throws -> Int {
        guard !records.isEmpty else { return 0 }
        var buffer = ByteBufferAllocator().buffer(capacity: records.count * 48)
        format.encode(records, into: &buffer)
        var attempt = 0
        while true {
            attempt += 1
            try Task.checkCancellation()
            do {
                try await client.insert(table: schema.dataTable, columns: Self.columns, format: format.rawValue, data: buffer)
                return attempt
            } catch let error as ClickHouseError where error.isRetriable {
                if let max = retry.maxAttempts, attempt >= max { throw error }
                onRetry(attempt, error)
                let delay = retry.delay(afterAttempt: attempt)
                logger.warning("ClickHouse insert failed, retrying", metadata: [
                    "rows": "\(records.count)", "attempt": "\(attempt)", "retry_in": "\(delay)", "error": "\(error)",
                ])
                try await Task.sleep(for: delay)
            }
        }
    }
}
