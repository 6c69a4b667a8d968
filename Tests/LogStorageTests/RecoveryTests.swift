import Foundation
import KafkaProtocol
import NIOCore
import Testing

@testable import LogStorage

enum Damage: String, CaseIterable, CustomTestStringConvertible {
    case garbage, tornHalfBatch, tornHeader, flippedCRCByte, flippedPayloadByte, zeroFilledTail
    var testDescription: String { rawValue }
}

@Suite("Crash recovery")
struct RecoveryTests {
    let config = LogConfig(segmentBytes: 4096, indexIntervalBytes: 200)

    /// Appends `n` batches and drops the log without closing it (a crash: the active segment's
    /// indexes were never written, no snapshot at the end, no marker).
    func crashedLog(_ dir: String, batches n: Int, config: LogConfig? = nil) throws -> (expected: [ExpectedBatch], bases: [Int64]) {
        let log = try openLog(dir, config: config ?? self.config)
        let expected = try appendBatches(log, n)
        return (expected, log.segmentBaseOffsets)
    }

    @Test("a damaged tail is cut to exactly the valid prefix, indexes rebuilt", arguments: Damage.allCases)
    func damagedTail(_ damage: Damage) throws {
        try withTemporaryDirectory { dir in
            let (expected, bases) = try crashedLog(dir, batches: 80)
            #expect(bases.count > 3)
            let activeBase = bases.last!
            let activePath = dir + "/orders-0/" + segmentName(activeBase, ".log")
            let originalSize = fileBytes(activePath).count
            let last = expected.last!
            var keep = expected
            let next = makeBatch(count: 4, valueSize: 300)
            let nextBytes = stamped(Array(next.readableBytesView), baseOffset: last.lastOffset + 1, epoch: 3)
            switch damage {
            case .garbage:
                appendToFile(activePath, (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
            case .tornHalfBatch:
                appendToFile(activePath, Array(nextBytes[..<(nextBytes.count / 2)]))
            case .tornHeader:
                appendToFile(activePath, Array(nextBytes[..<30]))
            case .zeroFilledTail:
                appendToFile(activePath, [UInt8](repeating: 0, count: 4096))
            case .flippedCRCByte, .flippedPayloadByte:
                var bytes = fileBytes(activePath)
                let at = damage == .flippedCRCByte
                    ? bytes.count - last.bytes.count + RecordBatch.Offset.crc + 1 : bytes.count - 5
                bytes[at] ^= 0x5A
                writeFileBytes(activePath, bytes)
                keep.removeLast()
            }
            // Stale index entries for the active segment would point past the cut: leave a bogus one.
            writeFileBytes(dir + "/orders-0/" + segmentName(activeBase, ".index"), [0, 0, 0, 1, 0x7F, 0, 0, 0])

            let (logger, messages) = makeLogger()
            let log = try openLog(dir, config: config, clean: false, recoveryPoint: 0, logger: logger)
            #expect(log.logEndOffset == keep.last!.lastOffset + 1)
            let all = try readAll(log)
            #expect(all.map { Array($0.buffer.readableBytesView) } == keep.map(\.bytes))
            let expectedSize = damage == .flippedCRCByte || damage == .flippedPayloadByte ? originalSize - last.bytes.count : originalSize
            #expect(fileBytes(activePath).count == expectedSize)
            #expect(messages.contains("truncated", level: .warning))
            #expect(messages.contains("at position \(expectedSize) in \(activePath)"))
            // Every offset is found through the rebuilt index.
            for batch in keep where batch.baseOffset >= activeBase {
                for offset in batch.baseOffset...batch.lastOffset {
                    #expect(try log.read(from: offset, maxBytes: 1).firstOffset == batch.baseOffset)
                }
            }
            // The log goes on.
            let info = try log.appendAsLeader(makeBatch(count: 2), leaderEpoch: 3)
            #expect(info.firstOffset == keep.last!.lastOffset + 1)
            #expect(log.recoveryPoint == info.firstOffset)
            try log.close()
            let reopened = try openLog(dir, config: config)
            #expect(try readAll(reopened).count == keep.count + 1)
            try reopened.close()
        }
    }

    @Test("a corrupt batch in an earlier segment drops it and every later segment")
    func corruptMiddleSegment() throws {
        try withTemporaryDirectory { dir in
            let (expected, bases) = try crashedLog(dir, batches: 150)
            try #require(bases.count >= 5)
            let victimBase = bases[2]
            let path = dir + "/orders-0/" + segmentName(victimBase, ".log")
            var bytes = fileBytes(path)
            // Corrupt the second batch of the segment.
            let first = try #require(expected.first { $0.baseOffset == victimBase })
            try #require(bytes.count > first.bytes.count + 40)
            bytes[first.bytes.count + 40] ^= 0xFF
            writeFileBytes(path, bytes)
            let (logger, messages) = makeLogger()
            let log = try openLog(dir, config: config, clean: false, recoveryPoint: 0, logger: logger)
            #expect(log.segmentBaseOffsets == Array(bases[0...2]))
            #expect(log.logEndOffset == first.lastOffset + 1)
            #expect(messages.contains("deleting segment"))
            #expect(!fileExists(dir + "/orders-0/" + segmentName(bases[3], ".log")))
            let all = try readAll(log)
            #expect(all.map { Array($0.buffer.readableBytesView) } == expected.prefix { $0.baseOffset <= first.baseOffset }.map(\.bytes))
            try log.close()
        }
    }

    @Test("flushed data survives: recovery starts at the recovery point and keeps everything below it")
    func flushedDataIsKept() throws {
        try withTemporaryDirectory { dir in
            let flushedEnd: Int64
            let expected: [ExpectedBatch]
            do {
                let log = try openLog(dir, config: config)
                var batches = try appendBatches(log, 60)
                try log.flush()
                flushedEnd = log.logEndOffset
                #expect(log.recoveryPoint == flushedEnd)
                #expect(log.unflushedMessages == 0)
                batches += try appendBatches(log, 10)
                #expect(log.recoveryPoint == flushedEnd)
                expected = batches
            }
            // Tear the unflushed tail in the middle of a batch.
            let activePath = dir + "/orders-0/" + segmentName(activeBaseOf(dir), ".log")
            var bytes = fileBytes(activePath)
            bytes.removeLast(expected.last!.bytes.count / 2)
            writeFileBytes(activePath, bytes)

            let log = try openLog(dir, config: config, clean: false, recoveryPoint: flushedEnd)
            #expect(log.logEndOffset >= flushedEnd)
            #expect(log.logEndOffset == expected[expected.count - 2].lastOffset + 1)
            let all = try readAll(log)
            #expect(all.map { Array($0.buffer.readableBytesView) } == expected.dropLast().map(\.bytes))
            try log.close()
        }
    }

    /// The base offset of the newest `.log` file.
    func activeBaseOf(_ dir: String) -> Int64 {
        listFiles(dir + "/orders-0").compactMap { SegmentFiles.offset(fromFileName: $0, suffix: ".log") }.max()!
    }

    @Test("segments below the recovery point are trusted, not rescanned")
    func belowRecoveryPointNotRescanned() throws {
        try withTemporaryDirectory { dir in
            let (expected, bases) = try crashedLog(dir, batches: 80)
            // Damage a batch of the first segment, then recover from the start of the last one.
            let path = dir + "/orders-0/" + segmentName(0, ".log")
            var bytes = fileBytes(path)
            bytes[expected[0].bytes.count - 3] ^= 0xFF
            writeFileBytes(path, bytes)
            let (logger, messages) = makeLogger()
            let log = try openLog(dir, config: config, clean: false, recoveryPoint: bases.last!, logger: logger)
            #expect(log.logEndOffset == expected.last!.lastOffset + 1)
            #expect(log.segmentCount == bases.count)
            #expect(messages.messages.filter { $0.1.contains("recovering segment") }.count == 1)
            try log.close()
        }
    }

    @Test("missing, corrupt and inconsistent index files are rebuilt from the log")
    func indexRebuild() throws {
        try withTemporaryDirectory { dir in
            let partitionDir = dir + "/orders-0"
            let log = try openLog(dir, config: config)
            let expected = try appendBatches(log, 150)
            try log.close()
            let bases = log.segmentBaseOffsets
            try #require(bases.count >= 5)
            let originals = bases.map { fileBytes(partitionDir + "/" + segmentName($0, ".index")) }
            let originalTimes = bases.map { fileBytes(partitionDir + "/" + segmentName($0, ".timeindex")) }
            #expect(originals.contains { $0.count >= 16 })

            // Inactive: one missing, one with a size not a multiple of 8, one with entries out of
            // order, one time index missing; active: index pointing past the end of the log.
            try FileManager.default.removeItem(atPath: partitionDir + "/" + segmentName(bases[0], ".index"))
            writeFileBytes(partitionDir + "/" + segmentName(bases[1], ".index"), originals[1] + [1, 2, 3])
            var swapped = originals[2]
            if swapped.count >= 16 {
                let a = Array(swapped[0..<8])
                swapped.replaceSubrange(0..<8, with: swapped[8..<16])
                swapped.replaceSubrange(8..<16, with: a)
            } else {
                swapped = [0, 0, 0, 9, 0, 0, 0, 100, 0, 0, 0, 1, 0, 0, 0, 50]
            }
            writeFileBytes(partitionDir + "/" + segmentName(bases[2], ".index"), swapped)
            try FileManager.default.removeItem(atPath: partitionDir + "/" + segmentName(bases[3], ".timeindex"))
            let activeBase = bases.last!
            writeFileBytes(
                partitionDir + "/" + segmentName(activeBase, ".index"),
                originals.last! + [0, 0, 0x10, 0, 0x00, 0x10, 0, 0])

            let (logger, messages) = makeLogger()
            let reopened = try openLog(dir, config: config, clean: true, logger: logger)
            for batch in expected {
                for offset in batch.baseOffset...batch.lastOffset {
                    let result = try reopened.read(from: offset, maxBytes: 1)
                    #expect(result.firstOffset == batch.baseOffset)
                    #expect(Array(result.records.readableBytesView) == batch.bytes)
                }
            }
            #expect(messages.contains("rebuilding indexes") || messages.contains("recovering segment"))
            #expect(try reopened.offsetForTimestamp(expected[50].maxTimestamp)?.offset == expected[50].lastOffset)
            try reopened.close()
            // The rebuilt files are identical to the ones built on append.
            for (i, base) in bases.enumerated() {
                #expect(fileBytes(partitionDir + "/" + segmentName(base, ".index")) == originals[i], "segment \(base)")
                #expect(fileBytes(partitionDir + "/" + segmentName(base, ".timeindex")) == originalTimes[i], "segment \(base)")
            }
        }
    }

    @Test("a clean shutdown marker does not protect a damaged tail")
    func cleanButDamaged() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir, config: config)
            let expected = try appendBatches(log, 20)
            try log.close()
            let activePath = dir + "/orders-0/" + segmentName(log.segmentBaseOffsets.last!, ".log")
            appendToFile(activePath, [UInt8](repeating: 0xAB, count: 77))
            let (logger, messages) = makeLogger()
            let reopened = try openLog(dir, config: config, clean: true, logger: logger)
            #expect(reopened.logEndOffset == expected.last!.lastOffset + 1)
            #expect(messages.contains("truncated 77 bytes"))
            try reopened.close()
        }
    }

    @Test("leader epoch cache: entries beyond the recovered end are dropped; a lost file is rebuilt")
    func leaderEpochRecovery() throws {
        try withTemporaryDirectory { dir in
            let partitionDir = dir + "/orders-0"
            do {
                let log = try openLog(dir, config: config)
                for _ in 0..<5 { _ = try log.appendAsLeader(makeBatch(count: 2), leaderEpoch: 1) }
                _ = try log.appendAsLeader(makeBatch(count: 2), leaderEpoch: 4)
                #expect(log.leaderEpochEntries == [EpochEntry(epoch: 1, startOffset: 0), EpochEntry(epoch: 4, startOffset: 10)])
            }
            let epochFile = partitionDir + "/leader-epoch-checkpoint"
            #expect(String(decoding: fileBytes(epochFile), as: UTF8.self) == "0\n2\n1 0\n4 10\n")
            // Lose the last batch in the crash.
            let path = partitionDir + "/" + segmentName(0, ".log")
            var bytes = fileBytes(path)
            bytes.removeLast(10)
            writeFileBytes(path, bytes)
            var log = try openLog(dir, config: config, clean: false)
            #expect(log.logEndOffset == 10)
            #expect(log.leaderEpochEntries == [EpochEntry(epoch: 1, startOffset: 0)])
            #expect(String(decoding: fileBytes(epochFile), as: UTF8.self) == "0\n1\n1 0\n")
            try log.close()

            // Remove the checkpoint: rebuilt from batch headers.
            try FileManager.default.removeItem(atPath: epochFile)
            log = try openLog(dir, config: config, clean: true)
            #expect(log.leaderEpochEntries == [EpochEntry(epoch: 1, startOffset: 0)])
            #expect(fileExists(epochFile))
            // A corrupt one too.
            try log.close()
            writeFileBytes(epochFile, Array("0\n3\n1 0\n".utf8))
            log = try openLog(dir, config: config, clean: true)
            #expect(log.leaderEpochEntries == [EpochEntry(epoch: 1, startOffset: 0)])
            try log.close()
        }
    }

    @Test("leftover files are cleaned on open")
    func leftovers() throws {
        try withTemporaryDirectory { dir in
            let partitionDir = dir + "/orders-0"
            let log = try openLog(dir, config: config)
            _ = try appendBatches(log, 5)
            try log.close()
            writeFileBytes(partitionDir + "/" + segmentName(0, ".log.deleted"), [1, 2, 3])
            writeFileBytes(partitionDir + "/" + segmentName(500, ".index"), [])
            writeFileBytes(partitionDir + "/" + segmentName(500, ".timeindex"), [])
            writeFileBytes(partitionDir + "/leader-epoch-checkpoint.tmp", [1])
            writeFileBytes(partitionDir + "/partition.metadata", Array("version: 0\n".utf8))
            let reopened = try openLog(dir, config: config)
            let files = listFiles(partitionDir)
            #expect(!files.contains { $0.hasSuffix(".deleted") || $0.hasSuffix(".tmp") })
            #expect(!files.contains(segmentName(500, ".index")))
            #expect(files.contains("partition.metadata"))
            #expect(reopened.logEndOffset == log.logEndOffset)
            try reopened.close()
        }
    }
}
