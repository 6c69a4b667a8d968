import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// `petrel clickhouse-sink` settings (docker/ENVIRONMENT.md names them).
public struct ClickHouseSinkConfiguration: Sendable {
    public var topic: String = "conjecture.data"
    /// Flush a batch at this many rows...
    public var batchRows: Int = 100_000
    /// ... or when its oldest row has waited this long.
    public var flushInterval: Duration = .seconds(1)
    /// Unparsable records go here, with the reason in the `petrel.error` header.
    public var deadLetterTopic: String = "conjecture.data.dead-letter"
    /// Backoff while ClickHouse (or the dead-letter topic) does not take a batch.
    public var retry = InsertRetryPolicy(initialDelay: .milliseconds(200), maxDelay: .seconds(10))
    /// The reader stops taking records at this many buffered (backpressure).
    public var maxBufferedRows: Int { max(batchRows * 2, 1_000) }

    public init() {}
}

/// A consumer group member that batches step records into ClickHouse.
///
/// - At-least-once: offsets are committed only after ClickHouse acknowledged the INSERT (and
///   dead letters were acknowledged by the broker); the tables make replays harmless.
/// - ClickHouse down or slow: the batch is retried with backoff, fetching is paused, the
///   reader stops at `maxBufferedRows`; nothing is committed until the batch lands, and the
///   worker resumes by itself. `/healthz` turns 503 after a minute of failure.
/// - An unparsable record goes to the dead-letter topic with the reason in a header, and a log
///   line; the sink keeps going.
/// - Graceful shutdown: stop taking records, flush and commit the batch, leave the group.
public final class ClickHouseSinkWorker: Service, Sendable {
    public let configuration: ClickHouseSinkConfiguration
    let source: any RecordBatchSource
    let deadLetters: any RecordPublisher
    let inserter: ClickHouseInserter
    let logger: Logger
    public let status: WorkerStatus
    let buffer = PendingRecords()

    public init(configuration: ClickHouseSinkConfiguration, source: any RecordBatchSource, deadLetters: any RecordPublisher,
                inserter: ClickHouseInserter, logger: Logger = Logger(label: "petrel.clickhouse-sink"),
                status: WorkerStatus = WorkerStatus(worker: "clickhouse-sink")) {
        self.configuration = configuration
        self.source = source
        self.deadLetters = deadLetters
        self.inserter = inserter
        self.logger = logger
        self.status = status
    }

    public func run() async throws {
        let buffer = self.buffer
        do {
            try await cancelWhenGracefulShutdown { try await self.createSchema() }
        } catch is CancellationError {
            await source.close()
            await deadLetters.close()
            return
        }
        let maxBuffered = configuration.maxBufferedRows
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [source] in
                try await source.run { record in
                    buffer.append(record)
                    while buffer.count >= maxBuffered && !buffer.isStopping {
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
                buffer.readerEnded()
            }
            do {
                try await withGracefulShutdownHandler {
                    try await self.flushLoop()
                } onGracefulShutdown: {
                    buffer.stop()
                }
            } catch {
                // Hard stop (cancellation) or a fatal error: leave the group so that the others
                // take the partitions over at once; uncommitted rows are replayed to them.
                buffer.stop()
                await source.close()
                group.cancelAll()
                await deadLetters.close()
                throw error
            }
            // Stopping: the last batch is in ClickHouse and committed; now leave the group.
            await source.close()
            group.cancelAll()
            try? await group.waitForAll()
        }
        await deadLetters.close()
        logger.info("clickhouse-sink: stopped", metadata: [
            "rows": "\(Int(status.counter("clickhouse_sink_rows_total")))",
            "dead_letters": "\(Int(status.counter("clickhouse_sink_dead_letters_total")))",
        ])
    }

    func createSchema() async throws {
        var attempt = 0
        while true {
            do {
                try await inserter.schema.create(on: inserter.client)
                status.recovered()
                return
            } catch let error as CancellationError {
                throw error
            } catch {
                attempt += 1
                status.failing("cannot create the ClickHouse schema: \(error)")
                logger.warning("clickhouse-sink: creating the schema failed, retrying",
                               metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                try await Task.sleep(for: configuration.retry.delay(afterAttempt: attempt))
            }
        }
    }

    /// Flushes due batches until stopped (then once more) or until the reader ends.
    func flushLoop() async throws {
        while true {
            let stopping = buffer.isStopping
            if stopping || buffer.isDue(maxRows: configuration.batchRows, maxDelay: configuration.flushInterval) {
                let records = buffer.take()
                if !records.isEmpty { try await flush(records) }
                if stopping { return }
                continue
            }
            if buffer.hasReaderEnded { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Parses, dead-letters, inserts (retrying until it lands), then commits.
    func flush(_ records: [IncomingRecord]) async throws {
        var rows = [CollatzRow]()
        rows.reserveCapacity(records.count)
        var dead = [(IncomingRecord, String)]()
        var next = [PartitionKey: Int64]()
        let now = UInt32(clamping: Int64(Date().timeIntervalSince1970))
        for record in records {
            next[record.partitionKey] = max(next[record.partitionKey] ?? 0, record.offset + 1)
            guard let value = record.value else {
                dead.append((record, "record has no value (null)"))
                continue
            }
            do {
                let parsed = try CollatzRecord.decode(json: value.readableBytesView)
                let seconds = record.timestamp >= 0 ? UInt32(clamping: record.timestamp / 1000) : now
                rows.append(CollatzRow(parsed, timestamp: seconds))
            } catch {
                dead.append((record, error.reason))
            }
        }
        if !dead.isEmpty { try await sendDeadLetters(dead) }
        if !rows.isEmpty { try await insert(rows) }
        await commit(next)
        status.add("clickhouse_sink_rows_total", Double(rows.count), help: "Rows inserted into ClickHouse.")
        status.add("clickhouse_sink_batches_total", help: "INSERTs acknowledged by ClickHouse.")
        status.set("clickhouse_sink_last_batch_rows", Double(rows.count), help: "Rows in the last batch.")
    }

    func insert(_ rows: [CollatzRow]) async throws {
        var attempt = 0
        var paused = false
        while true {
            do {
                try await inserter.insertOnce(rows)
                if paused {
                    await source.resume()
                    logger.info("clickhouse-sink: ClickHouse is back, fetching resumed",
                                metadata: ["rows": "\(rows.count)", "attempts": "\(attempt + 1)"])
                }
                status.recovered()
                return
            } catch let error as ClickHouseError {
                // Never drop a batch: retry everything. An error that looks permanent (a table
                // dropped or altered under us) gets the schema re-created before the next try.
                attempt += 1
                if !error.isRetriable {
                    logger.error("clickhouse-sink: ClickHouse refused the INSERT; re-creating the schema and retrying",
                                 metadata: ["error": "\(error)"])
                    try? await inserter.schema.create(on: inserter.client)
                }
                status.failing("ClickHouse does not take inserts: \(error)")
                status.add("clickhouse_sink_insert_retries_total", help: "Failed INSERT attempts.")
                if !paused {
                    paused = true
                    await source.pause()
                }
                let delay = configuration.retry.delay(afterAttempt: attempt)
                logger.warning("clickhouse-sink: INSERT failed, fetching paused, retrying", metadata: [
                    "rows": "\(rows.count)", "attempt": "\(attempt)", "retry_in": "\(delay)", "error": "\(error)",
                ])
                try await sleepUnlessHardStop(delay)
            }
        }
    }

    /// Backoff sleeps keep going through a graceful shutdown (the batch must land before its
    /// offsets are committed); only task cancellation (a hard stop) ends them.
    func sleepUnlessHardStop(_ delay: Duration) async throws {
        try await Task.sleep(for: delay)
    }

    func sendDeadLetters(_ dead: [(IncomingRecord, String)]) async throws {
        var attempt = 0
        while true {
            do {
                for (record, reason) in dead {
                    try await deadLetters.publish(OutgoingRecord(
                        topic: configuration.deadLetterTopic, key: record.key, value: record.value,
                        headers: [
                            ("petrel.error", ByteBuffer(string: reason)),
                            ("petrel.source.topic", ByteBuffer(string: record.topic)),
                            ("petrel.source.partition", ByteBuffer(string: String(record.partition))),
                            ("petrel.source.offset", ByteBuffer(string: String(record.offset))),
                        ]))
                }
                try await deadLetters.flush()
                for (record, reason) in dead {
                    logger.warning("clickhouse-sink: unparsable record sent to the dead-letter topic", metadata: [
                        "topic": "\(record.topic)", "partition": "\(record.partition)", "offset": "\(record.offset)",
                        "reason": "\(reason)", "dead_letter_topic": "\(configuration.deadLetterTopic)",
                    ])
                }
                status.add("clickhouse_sink_dead_letters_total", Double(dead.count), help: "Records sent to the dead-letter topic.")
                return
            } catch let error as CancellationError {
                throw error
            } catch {
                attempt += 1
                status.failing("cannot publish dead letters: \(error)")
                logger.warning("clickhouse-sink: publishing dead letters failed, retrying",
                               metadata: ["records": "\(dead.count)", "attempt": "\(attempt)", "error": "\(error)"])
                try await sleepUnlessHardStop(configuration.retry.delay(afterAttempt: attempt))
            }
        }
    }

    /// Commits what this member still owns; a failure (a rebalance took the partition) only
    /// means the new owner replays those rows, which the tables absorb.
    func commit(_ next: [PartitionKey: Int64]) async {
        let owned = await source.assignment()
        let offsets = next.filter { owned.contains($0.key) }
        guard !offsets.isEmpty else { return }
        do {
            try await source.commit(offsets)
            status.add("clickhouse_sink_commits_total", help: "Offset commits.")
        } catch {
            status.add("clickhouse_sink_commit_failures_total", help: "Offset commits that failed (rows will be replayed).")
            logger.warning("clickhouse-sink: offset commit failed; those rows will be replayed",
                           metadata: ["offsets": "\(offsets.sorted { $0.key < $1.key })", "error": "\(error)"])
        }
    }
}

/// Records between the reader and the flusher. Thread-safe.
final class PendingRecords: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [IncomingRecord] = []
    private var oldest: ContinuousClock.Instant?
    private var stopping = false
    private var readerDone = false

    func append(_ record: IncomingRecord) {
        lock.lock(); defer { lock.unlock() }
        if oldest == nil { oldest = .now }
        records.append(record)
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return records.count }
    var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }
    var hasReaderEnded: Bool { lock.lock(); defer { lock.unlock() }; return readerDone }

    func stop() { lock.lock(); stopping = true; lock.unlock() }
    func readerEnded() { lock.lock(); readerDone = true; lock.unlock() }

    func isDue(maxRows: Int, maxDelay: Duration) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if records.count >= maxRows { return true }
        if let oldest, ContinuousClock.now - oldest >= maxDelay { return true }
        return readerDone && !records.isEmpty
    }

    func take() -> [IncomingRecord] {
        lock.lock(); defer { lock.unlock() }
        let out = records
        records = []
        oldest = nil
        return out
    }
}
