import Foundation
import KafkaProtocol
import NIOCore
import Testing
@testable import KafkaClient

/// The client against a Petrel broker started in this process.
@Suite("KafkaClient against Petrel", .serialized)
struct PetrelIntegrationTests {
    @Test(.timeLimit(.minutes(2)))
    func connectsAndNegotiatesVersions() async throws {
        let broker = try await InProcessBroker.start()
        let client = KafkaClient(bootstrapServers: [broker.bootstrap])
        let c = try await client.connection(to: .any)
        #expect(try c.version(for: .produce) >= 3)
        #expect(try c.version(for: .fetch) <= 12)
        // Pipelining: many requests in flight on one connection, answers matched by correlation id.
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 { group.addTask { try await client.metadata(topics: []).brokers.count } }
            for try await n in group { #expect(n == 1) }
        }
        // A dead bootstrap address fails with a connection error.
        let dead = KafkaClient(bootstrapServers: ["127.0.0.1:1"])
        await #expect(throws: KafkaClientError.self) { _ = try await dead.metadata() }
        await dead.shutdown()
        await client.shutdown()
        await broker.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func produceAndConsume() async throws {
        let broker = try await InProcessBroker.start()
        try await Scenarios.produceAndConsume(bootstrap: broker.bootstrap)
        await broker.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func acksZeroAndOne() async throws {
        let broker = try await InProcessBroker.start(["num.partitions": "1"])
        let client = KafkaClient(bootstrapServers: [broker.bootstrap])
        for acks in [Acks.none, .leader] {
            var pc = ProducerConfiguration()
            pc.acks = acks
            let producer = try KafkaProducer(client: client, configuration: pc)
            let m = try await producer.send(ProducerRecord(topic: "acks", key: nil, value: "x"))
            #expect(acks == .none ? m.offset == -1 : m.offset >= 0)
            await producer.close()
        }
        await client.shutdown()
        await broker.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func adminCalls() async throws {
        let broker = try await InProcessBroker.start()
        try await Scenarios.adminCalls(bootstrap: broker.bootstrap, full: true)
        await broker.stop()
    }

    @Test("two Swift members share a group (cooperative-sticky)", .timeLimit(.minutes(2)))
    func swiftGroup() async throws {
        let broker = try await InProcessBroker.start()
        try await Scenarios.mixedGroup(bootstrap: broker.bootstrap, assignor: .cooperativeSticky, withPython: false)
        await broker.stop()
    }

    @Test("two Swift members and a confluent-kafka member share a group",
          .enabled(if: ClientTestEnvironment.available(ClientTestEnvironment.confluentMissing)),
          .timeLimit(.minutes(3)), arguments: [AssignorKind.range, .cooperativeSticky])
    func mixedGroup(_ assignor: AssignorKind) async throws {
        try ClientTestEnvironment.requirePresent(ClientTestEnvironment.confluentMissing)
        let broker = try await InProcessBroker.start()
        try await Scenarios.mixedGroup(bootstrap: broker.bootstrap, assignor: assignor, withPython: true)
        await broker.stop()
    }

    @Test("fire-and-forget throughput (100-byte records)", .timeLimit(.minutes(3)))
    func throughput() async throws {
        let broker = try await InProcessBroker.start(["num.partitions": "1"])
        let client = KafkaClient(bootstrapServers: [broker.bootstrap])
        var pc = ProducerConfiguration()
        pc.acks = .leader
        let producer = try KafkaProducer(client: client, configuration: pc)
        let value = ByteBuffer(repeating: 0x61, count: 100)
        let n = Int(ProcessInfo.processInfo.environment["PETREL_CLIENT_BENCH_RECORDS"] ?? "") ?? 200_000
        let start = ContinuousClock.now
        for _ in 0..<n { try await producer.produce(ProducerRecord(topic: "bench", value: value)) }
        try await producer.flush()
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("KafkaClient produce: \(n) records of 100 B in \(elapsed): \(Int(Double(n) / seconds)) records/s")
        let last = try await producer.send(ProducerRecord(topic: "bench", value: value))
        #expect(last.offset == Int64(n))

        var cc = ConsumerConfiguration()
        cc.autoOffsetReset = .earliest
        let consumer = KafkaConsumer(client: client, configuration: cc)
        try await consumer.assign([TopicPartition(topic: "bench", partition: 0)])
        let cstart = ContinuousClock.now
        let count = try await withTimeout(seconds: 120) { () async throws -> Int in
            var count = 0
            for try await _ in consumer.records {
                count += 1
                if count == n + 1 { break }
            }
            return count
        }
        let ce = ContinuousClock.now - cstart
        let cs = Double(ce.components.seconds) + Double(ce.components.attoseconds) / 1e18
        print("KafkaClient consume: \(count) records in \(ce): \(Int(Double(count) / cs)) records/s")
        await consumer.close()
        await producer.close()
        await client.shutdown()
        await broker.stop()
    }
}

/// The client against Tansu 0.6.0 (a broker nobody here wrote), started as a process by
/// `scripts/interop/broker.sh argv tansu`.
@Suite("KafkaClient against Tansu", .serialized)
struct TansuIntegrationTests {
    @Test(.enabled(if: ClientTestEnvironment.available(ClientTestEnvironment.tansuMissing)), .timeLimit(.minutes(2)))
    func produceAndConsume() async throws {
        try ClientTestEnvironment.requirePresent(ClientTestEnvironment.tansuMissing)
        let broker = try ExternalBroker(kind: "tansu")
        defer { broker.stop() }
        try await Scenarios.produceAndConsume(bootstrap: broker.bootstrap)
    }

    @Test(.enabled(if: ClientTestEnvironment.available(ClientTestEnvironment.tansuMissing)), .timeLimit(.minutes(2)))
    func adminCalls() async throws {
        try ClientTestEnvironment.requirePresent(ClientTestEnvironment.tansuMissing)
        let broker = try ExternalBroker(kind: "tansu")
        defer { broker.stop() }
        try await Scenarios.adminCalls(bootstrap: broker.bootstrap, full: false)
    }

    @Test("two Swift members and a confluent-kafka member share a group on Tansu",
          .enabled(if: ClientTestEnvironment.available(ClientTestEnvironment.tansuMissing ?? ClientTestEnvironment.confluentMissing)),
          .timeLimit(.minutes(3)))
    func mixedGroup() async throws {
        try ClientTestEnvironment.requirePresent(ClientTestEnvironment.tansuMissing ?? ClientTestEnvironment.confluentMissing)
        let broker = try ExternalBroker(kind: "tansu")
        defer { broker.stop() }
        try await Scenarios.mixedGroup(bootstrap: broker.bootstrap, assignor: .range, withPython: true)
    }
}
