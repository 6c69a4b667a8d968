import Foundation
import KafkaProtocol
import NIOCore
import Testing

@testable import LogStorage

@Suite("Concurrency")
struct ConcurrencyTests {
    @Test("two partitions appended from two threads while readers follow them")
    func twoPartitionsTwoThreads() throws {
        try withTemporaryDirectory { root in
            let manager = try LogManager(
                logDirectories: [root + "/d"], defaultConfig: LogConfig(segmentBytes: 8192, indexIntervalBytes: 512),
                logger: makeLogger().0)
            let tps = [TopicPartition(topic: "a", partition: 0), TopicPartition(topic: "b", partition: 0)]
            let logs = try tps.map { try manager.getOrCreateLog($0) }
            let perThread = 400
            let failures = FailureBox()
            let group = DispatchGroup()
            for (i, log) in logs.enumerated() {
                // Writer.
                DispatchQueue.global().async(group: group) {
                    do {
                        for n in 0..<perThread {
                            let info = try log.appendAsLeader(
                                makeBatch(count: 1 + n % 3, valueSize: 50, seed: UInt8(i)), leaderEpoch: Int32(i))
                            log.updateHighWatermark(info.lastOffset + 1)
                            if n % 50 == 0 { try log.flush() }
                        }
                    } catch { failures.add("writer \(i): \(error)") }
                }
                // Reader: follows the high watermark, checks every batch is whole and contiguous.
                DispatchQueue.global().async(group: group) {
                    do {
                        var offset: Int64 = 0
                        var batches = 0
                        while batches < perThread {
                            let result = try log.read(from: offset, maxBytes: 2000, upTo: log.highWatermark)
                            if result.records.readableBytes == 0 { continue }
                            for batch in try RecordBatch.batches(in: result.records, allowPartialTrailingBatch: false) {
                                try batch.validate()
                                if batch.baseOffset != offset { failures.add("reader \(i): expected \(offset), got \(batch.baseOffset)") }
                                offset = batch.nextOffset
                                batches += 1
                            }
                        }
                    } catch { failures.add("reader \(i): \(error)") }
                }
            }
            group.wait()
            #expect(failures.messages.isEmpty, "\(failures.messages)")
            for log in logs {
                #expect(try readAll(log).count == perThread)
                #expect(log.segmentCount > 3)
            }
            try manager.shutdown()
        }
    }

    @Test("reads racing with truncation never return torn data")
    func readsDuringTruncation() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir, config: LogConfig(segmentBytes: 4096))
            _ = try appendBatches(log, 200)
            let failures = FailureBox()
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) {
                do {
                    for round in 0..<30 {
                        try log.truncate(to: Int64(300 - round * 5))
                        for _ in 0..<3 { _ = try log.appendAsLeader(makeBatch(count: 2, valueSize: 40), leaderEpoch: 4) }
                    }
                } catch { failures.add("truncator: \(error)") }
            }
            DispatchQueue.global().async(group: group) {
                for n in 0..<3000 {
                    let offset = Int64(n % 250)
                    do {
                        let result = try log.read(from: offset, maxBytes: 3000)
                        for batch in try RecordBatch.batches(in: result.records, allowPartialTrailingBatch: false) {
                            try batch.validate()
                        }
                    } catch LogStorageError.offsetOutOfRange {
                        // The log end moved below the offset: fine.
                    } catch { failures.add("reader: \(error)") }
                }
            }
            group.wait()
            #expect(failures.messages.isEmpty, "\(failures.messages)")
            try log.close()
        }
    }
}

final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _messages: [String] = []
    func add(_ message: String) {
        lock.lock()
        _messages.append(message)
        lock.unlock()
    }
    var messages: [String] {
        lock.lock()
        defer { lock.unlock() }
        return _messages
    }
}
