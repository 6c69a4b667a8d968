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
        #expect(try await admin.listOffsets([tp0], spec: .latest)[tp0] == 10)
        #expect(try await admin.listOffsets([tp0], spec: .earliest)[tp0] == 0)

        // Group commit, then lag.
        let group = uniqueName("g")
        try await admin.alterGroupOffsets(group: group, offsets: [tp0: 4])
        #expect(try await admin.committedOffsets(group: group)[tp0] == 4)
        let lag = try await admin.consumerLag(group: group)
        #expect(lag.first { $0.topicPartition == tp0 }?.lag == 6)
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

    /// A group of two Swift members and one confluent-kafka member sharing a topic's partitions.
    static func mixedGroup(bootstrap: String, assignor: AssignorKind, withPython: Bool) async throws {
        let client = KafkaClient(bootstrapServers: [bootstrap])
        defer { Task { await client.shutdown() } }
        let admin = KafkaAdmin(client: client)
        let topic = uniqueName("grp")
        let group = uniqueName("mixed")
        let partitions: Int32 = 6
        try await admin.createTopic(topic, partitions: partitions, replicationFactor: 1)
        let producer = try KafkaProducer(client: client)
        let perPartition = 20
        for p in 0..<partitions {
            for i in 0..<perPartition { try await producer.produce(ProducerRecord(topic: topic, partition: p, key: nil, value: "p\(p)-\(i)")) }
        }
        try await producer.flush()
        await producer.close()

        var python: Process?
        let pythonOut = Pipe()
        if withPython {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", pythonMember, bootstrap, topic, group, assignor.rawValue, "25"]
            p.standardOutput = pythonOut
            p.standardError = FileHandle.standardError
            try p.run()
            python = p
        }
        let seen = Locked<[TopicPartition: Set<Int64>]>([:])
        let revokedCalls = Locked<Int>(0)
        func member(_ name: String) -> KafkaConsumer {
            var cc = ConsumerConfiguration(groupId: group)
            cc.autoOffsetReset = .earliest
            cc.assignors = [assignor]
            cc.sessionTimeoutMs = 10_000
            cc.heartbeatIntervalMs = 500
            cc.rebalanceTimeoutMs = 20_000
            cc.autoCommitIntervalMs = 200
            cc.onPartitionsRevoked = { _ in revokedCalls.withLock { $0 += 1 } }
            return KafkaConsumer(client: KafkaClient(bootstrapServers: [bootstrap]), configuration: cc)
        }
        let a = member("a"), b = member("b")
        try await a.subscribe([topic])
        try await b.subscribe([topic])
        let total = Int(partitions) * perPartition
        let deadline = ContinuousClock.now + .seconds(40)
        // Consume in both Swift members until everything was read by someone (the Python member
        // reports what it read on stdout at the end).
        let pythonBox = UncheckedBox(value: python)
        await withTaskGroup(of: Void.self) { tasks in
            for c in [a, b] {
                tasks.addTask {
                    _ = try? await withTimeout(seconds: 40) {
                        for try await r in c.records {
                            seen.withLock { $0[r.topicPartition, default: []].insert(r.offset) }
                            if ContinuousClock.now > deadline { break }
                        }
                    }
                }
            }
            tasks.addTask {
                // Stop the Swift members once the group is stable and the Python member is done.
                if let python = pythonBox.value {
                    while python.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(200)) }
                } else {
                    while seen.withLock({ $0.values.reduce(0) { $0 + $1.count } }) < total && ContinuousClock.now < deadline {
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
                let aParts = await a.assignment(), bParts = await b.assignment()
                #expect(Set(aParts).isDisjoint(with: Set(bParts)))
                await a.close()
                await b.close()
            }
        }
        var pythonParts: Set<TopicPartition> = []
        if let python {
            python.waitUntilExit()
            let text = String(decoding: pythonOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count == 3, f[0] == "rec", let p = Int32(f[1]), let o = Int64(f[2]) {
                    let tp = TopicPartition(topic: topic, partition: p)
                    pythonParts.insert(tp)
                    seen.withLock { $0[tp, default: []].insert(o) }
                }
            }
            #expect(python.terminationStatus == 0, "python member: \(text.suffix(2000))")
            #expect(!pythonParts.isEmpty, "the confluent-kafka member got no partition: \(text.suffix(2000))")
        }
        let all = seen.withLock { $0 }
        for p in 0..<partitions {
            let got = all[TopicPartition(topic: topic, partition: p)] ?? []
            #expect(got.count == perPartition, "partition \(p): read \(got.count) of \(perPartition)")
        }
        // The group's commits cover what was read.
        let committed = try await admin.committedOffsets(group: group)
        #expect(committed.count >= 1)
    }

    static let pythonMember = """
    import sys, time
    from confluent_kafka import Consumer
    bs, topic, group, strategy, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
                  "partition.assignment.strategy": strategy, "session.timeout.ms": 10000,
                  "heartbeat.interval.ms": 500, "enable.auto.commit": True, "auto.commit.interval.ms": 200})
    def on_assign(consumer, parts):
        print("assigned", ",".join(str(p.partition) for p in parts), file=sys.stderr, flush=True)
        if strategy == "cooperative-sticky":
            consumer.incremental_assign(parts)
        else:
            consumer.assign(parts)
    def on_revoke(consumer, parts):
        print("revoked", ",".join(str(p.partition) for p in parts), file=sys.stderr, flush=True)
        if strategy == "cooperative-sticky":
            consumer.incremental_unassign(parts)
        else:
            consumer.unassign()
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    end = time.time() + secs
    while time.time() < end:
        m = c.poll(0.2)
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
