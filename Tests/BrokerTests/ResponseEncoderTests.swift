@testable import Broker
import KafkaProtocol
import NIOCore
import Testing

@Suite("Response encoding with record bytes written in place")
struct ResponseEncoderTests {
    static func fetchResponse(sizes: [Int]) -> FetchResponse {
        var response = FetchResponse()
        response.responses = [.init(topic: "t", topicId: KafkaUUID(high: 1, low: 2), partitions: sizes.enumerated().map { i, size in
            var records = ByteBuffer()
            for j in 0..<size { records.writeInteger(UInt8(truncatingIfNeeded: i * 31 + j)) }
            return .init(partitionIndex: Int32(i), highWatermark: 100, lastStableOffset: 100, logStartOffset: 0,
                         abortedTransactions: [], records: records)
        })]
        return response
    }

    @Test("the split frame equals the plain encoding, at every Fetch version", arguments: [Int16(4), 7, 11, 12, 13, 16, 17])
    func sameBytes(version: Int16) throws {
        let response = Self.fetchResponse(sizes: [100, 40_000, 0, 70_000, 20_000])
        let chunks = try ResponseEncoder.encode(.fetch(response), version: version, correlationId: 9, allocator: ByteBufferAllocator())
        var joined = ByteBuffer()
        for var c in chunks { joined.writeBuffer(&c) }
        var plain = ByteBuffer()
        try KafkaFrames.encodeResponse(response, version: version, correlationId: 9, into: &plain)
        #expect(joined == plain)
        #expect(chunks.count == 7, "3 large records fields: 3 heads, 3 record buffers, 1 tail")
    }

    @Test("small responses stay one buffer")
    func small() throws {
        let chunks = try ResponseEncoder.encode(.fetch(Self.fetchResponse(sizes: [10, 20])), version: 12, correlationId: 1, allocator: ByteBufferAllocator())
        #expect(chunks.count == 1)
    }
}
