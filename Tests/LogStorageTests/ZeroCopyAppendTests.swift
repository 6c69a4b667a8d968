import KafkaProtocol
@testable import LogStorage
import NIOCore
import Testing

@Suite("Leader appends write the request's bytes without modifying them")
struct ZeroCopyAppendTests {
    @Test("offsets and leader epoch reach the file while the input buffer stays as received")
    func inputUnchanged() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir)
            defer { try? log.close() }
            _ = try log.appendAsLeader(makeBatch(count: 3), leaderEpoch: 4)
            // Many batches in one request (more than one pwritev chunk of 1024 vectors).
            let request = concatenate((0..<600).map { makeBatch(count: 2, seed: UInt8($0 % 200)) })
            let shared = request  // a second reference: an in-place rewrite would copy or show here
            let info = try log.appendAsLeader(request, leaderEpoch: 7)
            #expect(info.firstOffset == 3)
            #expect(info.lastOffset == 3 + 1200 - 1)
            #expect(shared.getInteger(at: shared.readerIndex, as: Int64.self) == 0, "the request's base offset is untouched")
            #expect(shared.getInteger(at: shared.readerIndex + RecordBatch.Offset.partitionLeaderEpoch, as: Int32.self) == -1)
            let batches = try readAll(log)
            #expect(batches.count == 601)
            var expected: Int64 = 0
            for batch in batches {
                #expect(batch.baseOffset == expected)
                #expect(batch.partitionLeaderEpoch == (expected == 0 ? 4 : 7))
                #expect(batch.isCRCValid)
                expected = batch.nextOffset
            }
            #expect(expected == 1203)
            // Byte for byte, each stored batch is the request's batch but for its first 16 bytes.
            let stored = batches[1].buffer
            #expect(stored.getBytes(at: stored.readerIndex + 16, length: stored.readableBytes - 16)
                    == shared.getBytes(at: shared.readerIndex + 16, length: stored.readableBytes - 16))
        }
    }
}
