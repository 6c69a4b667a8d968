import Collatz
import Foundation
import NIOCore
import ServiceLifecycle
import Testing

/// An in-memory topic set standing in for Kafka: partitions by key hash, committed offsets.
final class FakeKafka: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var topics: [String: [[IncomingRecord]]] = [:]
    private(set) var created: [String: (Int32, Int16)] = [:]
    private(set) var committed: [PartitionKey: Int64] = [:]
    private(set) var pauses = 0
    private(set) var resumes = 0
    var headers: [Int: [(key: String, value: ByteBuffer)]] = [:]

    func create(_ topic: String, partitions: Int32, rf: Int16) {
        lock.lock(); defer { lock.unlock() }
        if topics[topic] == nil {
            topics[topic] = Array(repeating: [], count: Int(partitions))
            created[topic] = (partitions, rf)
        }
    }

    func append(_ r: OutgoingRecord) {
        lock.lock(); defer { lock.unlock() }
        if topics[r.topic] == nil { topics[r.topic] = [[]] }
        let count = topics[r.topic]!.count
        var hash: UInt32 = 2_166_136_261
        for b in r.key?.readableBytesView ?? ByteBuffer().readableBytesView { hash = (hash ^ UInt32(b)) &* 16_777_619 }
        let p = Int(hash % UInt32(count))
        let offset = Int64(topics[r.topic]![p].count)
        topics[r.topic]![p].append(IncomingRecord(topic: r.topic, partition: Int32(p), offset: offset,
                                                  timestamp: 1_700_000_000_000, key: r.key, value: r.value))
        if !r.headers.isEmpty { headers[topics[r.topic]![p].count - 1 + p * 1_000_000] = r.headers }
    }

    func records(_ topic: String) -> [IncomingRecord] {
        lock.lock(); defer { lock.unlock() }
        return (topics[topic] ?? []).flatMap { $0 }
    }

    func partitions(_ topic: String) -> [[IncomingRecord]] {
        lock.lock(); defer { lock.unlock() }
        return topics[topic] ?? []
    }

    func commit(_ offsets: [PartitionKey: Int64]) {
        lock.lock(); defer { lock.unlock() }
        for (k, v) in offsets { committed[k] = max(committed[k] ?? 0, v) }
    }

    func countPause(_ paused: Bool) {
        lock.lock(); defer { lock.unlock() }
        if paused { pauses += 1 } else { resumes += 1 }
    }

    /// Every partition's committed offset is its end.
    func fullyCommitted(_ topic: String) -> Bool {
        lock.lock(); defer { lock.unlock() }
        for (p, records) in (topics[topic] ?? []).enumerated() where !records.isEmpty {
            if committed[PartitionKey(topic: topic, partition: Int32(p))] != Int64(records.count) { return false }
        }
        return true
    }
}

struct FakePublisher: RecordPublisher {
    let kafka: FakeKafka
    func createTopicIfMissing(_ topic: String, partitions: Int32, replicationFactor: Int16) async throws {
        kafka.create(topic, partitions: partitions, rf: replicationFactor)
    }
    func publish(_ record: OutgoingRecord) async throws { kafka.append(record) }
    func flush() async throws {}
    func close() async {}
}

/// Delivers one topic's records from the committed offsets, then waits until closed.
final class FakeSource: RecordBatchSource, @unchecked Sendable {
    let kafka: FakeKafka
    let topic: String
    private let lock = NSLock()
    private var closed = false

    init(kafka: FakeKafka, topic: String) {
        self.kafka = kafka
        self.topic = topic
    }

    func run(deliver: @escaping @Sendable (IncomingRecord) async throws -> Void) async throws {
        for (p, records) in kafka.partitions(topic).enumerated() {
            let start = Int(kafka.committed[PartitionKey(topic: topic, partition: Int32(p))] ?? 0)
            for r in records.dropFirst(start) { try await deliver(r) }
        }
        while !isClosed { try await Task.sleep(for: .milliseconds(10)) }
    }

    var isClosed: Bool { lock.lock(); defer { lock.unlock() }; return closed }
    func pause() async { kafka.countPause(true) }
    func resume() async { kafka.countPause(false) }
    func assignment() async -> Set<PartitionKey> {
        Set((0..<kafka.partitions(topic).count).map { PartitionKey(topic: topic, partition: Int32($0)) })
    }
    func commit(_ offsets: [PartitionKey: Int64]) async throws { kafka.commit(offsets) }
    func close() async { lock.withLock { closed = true } }
}

@Suite("Collatz workers", .serialized)
struct WorkerTests {
    @Test("the producer publishes every step of each chain, keyed by the start number, and creates the topic")
    func producer() async throws {
        let kafka = FakeKafka()
        var config = CollatzProducerConfiguration()
        config.maxChains = 200
        config.seed = 42
        config.range = 1...99_999_999_999_999
        config.partitions = 6
        config.replicationFactor = 2
        let worker = CollatzProducerWorker(configuration: config, publisher: FakePublisher(kafka: kafka))
        try await worker.run()
        #expect(kafka.created["conjecture.data"]! == (6, 2))
        var byNumber = [UInt64: [CollatzRecord]]()
        for r in kafka.records("conjecture.data") {
            let record = try CollatzRecord.decode(json: r.value!.readableBytesView)
            #expect(r.key.map { String(buffer: $0) } == String(record.number))
            byNumber[record.number, default: []].append(record)
        }
        #expect(byNumber.count == 200)
        for (n, steps) in byNumber {
            let expected = try CollatzChain.values(from: UInt128(n))
            #expect(steps.map(\.value) == expected, "chain of \(n)")
            #expect(steps.map(\.step) == Array(0..<UInt32(expected.count)))
        }
        // One key, one partition: a chain stays in order.
        for records in kafka.partitions("conjecture.data") {
            var lastStep = [String: UInt32]()
            for r in records {
                let rec = try CollatzRecord.decode(json: r.value!.readableBytesView)
                if let last = lastStep[String(rec.number)] { #expect(rec.step == last + 1) }
                lastStep[String(rec.number)] = rec.step
            }
        }
        #expect(worker.status.counter("collatz_producer_chains_total") == 200)
    }

    @Test("the producer's rate limit holds")
    func rateLimit() async throws {
        let kafka = FakeKafka()
        var config = CollatzProducerConfiguration()
        config.maxChains = 20
        config.seed = 1
        config.range = 1...1_000
        config.recordsPerSecond = 4_000
        let start = ContinuousClock.now
        try await CollatzProducerWorker(configuration: config, publisher: FakePublisher(kafka: kafka)).run()
        let elapsed = ContinuousClock.now - start
        let records = kafka.records("conjecture.data").count
        let floor = Double(records) / 4_000 - 0.3  // the last chain is not waited for
        #expect(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18 >= floor)
    }

    @Test("sink: exact rows in ClickHouse through an outage, dead letters with reasons, commits up to the end",
          .enabled(if: ClickHouseTestServer.available), .timeLimit(.minutes(5)))
    func sinkThroughOutage() async throws {
        let server = try ClickHouseTestServer()
        defer { server.stop() }
        try await server.start()
        let kafka = FakeKafka()
        var pconfig = CollatzProducerConfiguration()
        pconfig.maxChains = 400
        pconfig.seed = 9
        pconfig.range = 1...20_000_000_000
        try await CollatzProducerWorker(configuration: pconfig, publisher: FakePublisher(kafka: kafka)).run()
        // Garbage among the records, and a big value past 2^64 from a known chain.
        let garbage = ["not json", #"{"Number": 1, "Step": 0}"#, #"{"Number": -3, "Step": 0, "Value": 3}"#]
        for g in garbage {
            kafka.append(OutgoingRecord(topic: "conjecture.data", key: ByteBuffer(string: "g"), value: ByteBuffer(string: g)))
        }
        let big = try CollatzChain.values(from: 12_327_829_503)
        for (s, v) in big.enumerated() {
            kafka.append(OutgoingRecord(topic: "conjecture.data", key: ByteBuffer(string: "12327829503"),
                                        value: ByteBuffer(bytes: CollatzRecord(number: 12_327_829_503, step: UInt32(s), value: v).jsonBytes)))
        }
        // A replay: the first 1,000 records of partition 0 once more.
        for r in kafka.partitions("conjecture.data")[0].prefix(1_000) {
            kafka.append(OutgoingRecord(topic: "conjecture.data", key: r.key, value: r.value))
        }
        let all = kafka.records("conjecture.data")
        let expected = Set(all.compactMap { r in r.value.flatMap { try? CollatzRecord.decode(json: $0.readableBytesView) } })

        let client = ClickHouseClient(configuration: .init(url: server.url, database: "sinktest"))
        let schema = try ClickHouseSchema(database: "sinktest")
        var sconfig = ClickHouseSinkConfiguration()
        sconfig.batchRows = 5_000
        sconfig.flushInterval = .milliseconds(100)
        sconfig.retry = InsertRetryPolicy(initialDelay: .milliseconds(50), maxDelay: .milliseconds(300))
        let sink = ClickHouseSinkWorker(configuration: sconfig, source: FakeSource(kafka: kafka, topic: "conjecture.data"),
                                        deadLetters: FakePublisher(kafka: kafka),
                                        inserter: ClickHouseInserter(client: client, schema: schema))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let services = ServiceGroup(configuration: .init(services: [sink], logger: .init(label: "test")))
            group.addTask { try await services.run() }
            // Let some batches land, then take ClickHouse away for two seconds.
            while sink.status.counter("clickhouse_sink_batches_total") < 2 { try await Task.sleep(for: .milliseconds(20)) }
            server.kill()
            try await Task.sleep(for: .seconds(2))
            try await server.start()
            let deadline = ContinuousClock.now + .seconds(120)
            while !kafka.fullyCommitted("conjecture.data") && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        #expect(kafka.fullyCommitted("conjecture.data"))
        // Whether the outage hits an INSERT depends on timing (a fast sink may have inserted
        // everything before ClickHouse goes away): checked, but not a failure when it missed.
        withKnownIssue("the outage may come after the last INSERT", isIntermittent: true) {
            #expect(kafka.pauses >= 1 && kafka.resumes >= 1, "fetching paused while ClickHouse was down")
            #expect(sink.status.counter("clickhouse_sink_insert_retries_total") >= 1)
        }

        // ClickHouse holds exactly the expected (number, step, value) set.
        let text = try await client.execute("SELECT number, step, value_text FROM sinktest.data_series FINAL FORMAT TabSeparated")
        var stored = Set<CollatzRecord>()
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t")
            stored.insert(CollatzRecord(number: UInt64(f[0])!, step: UInt32(f[1])!, value: UInt128(decimalDigits: f[2])!))
        }
        #expect(stored.count == expected.count)
        #expect(stored == expected)
        let store = ClickHouseAnswersStore(client: client, schema: schema)
        #expect(try await store.highestValue()?.number == 12_327_829_503)
        #expect(try await store.highestValue()?.value == big.max())

        // Dead letters: the three garbage records, each with its reason.
        let dead = kafka.records("conjecture.data.dead-letter").map { String(buffer: $0.value!) }
        #expect(dead.sorted() == garbage.sorted())
        let reasons = kafka.headers.values.compactMap { h in h.first { $0.key == "petrel.error" }.map { String(buffer: $0.value) } }
        #expect(reasons.count == 3)
        #expect(reasons.contains { $0.contains("missing key Value") })
        #expect(reasons.contains { $0.contains("negative") })
    }
}
