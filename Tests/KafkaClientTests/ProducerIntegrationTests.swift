import Foundation
import KafkaProtocol
import NIOCore
import Testing
@testable import KafkaClient

@Suite("Producer against an in-process Petrel broker", .serialized)
struct ProducerIntegrationTests {
    @Test func sendReturnsConsecutiveOffsets() async throws {
        let broker = try await InProcessBroker.start(["num.partitions": "3"])
        let client = KafkaClient(bootstrapServers: [broker.bootstrap])
        let producer = try KafkaProducer(client: client)
        var offsets: [Int64] = []
        for i in 0..<5 {
            let m = try await producer.send(ProducerRecord(topic: "p1", partition: 1, key: "k\(i)", value: "v\(i)"))
            #expect(m.partition == 1)
            offsets.append(m.offset)
        }
        #expect(offsets == [0, 1, 2, 3, 4])
        await producer.close()
        await client.shutdown()
        await broker.stop()
    }

    @Test func fireAndForgetThenFlush() async throws {
        let broker = try await InProcessBroker.start(["num.partitions": "1"])
        let client = KafkaClient(bootstrapServers: [broker.bootstrap])
        var config = ProducerConfiguration()
        config.acks = .leader
        let producer = try KafkaProducer(client: client, configuration: config)
        let value = ByteBuffer(repeating: 0x61, count: 100)
        let n = 200_000
        let start = ContinuousClock.now
        for _ in 0..<n {
            try await producer.produce(ProducerRecord(topic: "ff", value: value))
        }
        try await producer.flush()
        let elapsed = ContinuousClock.now - start
        print("produced \(n) records of 100 B in \(elapsed)")
        let last = try await producer.send(ProducerRecord(topic: "ff", value: value))
        #expect(last.offset == Int64(n))
        await producer.close()
        await client.shutdown()
        await broker.stop()
    }
}
