import Logging
import NIOCore
import ServiceLifecycle

/// `petrel collatz-producer`: draws random start numbers, computes each chain exactly and
/// publishes one record per step (`{"Number": n, "Step": s, "Value": v}`, key `"n"`), until
/// stopped. Several instances may run at once: they share nothing.
public struct CollatzProducerConfiguration: Sendable {
    public var topic: String = "conjecture.data"
    /// Used when the worker creates the topic.
    public var partitions: Int32 = 4
    public var replicationFactor: Int16 = 3
    /// Start numbers are drawn uniformly from this range.
    public var range: ClosedRange<UInt64> = 1...99_999_999_999_999
    /// Records per second for this instance; 0 = as fast as the cluster takes them.
    public var recordsPerSecond: Double = 0
    /// How often the progress line is logged.
    public var progressInterval: Duration = .seconds(10)
    /// Stop after this many chains (nil: until stopped). For tests and benchmarks.
    public var maxChains: Int?
    /// Seed for reproducible draws (nil: system randomness).
    public var seed: UInt64?

    public init() {}
}

public final class CollatzProducerWorker: Service, Sendable {
    public let configuration: CollatzProducerConfiguration
    let publisher: any RecordPublisher
    let logger: Logger
    public let status: WorkerStatus

    public init(configuration: CollatzProducerConfiguration, publisher: any RecordPublisher,
                logger: Logger = Logger(label: "petrel.collatz-producer"),
                status: WorkerStatus = WorkerStatus(worker: "collatz-producer")) {
        self.configuration = configuration
        self.publisher = publisher
        self.logger = logger
        self.status = status
    }

    public func run() async throws {
        let config = configuration
        do {
            try await cancelWhenGracefulShutdown {
                try await self.ensureTopic()
                try await self.produceLoop()
            }
        } catch is CancellationError {
            // Graceful shutdown: fall through to the flush.
        }
        // Whatever was accepted goes out before we stop (graceful shutdown or maxChains).
        do {
            try await publisher.flush()
        } catch {
            logger.error("collatz-producer: final flush failed", metadata: ["error": "\(error)"])
        }
        await publisher.close()
        logger.info("collatz-producer: stopped", metadata: [
            "chains": "\(Int(status.counter("collatz_producer_chains_total")))",
            "records": "\(Int(status.counter("collatz_producer_records_total")))", "topic": "\(config.topic)",
        ])
    }

    /// Creates the topic, retrying while the cluster is not reachable yet.
    func ensureTopic() async throws {
        var attempt = 0
        while true {
            do {
                try await publisher.createTopicIfMissing(configuration.topic, partitions: configuration.partitions,
                                                         replicationFactor: configuration.replicationFactor)
                status.recovered()
                return
            } catch let error as CancellationError {
                throw error
            } catch {
                attempt += 1
                status.failing("cannot create topic \(configuration.topic): \(error)")
                let delay = InsertRetryPolicy(initialDelay: .milliseconds(200), maxDelay: .seconds(5)).delay(afterAttempt: attempt)
                logger.warning("collatz-producer: creating the topic failed, retrying", metadata: [
                    "topic": "\(configuration.topic)", "attempt": "\(attempt)", "error": "\(error)",
                ])
                try await Task.sleep(for: delay)
            }
        }
    }

    func produceLoop() async throws {
        let config = configuration
        var rng = SplitMix64(seed: config.seed ?? UInt64.random(in: .min ... .max))
        let clock = ContinuousClock()
        let started = clock.now
        var published = 0
        var chains = 0
        var lastReport = started
        var lastReportRecords = 0
        var json = [UInt8]()
        json.reserveCapacity(96)
        while !Task.isCancelled {
            if let max = config.maxChains, chains >= max { break }
            let n = UInt64.random(in: config.range, using: &rng)
            let key = ByteBuffer(bytes: CollatzRecord.key(for: n))
            var failure: CollatzChain.Failure?
            var records = [OutgoingRecord]()
            do {
                try CollatzChain.forEachValue(from: UInt128(n)) { step, value in
                    json.removeAll(keepingCapacity: true)
                    CollatzRecord(number: n, step: UInt32(step), value: value).appendJSON(to: &json)
                    records.append(OutgoingRecord(topic: config.topic, key: key, value: ByteBuffer(bytes: json)))
                }
            } catch {
                failure = error
            }
            if let failure {
                logger.error("collatz-producer: skipping a start number", metadata: ["number": "\(n)", "reason": "\(failure)"])
                continue
            }
            for record in records {
                do {
                    try await publisher.publish(record)
                } catch let error as CancellationError {
                    throw error
                } catch {
                    // A fire-and-forget failure (e.g. delivery timeout): report, keep going.
                    status.add("collatz_producer_errors_total", help: "Publish failures.")
                    status.failing("publishing failed: \(error)")
                    logger.warning("collatz-producer: publish failed", metadata: ["error": "\(error)"])
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            published += records.count
            chains += 1
            status.add("collatz_producer_records_total", Double(records.count), help: "Step records published.")
            status.add("collatz_producer_chains_total", help: "Chains published.")

            // Rate limit: never ahead of `published / rate` seconds since the start.
            if config.recordsPerSecond > 0 {
                let due = started + .seconds(Double(published) / config.recordsPerSecond)
                if due > clock.now { try await Task.sleep(until: due, clock: clock) }
            }
            let now = clock.now
            if now - lastReport >= config.progressInterval {
                let interval = now - lastReport
                let secs = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
                let rate = Double(published - lastReportRecords) / max(secs, 1e-9)
                status.set("collatz_producer_records_per_second", rate, help: "Records per second over the last interval.")
                status.recovered()
                logger.info("collatz-producer: progress", metadata: [
                    "chains": "\(chains)", "records": "\(published)", "records_per_s": "\(Int(rate))",
                    "last_number": "\(n)", "topic": "\(config.topic)",
                ])
                lastReport = now
                lastReportRecords = published
            }
        }
    }
}

/// A small, fast, seedable generator (Steele et al.'s SplitMix64).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
