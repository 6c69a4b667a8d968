import Foundation
import KafkaProtocol
import NIOCore
import Testing

@testable import LogStorage

/// `PETREL_LOG_BENCH=1 swift test --filter LogBenchmark`: append and read throughput, printed.
/// `PETREL_LOG_BENCH_DIR` picks the directory (default: the temp dir).
@Suite("Log benchmark", .enabled(if: ProcessInfo.processInfo.environment["PETREL_LOG_BENCH"] != nil))
struct LogBenchmark {
    func measure(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    @Test("1 MiB batches and 100-byte batches: append, then read everything back")
    func throughput() throws {
        let base = ProcessInfo.processInfo.environment["PETREL_LOG_BENCH_DIR"]
        let run = { (dir: String) throws in
            let log = try openLog(dir, config: LogConfig(segmentBytes: 256 << 20))
            // 256 appends of one 1 MiB batch (64 records of 16 KiB).
            let big = makeBatch(count: 64, valueSize: 16 * 1024 - 20)
            let bigCount = 256
            var copies = (0..<bigCount).map { _ in ByteBuffer(buffer: big) }
            var seconds = try measure {
                for i in 0..<bigCount {
                    _ = try log.appendAsLeader(copies[i], leaderEpoch: 0)
                    copies[i] = ByteBuffer()
                }
            }
            let bigBytes = Double(big.readableBytes * bigCount)
            print("append 1 MiB batches: \(bigCount) in \(String(format: "%.3f", seconds)) s = \(String(format: "%.0f", bigBytes / seconds / 1_048_576)) MiB/s")

            let small = makeBatch(count: 1, valueSize: 100)
            let smallCount = 100_000
            var smallCopies = (0..<smallCount).map { _ in ByteBuffer(buffer: small) }
            seconds = try measure {
                for i in 0..<smallCount {
                    _ = try log.appendAsLeader(smallCopies[i], leaderEpoch: 0)
                    smallCopies[i] = ByteBuffer()
                }
            }
            print("append \(small.readableBytes)-byte batches: \(smallCount) in \(String(format: "%.3f", seconds)) s = \(String(format: "%.0f", Double(smallCount) / seconds)) appends/s")

            var total = 0
            var fetches = 0
            seconds = try measure {
                var offset: Int64 = 0
                while offset < log.logEndOffset {
                    let result = try log.read(from: offset, maxBytes: 1 << 20)
                    total += result.records.readableBytes
                    fetches += 1
                    offset = result.nextOffset
                }
            }
            print("read everything with 1 MiB fetches: \(fetches) fetches, \(total >> 20) MiB in \(String(format: "%.3f", seconds)) s = \(String(format: "%.0f", Double(total) / seconds / 1_048_576)) MiB/s")

            seconds = try measure {
                for i in 0..<20_000 {
                    let offset = Int64(i * 5 % Int(log.logEndOffset))
                    _ = try log.read(from: offset, maxBytes: 4096)
                }
            }
            print("random 4 KiB reads: 20000 in \(String(format: "%.3f", seconds)) s = \(String(format: "%.0f", 20_000 / seconds)) reads/s")
            seconds = try measure { try log.flush() }
            print("flush (fdatasync of \(log.size >> 20) MiB): \(String(format: "%.3f", seconds)) s")
            try log.close()
        }
        if let base {
            let dir = base + "/petrel-bench-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try run(dir)
        } else {
            try withTemporaryDirectory(run)
        }
    }
}
