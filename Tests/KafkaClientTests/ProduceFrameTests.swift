import KafkaProtocol
import NIOCore
import Testing
@testable import KafkaClient

@Suite struct ProduceFrameTests {
    func batch(_ values: [String], producerId: Int64 = -1) throws -> ByteBuffer {
        var writer = ProducerBatchWriter(compression: .none, compressionLevel: -1, initialCapacity: 64)
        writer.producerId = producerId
        for (i, v) in values.enumerated() {
            try writer.append(key: i % 2 == 0 ? nil : ByteBuffer(string: "k\(i)"), value: ByteBuffer(string: v), headers: [], timestamp: 1_000 + Int64(i))
        }
        return try writer.build().buffer
    }

    @Test(arguments: Int16(3)...Int16(11))
    func partsConcatenateToTheGeneratedEncoding(version: Int16) throws {
        let b1 = try batch(["a", "bb"]), b2 = try batch(["ccc"]), b3 = try batch(["d", "e", "f"])
        let topics: [(name: String, partitions: [ProduceFrame.Partition])] = [
            ("t1", [ProduceFrame.Partition(index: 0, records: b1), ProduceFrame.Partition(index: 2, records: b2)]),
            ("topic-two", [ProduceFrame.Partition(index: 1, records: b3)]),
        ]
        let frame = try ProduceFrame.encode(acks: -1, timeoutMs: 30_000, topics: topics, version: version, clientId: "petrel-swift")
        var joined = frame.head
        for var part in frame.tail { joined.writeBuffer(&part) }

        var request = ProduceRequest(acks: -1, timeoutMs: 30_000)
        request.topicData = topics.map { t in
            ProduceRequest.TopicProduceData(name: t.name, partitionData: t.partitions.map {
                ProduceRequest.PartitionProduceData(index: $0.index, records: $0.records)
            })
        }
        var expected = ByteBuffer()
        try KafkaFrames.encodeRequest(request, version: version, correlationId: 0, clientId: "petrel-swift", into: &expected)
        #expect(Array(joined.readableBytesView) == Array(expected.readableBytesView))
        // The batches themselves are not copied.
        #expect(frame.tail.filter { $0.readableBytes == b1.readableBytes }.count >= 1)
    }

    @Test func writerMatchesRecordBatchBuilder() throws {
        // Same bytes as KafkaProtocol's builder (which the broker tests pin to Kafka's format).
        let headers = [RecordHeader(key: "h", value: ByteBuffer(string: "x")), RecordHeader(key: "n", value: nil)]
        var writer = ProducerBatchWriter(compression: .none, compressionLevel: -1, initialCapacity: 16)
        writer.producerId = 42
        writer.producerEpoch = 3
        writer.baseSequence = 7
        var builder = RecordBatchBuilder(producerId: 42, producerEpoch: 3, baseSequence: 7)
        for i in 0..<300 {
            let key: ByteBuffer? = i % 3 == 0 ? nil : ByteBuffer(string: "key-\(i)")
            let value: ByteBuffer? = i % 7 == 0 ? nil : ByteBuffer(repeating: UInt8(i & 0xFF), count: i * 3)
            let h = i % 5 == 0 ? headers : []
            let ts = 1_700_000_000_000 + Int64(i * 13 % 97) - 40  // deltas of both signs
            try writer.append(key: key, value: value, headers: h, timestamp: ts)
            try builder.append(key: key, value: value, headers: h, timestamp: ts)
        }
        let mine = try writer.build(), theirs = try builder.build()
        #expect(Array(mine.buffer.readableBytesView) == Array(theirs.buffer.readableBytesView))
        try mine.validate()
    }

    @Test func restampKeepsRecordsAndFixesTheCRC() throws {
        let batch = ProducerBatch(
            topicPartition: TopicPartition(topic: "t", partition: 0), createdAt: 0, compression: .gzip, compressionLevel: -1,
            initialCapacity: 64)
        for i in 0..<5 { try batch.writer.append(key: nil, value: ByteBuffer(string: "v\(i)"), headers: [], timestamp: 5) }
        batch.writer.producerId = 9
        batch.writer.producerEpoch = 0
        batch.writer.baseSequence = 40
        batch.built = try batch.writer.build()
        batch.restamp(producerId: 9, producerEpoch: 1, baseSequence: 0)
        let built = try #require(batch.built)
        try built.validate()
        #expect(built.producerEpoch == 1 && built.baseSequence == 0 && built.producerId == 9)
        #expect(try built.decodeRecords().map { String(buffer: $0.value!) } == (0..<5).map { "v\($0)" })
    }
}
