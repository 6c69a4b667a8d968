import Foundation
import KafkaProtocol
import NIOCore
import Testing
@testable import KafkaClient

/// Integration scenarios, run against each broker (Petrel in-process, Tansu as a process).
enum Scenarios {
    static func uniqueName(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())" }

    /// Produce keyed records (gzip, headers, `send` and fire-and-forget), then read them back
    /// with manual assignment from the earliest offset.
    static func produceAndConsume(bootstrap: String, idempotent: Bool = true) async throws {
        let client = KafkaClient(bootstrapServers: [bootstrap])
        defer { Task { await client.shutdown() } }
        let admin = KafkaAdmin(client: client)
        let topic = uniqueName("pc")
        try await admin.createTopic(topic, partitions: 3, replicationFactor: 1)
        var pc = ProducerConfiguration()
        pc.compression = .gzip
        pc.enableIdempotence = idempotent
        let producer = try KafkaProducer(client: client, configuration: pc)
        let n = 300
        var expected: [TopicPartition: [String]] = [:]
        for i in 0..<n {
            let key = "key-\(i % 17)"
            let record = ProducerRecord(topic: topic, key: key, value: "value-\(i)", headers: [RecordHeader(key: "i", value: ByteBuffer(string: "\(i)"))])
            if i % 10 == 0 {
                let m = try await producer.send(record)
                #expect(m.partition == Murmur2.partition(forKey: ByteBuffer(string: key), partitionCount: 3))
                #expect(m.offset >= 0)
            } else {
                try await producer.produce(record)
            }
            expected[TopicPartition(topic: topic, partition: Murmur2.partition(forKey: ByteBuffer(string: key), partitionCount: 3)), default: []].append("value-\(i)")
        }
        try await producer.flush()

        var cc = ConsumerConfiguration()
        cc.autoOffsetReset = .earliest
        let consumer = KafkaConsumer(client: client, configuration: cc)
        try await consumer.assign((0..<3).map { TopicPartition(topic: topic, partition: $0) })
        let got = try await withTimeout(seconds: 30) { () async throws -> [TopicPartition: [String]] in
            var got: [TopicPartition: [String]] = [:]
            var count = 0
            for try await r in consumer.records {
                got[r.topicPartition, default: []].append(String(buffer: r.value!))
                #expect(String(buffer: r.headers.first!.value!) == String(String(buffer: r.value!).dropFirst(6)))
                count += 1
                if count == n { break }
            }
            return got
        }
        #expect(got == expected)
        // Seek back and read one partition's first record again.
        let tp0 = TopicPartition(topic: topic, partition: 0)
        if let first = expected[tp0]?.first {
            try await consumer.seek(tp0, to: 0)
            try await consumer.pause([TopicPartition(topic: topic, partition: 1), TopicPartition(topic: topic, partition: 2)])
            let again = try await withTimeout(seconds: 15) { () async throws -> String? in
                for try await r in consumer.records where r.topicPartition == tp0 {
                    return String(buffer: r.value!)
                }
                return nil
            }
            #expect(again == first)
        }
        await consumer.close()
        await producer.close()
    }

    /// Topics, partitions, configs, offsets, delete records, groups and lag.
    static func adminCalls(bootstrap: String, full: Bool) async throws {
        let client = KafkaClient(bootstrapServers: [bootstrap])
        defer { Task { await client.shutdown() } }
        let admin = KafkaAdmin(client: client)
        let topic = uniqueName("adm")
        try await admin.createTopic(topic, partitions: 2, replicationFactor: 1, configs: ["retention.ms": "3600000"])
        await #expect(throws: KafkaClientError.self) { try await admin.createTopic(topic, partitions: 2, replicationFactor: 1) }
        try await admin.createTopics([NewTopic(name: topic, partitions: 2, replicationFactor: 1)], ignoreExisting: true)
        #expect(try await admin.listTopics().contains(topic))
        let described = try await admin.describeTopics([topic])
        #expect(described.first?.partitions.count == 2)
        let cluster = try await admin.describeCluster()
        #expect(!cluster.brokers.isEmpty)

        let producer = try KafkaProducer(client: client)
        for i in 0..<10 { try await producer.produce(ProducerRecord(topic: topic, partition: 0, key: nil, value: "r\(i)")) }
        try await producer.flush()
        await producer.close()
        let tp0 = TopicPartition(topic: topic, partition: 0)
        let latest = try await admin.listOffsets([tp0], spec: .latest)[tp0] ?? -1
        // Tansu 0.6.0 (memory storage) answers ListOffsets(latest) per batch, not per record.
        if full { #expect(latest == 10) } else { #expect(latest >= 1) }
        #expect(try await admin.listOffsets([tp0], spec: .earliest)[tp0] == 0)

        // Group commit, then lag.
        let group = uniqueName("g")
        try await admin.alterGroupOffsets(group: group, offsets: [tp0: 4])
        #expect(try await admin.committedOffsets(group: group, partitions: [tp0])[tp0] == 4)
        let lag = try await admin.consumerLag(group: group, topics: [topic])
        #expect(lag.first { $0.topicPartition == tp0 }?.lag == max(0, latest - 4))
        guard full else { return }

        try await admin.createPartitions(topic: topic, totalCount: 3)
        #expect(try await admin.describeTopics([topic]).first?.partitions.count == 3)
        let configs = try await admin.describeConfigs(.topic(topic))
        #expect(configs.first { $0.name == "retention.ms" }?.value == "3600000")
        try await admin.alterConfigs(.topic(topic), [.set("retention.ms", "7200000")])
        #expect(try await admin.describeConfigs(.topic(topic), keys: ["retention.ms"]).first { $0.name == "retention.ms" }?.value == "7200000")
        let low = try await admin.deleteRecords([tp0: 3])
        #expect(low[tp0] == 3)
        #expect(try await admin.listOffsets([tp0], spec: .earliest)[tp0] == 3)
        #expect(try await admin.listGroups().contains { $0.groupId == group })
        try await admin.deleteTopics([topic])
    }

    /// A group of two Swift members and one confluent-kafka member sharing a topic's partitions:
    /// once all three hold partitions (disjoint, covering the topic), new records are produced
    /// and must all be read, each by the member that holds its partition.
    static func mixedGroup(bootstrap: String, assignor: AssignorKind, withPython: Bool) async throws {
        let client = KafkaClient(bootstrapServers: [bootstrap])
        defer { Task { await client.shutdown() } }
        let admin = KafkaAdmin(client: client)
        let topic = uniqueName("grp")
        let group = uniqueName("mixed")
        let partitions: Int32 = 6
        let allParts = (0..<partitions).map { TopicPartition(topic: topic, partition: $0) }
        try await admin.createTopic(topic, partitions: partitions, replicationFactor: 1)
        let producer = try KafkaProducer(client: client)
        let perPartition = 20
        func produceRound(_ round: Int) async throws {
            for p in 0..<partitions {
                for i in 0..<perPartition { try await producer.produce(ProducerRecord(topic: topic, partition: p, key: nil, value: "r\(round)-p\(p)-\(i)")) }
            }
            try await producer.flush()
        }
        try await produceRound(0)

        let dir = NSTemporaryDirectory() + "petrel-mixed-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outPath = dir + "/out.txt", stopPath = dir + "/stop"
        var python: Process?
        if withPython {
            FileManager.default.createFile(atPath: outPath, contents: nil)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", pythonMember, bootstrap, topic, group, assignor.rawValue, stopPath]
            p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
            p.standardError = FileHandle.standardError
            try p.run()
            python = p
        }
        /// What the Python member holds and read so far.
        func pythonState() -> (held: Set<TopicPartition>, read: [TopicPartition: Set<Int64>], text: String) {
            let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            var held = Set<TopicPartition>()
            var read: [TopicPartition: Set<Int64>] = [:]
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ", omittingEmptySubsequences: false)
                let parts = f.count > 1 ? f[1].split(separator: ",").compactMap { Int32($0) }.map { TopicPartition(topic: topic, partition: $0) } : []
                switch f.first {
                case "assigned"?: held.formUnion(parts)
                case "revoked"?: held.subtract(parts)
                case "rec"?:
                    if f.count == 3, let p = Int32(f[1]), let o = Int64(f[2]) { read[TopicPartition(topic: topic, partition: p), default: []].insert(o) }
                default: break
                }
            }
            return (held, read, text)
        }

        let seen = Locked<[TopicPartition: Set<Int64>]>([:])
        func member() -> KafkaConsumer {
            var cc = ConsumerConfiguration(groupId: group)
            cc.autoOffsetReset = .earliest
            cc.assignors = [assignor]
            cc.sessionTimeoutMs = 10_000
            cc.heartbeatIntervalMs = 300
            cc.rebalanceTimeoutMs = 15_000
            cc.autoCommitIntervalMs = 200
            return KafkaConsumer(client: KafkaClient(bootstrapServers: [bootstrap]), configuration: cc)
        }
        let a = member(), b = member()
        try await a.subscribe([topic])
        try await b.subscribe([topic])
        let readers = Task {
            await withTaskGroup(of: Void.self) { tasks in
                for c in [a, b] {
                    tasks.addTask {
                        do {
                            for try await r in c.records { seen.withLock { $0[r.topicPartition, default: []].insert(r.offset) } }
                        } catch {
                            Issue.record("consumer failed: \(error)")
                        }
                    }
                }
            }
        }
        // 1. Wait for a stable three-way (or two-way) split covering every partition.
        let members = withPython ? 3 : 2
        var stable = 0
        var lastSplit = ""
        for _ in 0..<300 where stable < 10 {
            try await Task.sleep(for: .milliseconds(100))
            let pa = Set(await a.assignment()), pb = Set(await b.assignment())
            let py = withPython ? pythonState().held : []
            let holders = [pa, pb, py].filter { !$0.isEmpty }.count
            let disjoint = pa.isDisjoint(with: pb) && pa.isDisjoint(with: py) && pb.isDisjoint(with: py)
            let covered = pa.union(pb).union(py) == Set(allParts)
            lastSplit = "swift a \(pa.sorted()), swift b \(pb.sorted()), python \(py.sorted())"
            stable = holders == members && disjoint && covered ? stable + 1 : 0
        }
        #expect(stable >= 10, "no stable split: \(lastSplit)")
        // 2. New records: every one must be read by the member holding its partition.
        try await produceRound(1)
        let wanted = Set((perPartition..<(2 * perPartition)).map { Int64($0) })
        func missing() -> [TopicPartition] {
            let mine = seen.withLock { $0 }
            let py = withPython ? pythonState().read : [:]
            return allParts.filter { !wanted.isSubset(of: (mine[$0] ?? []).union(py[$0] ?? [])) }
        }
        for _ in 0..<300 where !missing().isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(missing().isEmpty, "round-1 records not read for \(missing()); split: \(lastSplit)")
        if withPython {
            let py = pythonState()
            #expect(py.read.keys.contains { !(py.read[$0] ?? []).isDisjoint(with: wanted) }, "the confluent-kafka member read none of the new records: \(py.text.suffix(1500))")
        }
        // 3. Leave: commits land, everyone stops.
        FileManager.default.createFile(atPath: stopPath, contents: nil)
        await a.close()
        await b.close()
        readers.cancel()
        await readers.value
        if let python {
            let status = ProcessWait.wait(python, timeout: 30)
            if status == nil { ProcessWait.kill(python, signal: SIGTERM) }
            #expect(status == 0)
        }
        await producer.close()
        let committed = try await admin.committedOffsets(group: group, partitions: allParts)
        #expect(!committed.isEmpty)
    }

    static let pythonMember = """
    import os, sys, time
    from confluent_kafka import Consumer
    bs, topic, group, strategy, stop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
                  "partition.assignment.strategy": strategy, "session.timeout.ms": 10000,
                  "heartbeat.interval.ms": 300, "enable.auto.commit": True, "auto.commit.interval.ms": 200})
    def on_assign(consumer, parts):
        if strategy != "cooperative-sticky":
            print("revoked", ",".join(str(p) for p in range(1000)), flush=True)
        print("assigned", ",".join(str(p.partition) for p in parts), flush=True)
    def on_revoke(consumer, parts):
        print("revoked", ",".join(str(p.partition) for p in parts), flush=True)
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    end = time.time() + 90
    while time.time() < end and not os.path.exists(stop):
        m = c.poll(0.1)
        if m is None or m.error():
            continue
        print("rec", m.partition(), m.offset(), flush=True)
    c.close()
    """
}

struct TimeoutError: Error {}

struct UncheckedBox<T>: @unchecked Sendable { let value: T }

/// Runs `body`, cancelling it after `seconds`.
@discardableResult
func withTimeout<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask { try await Task.sleep(for: .seconds(seconds)); return nil }
        let first = try await group.next() ?? nil
        group.cancelAll()
        guard let first else { throw TimeoutError() }
        return first
    }
}
