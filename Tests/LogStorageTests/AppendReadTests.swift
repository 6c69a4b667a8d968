import Foundation
import KafkaProtocol
import NIOCore
import Testing

@testable import LogStorage

/// The bytes a batch should have on disk: as sent, with base offset and leader epoch stamped.
func stamped(_ bytes: [UInt8], baseOffset: Int64, epoch: Int32) -> [UInt8] {
    var buffer = ByteBuffer(bytes: bytes)
    buffer.setInteger(baseOffset, at: RecordBatch.Offset.baseOffset)
    buffer.setInteger(epoch, at: RecordBatch.Offset.partitionLeaderEpoch)
    return Array(buffer.readableBytesView)
}

struct ExpectedBatch {
    var baseOffset: Int64
    var count: Int
    var bytes: [UInt8]
    var maxTimestamp: Int64
    var lastOffset: Int64 { baseOffset + Int64(count) - 1 }
}

/// Appends `n` batches of 1-4 records with growing timestamps; returns what the log should hold.
func appendBatches(
    _ log: PartitionLog, _ n: Int, epoch: Int32 = 3, valueSize: Int = 20, startTimestamp: Int64 = 1_700_000_000_000,
    now: Int64 = LogClock.nowMillis()
) throws -> [ExpectedBatch] {
    var expected: [ExpectedBatch] = []
    for i in 0..<n {
        let count = 1 + i % 4
        let timestamp = startTimestamp + Int64(i) * 100
        let batch = makeBatch(count: count, valueSize: valueSize + i % 37, timestamp: timestamp, seed: UInt8(i % 251))
        let bytes = Array(batch.readableBytesView)
        let info = try log.appendAsLeader(batch, leaderEpoch: epoch, now: now)
        expected.append(
            ExpectedBatch(
                baseOffset: info.firstOffset, count: count, bytes: stamped(bytes, baseOffset: info.firstOffset, epoch: epoch),
                maxTimestamp: timestamp + Int64(count - 1)))
    }
    return expected
}

@Suite("Append and read")
struct AppendReadTests {
    @Test("round trip across many segments, every offset found through the index")
    func roundTripAcrossSegments() throws {
        try withTemporaryDirectory { dir in
            let config = LogConfig(segmentBytes: 2048, indexIntervalBytes: 200)
            let log = try openLog(dir, config: config)
            let expected = try appendBatches(log, 300)
            #expect(log.segmentCount > 10)
            #expect(log.logEndOffset == expected.last!.lastOffset + 1)
            // Offsets are consecutive from 0.
            var next: Int64 = 0
            for batch in expected {
                #expect(batch.baseOffset == next)
                next += Int64(batch.count)
            }

            func checkEveryOffset(_ log: PartitionLog) throws {
                for batch in expected {
                    for offset in batch.baseOffset...batch.lastOffset {
                        let result = try log.read(from: offset, maxBytes: 1)
                        #expect(result.firstOffset == batch.baseOffset)
                        #expect(result.batchCount == 1)
                        #expect(Array(result.records.readableBytesView) == batch.bytes)
                        #expect(result.nextOffset == batch.lastOffset + 1)
                    }
                }
            }
            try checkEveryOffset(log)

            // Reading everything batch-run by batch-run gives back exactly the appended bytes.
            let all = try readAll(log, maxBytes: 700)
            #expect(all.count == expected.count)
            #expect(all.map { Array($0.buffer.readableBytesView) } == expected.map(\.bytes))
            for batch in all { #expect(batch.isCRCValid) }

            // And after a clean close and reopen.
            try log.close()
            let reopened = try openLog(dir, config: config)
            #expect(reopened.logEndOffset == log.logEndOffset)
            #expect(reopened.segmentCount == log.segmentCount)
            try checkEveryOffset(reopened)
            // Appends continue where the log ended.
            let info = try reopened.appendAsLeader(makeBatch(count: 2), leaderEpoch: 3)
            #expect(info.firstOffset == expected.last!.lastOffset + 1)
            try reopened.close()
        }
    }

    @Test("Kafka's file layout and index formats")
    func fileLayout() throws {
        try withTemporaryDirectory { dir in
            let config = LogConfig(segmentBytes: 4000, indexIntervalBytes: 300)
            let log = try openLog(dir, config: config)
            let expected = try appendBatches(log, 100)
            try log.close()
            let partitionDir = dir + "/orders-0"
            let files = listFiles(partitionDir)
            let bases = log.segmentBaseOffsets
            for base in bases {
                #expect(files.contains(segmentName(base, ".log")))
                #expect(files.contains(segmentName(base, ".index")))
                #expect(files.contains(segmentName(base, ".timeindex")))
            }
            #expect(files.contains("leader-epoch-checkpoint"))
            #expect(files.contains(segmentName(log.logEndOffset, ".snapshot")))
            #expect(segmentName(123, ".log") == "00000000000000000123.log")

            // Every offset index entry (relative offset, position) names the batch at that position
            // by its last offset; the time index is increasing.
            for (i, base) in bases.enumerated() {
                let index = fileBytes(partitionDir + "/" + segmentName(base, ".index"))
                let logBytes = fileBytes(partitionDir + "/" + segmentName(base, ".log"))
                #expect(index.count % 8 == 0)
                var previous: (Int32, Int32) = (-1, -1)
                for e in stride(from: 0, to: index.count, by: 8) {
                    let buffer = ByteBuffer(bytes: index[e..<(e + 8)])
                    let relative: Int32 = buffer.getInteger(at: 0)!
                    let position: Int32 = buffer.getInteger(at: 4)!
                    #expect(relative > previous.0 && position > previous.1)
                    previous = (relative, position)
                    let batchBuffer = ByteBuffer(bytes: logBytes[Int(position)...])
                    let header = BatchHeader(batchBuffer, at: 0)!
                    #expect(header.lastOffset == base + Int64(relative))
                }
                let timeIndex = fileBytes(partitionDir + "/" + segmentName(base, ".timeindex"))
                #expect(timeIndex.count % 12 == 0)
                #expect(timeIndex.count >= 12)  // at least the final entry written at roll/close
                let last = ByteBuffer(bytes: timeIndex[(timeIndex.count - 12)...])
                let lastTimestamp: Int64 = last.getInteger(at: 0)!
                let lastRelative: Int32 = last.getInteger(at: 8)!
                let segmentBatches = expected.filter {
                    $0.baseOffset >= base && (i + 1 == bases.count || $0.baseOffset < bases[i + 1])
                }
                let maxBatch = segmentBatches.max { $0.maxTimestamp < $1.maxTimestamp }!
                #expect(lastTimestamp == maxBatch.maxTimestamp)
                #expect(base + Int64(lastRelative) == maxBatch.lastOffset)
            }
            let epochs = String(decoding: fileBytes(partitionDir + "/leader-epoch-checkpoint"), as: UTF8.self)
            #expect(epochs == "0\n1\n3 0\n")
        }
    }

    @Test("maxBytes returns whole batches; minOneBatch; upper bound; log end; out of range")
    func readLimits() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir)
            var sizes: [Int] = []
            for i in 0..<10 {
                let batch = makeBatch(count: 2, valueSize: 100, seed: UInt8(i))
                sizes.append(batch.readableBytes)
                _ = try log.appendAsLeader(batch, leaderEpoch: 0)
            }
            let size = sizes[0]
            #expect(sizes.allSatisfy { $0 == size })

            // Smaller than one batch: one whole batch with minOneBatch, nothing without.
            var result = try log.read(from: 0, maxBytes: 10, minOneBatch: true)
            #expect(result.records.readableBytes == size)
            #expect(result.batchCount == 1)
            result = try log.read(from: 0, maxBytes: 10, minOneBatch: false)
            #expect(result.records.readableBytes == 0)

            // 2.5 batches: two whole batches, never a partial one.
            result = try log.read(from: 0, maxBytes: size * 5 / 2, minOneBatch: false)
            #expect(result.batchCount == 2)
            #expect(result.records.readableBytes == 2 * size)
            #expect(result.nextOffset == 4)

            // From the middle of a batch: the batch containing the offset, whole.
            result = try log.read(from: 5, maxBytes: size)
            #expect(result.firstOffset == 4)
            #expect(result.batchCount == 1)

            // Upper bound (high watermark): batches reaching it are excluded.
            result = try log.read(from: 0, maxBytes: 1 << 20, upTo: 6)
            #expect(result.batchCount == 3)
            #expect(result.nextOffset == 6)
            result = try log.read(from: 6, maxBytes: 1 << 20, upTo: 6)
            #expect(result.records.readableBytes == 0)
            result = try log.read(from: 6, maxBytes: 1 << 20, upTo: 7)  // bound inside a batch
            #expect(result.records.readableBytes == 0)

            // At the log end: empty. Beyond, or below the start: out of range.
            result = try log.read(from: 20, maxBytes: 1000)
            #expect(result.records.readableBytes == 0)
            #expect(result.logEndOffset == 20)
            #expect(throws: LogStorageError.offsetOutOfRange(testTopic, requested: 21, logStartOffset: 0, logEndOffset: 20)) {
                try log.read(from: 21, maxBytes: 1000)
            }
            log.updateHighWatermark(20)
            try log.deleteRecords(before: 4)
            #expect(throws: LogStorageError.offsetOutOfRange(testTopic, requested: 3, logStartOffset: 4, logEndOffset: 20)) {
                try log.read(from: 3, maxBytes: 1000)
            }
            result = try log.read(from: 4, maxBytes: 1000)
            #expect(result.firstOffset == 4)
            #expect(result.logStartOffset == 4)
            #expect(result.highWatermark == 20)
            try log.close()
        }
    }

    @Test("large reads go through one pread of whole batches; small ones reuse the header scan")
    func largeReads() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir, config: LogConfig(segmentBytes: 256 * 1024, indexIntervalBytes: 4096))
            let expected = try appendBatches(log, 400, valueSize: 300)
            #expect(log.segmentCount >= 2)
            // 40 KiB from several places: whole batches only, exactly the stored bytes.
            for start in [Int64(0), 17, 300, 555] {
                let result = try log.read(from: start, maxBytes: 40 * 1024)
                #expect(result.records.readableBytes <= 40 * 1024)
                #expect(result.records.readableBytes > 30 * 1024 || result.nextOffset == log.segmentBaseOffsets.last!)
                let batches = try RecordBatch.batches(in: result.records, allowPartialTrailingBatch: false)
                let first = expected.firstIndex { $0.lastOffset >= start }!
                #expect(batches.map { Array($0.buffer.readableBytesView) } == expected[first..<(first + batches.count)].map(\.bytes))
            }
            try log.close()
        }
    }

    @Test("a deleted segment stays readable through the descriptor a reader holds")
    func deletedSegmentStaysReadable() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir, config: LogConfig(segmentBytes: 1024, retentionBytes: 0, fileDeleteDelayMs: 0))
            let expected = try appendBatches(log, 30)
            let oldest = log.lock.withLock { log.segments[0] }
            let size = log.lock.withLock { oldest.size }
            log.updateHighWatermark(log.logEndOffset)
            #expect(try log.deleteOldSegments() > 0)
            #expect(!fileExists(oldest.logPath))
            #expect(!listFiles(dir + "/orders-0").contains(segmentName(0, ".log")))
            let bytes = try oldest.log.read(count: Int(size), at: 0, allocator: ByteBufferAllocator())
            let batches = try RecordBatch.batches(in: bytes)
            #expect(Array(batches[0].buffer.readableBytesView) == expected[0].bytes)
            try log.close()
        }
    }

    @Test("multi-batch appends, one write; follower appends keep offsets")
    func multiBatchAndFollower() throws {
        try withTemporaryDirectory { dir in
            let leader = try openLog(dir + "/leader")
            let records = concatenate([makeBatch(count: 3), makeBatch(count: 1), makeBatch(count: 5)])
            let info = try leader.appendAsLeader(records, leaderEpoch: 7)
            #expect(info.firstOffset == 0 && info.lastOffset == 8 && info.batchCount == 3 && info.recordCount == 9)
            _ = try leader.appendAsLeader(makeBatch(count: 2), leaderEpoch: 8)
            #expect(leader.leaderEpochEntries == [EpochEntry(epoch: 7, startOffset: 0), EpochEntry(epoch: 8, startOffset: 9)])

            // Replicate to a follower exactly as fetched.
            let follower = try openLog(dir + "/follower")
            let fetched = try leader.read(from: 0, maxBytes: 1 << 20)
            let followerInfo = try follower.appendAsFollower(fetched.records)
            #expect(followerInfo.firstOffset == 0 && followerInfo.lastOffset == 10)
            #expect(follower.logEndOffset == 11)
            #expect(follower.leaderEpochEntries == leader.leaderEpochEntries)
            #expect(follower.endOffset(forEpoch: 7) == (7, 9))
            #expect(follower.endOffset(forEpoch: 8) == (8, 11))
            let copy = try follower.read(from: 0, maxBytes: 1 << 20)
            #expect(copy.records == fetched.records)

            // A follower append below the log end offset is refused.
            #expect(throws: LogStorageError.unexpectedAppendOffset(testTopic, firstOffset: 0, logEndOffset: 11)) {
                try follower.appendAsFollower(fetched.records)
            }
            // A gap is allowed (a compacted leader): offsets jump.
            var gapBuilder = try RecordBatchBuilder(baseOffset: 100, partitionLeaderEpoch: 9).withRecord()
            let gapBatch = try gapBuilder.build()
            _ = try follower.appendAsFollower(gapBatch.buffer)
            #expect(follower.logEndOffset == 101)
            let afterGap = try follower.read(from: 11, maxBytes: 1 << 20)
            #expect(afterGap.firstOffset == 100)
            #expect(follower.latestEpoch == 9)
            try leader.close()
            try follower.close()
        }
    }

    @Test("invalid records are refused without touching the log")
    func invalidRecords() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir, config: LogConfig(maxMessageBytes: 500))
            var corrupt = makeBatch(count: 2)
            let index = corrupt.readerIndex + corrupt.readableBytes - 1
            corrupt.setInteger(corrupt.getInteger(at: index, as: UInt8.self)! ^ 0xFF, at: index)
            #expect {
                try log.appendAsLeader(corrupt, leaderEpoch: 0)
            } throws: { error in
                guard case .invalidRecords(_, let reason) = error as? LogStorageError else { return false }
                return reason.contains("CRC")
            }
            var torn = makeBatch(count: 2)
            torn.moveWriterIndex(to: torn.writerIndex - 3)
            #expect(throws: LogStorageError.self) { try log.appendAsLeader(torn, leaderEpoch: 0) }
            let big = makeBatch(count: 1, valueSize: 600)
            #expect(throws: LogStorageError.recordBatchTooLarge(testTopic, size: big.readableBytes, max: 500, setting: "max.message.bytes")) {
                try log.appendAsLeader(big, leaderEpoch: 0)
            }
            #expect(log.logEndOffset == 0)
            #expect(log.size == 0)
            #expect(LogStorageError.recordBatchTooLarge(testTopic, size: 1, max: 0, setting: "max.message.bytes").kafkaErrorCode == 10)
            try log.close()
        }
    }

    @Test("LogAppendTime rewrites max timestamp and CRC")
    func logAppendTime() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir)
            let now: Int64 = 1_800_000_000_000
            let info = try log.appendAsLeader(makeBatch(count: 3, timestamp: 5), leaderEpoch: 0, logAppendTime: true, now: now)
            #expect(info.logAppendTime == now)
            #expect(info.maxTimestamp == now)
            let batch = try RecordBatch(try log.read(from: 0, maxBytes: 1000).records)
            #expect(batch.maxTimestamp == now)
            #expect(batch.timestampType == .logAppendTime)
            try batch.validate()
            #expect(try batch.decodeRecords().allSatisfy { $0.timestamp == now })
            try log.close()
        }
    }

    @Test("offsetForTimestamp and max timestamp, across segments")
    func timestamps() throws {
        try withTemporaryDirectory { dir in
            let config = LogConfig(segmentBytes: 1500, indexIntervalBytes: 100)
            let log = try openLog(dir, config: config)
            // Batch i: 3 records with timestamps base + 1000*i + {0, 10, 20}.
            let base: Int64 = 1_700_000_000_000
            for i in 0..<60 {
                _ = try log.appendAsLeader(
                    makeBatch(count: 3, timestamp: base + Int64(i) * 1000, timestampStep: 10), leaderEpoch: 2)
            }
            #expect(log.segmentCount > 3)
            func check(_ log: PartitionLog) throws {
                // Exactly a record's timestamp.
                var found = try log.offsetForTimestamp(base + 17 * 1000 + 10)
                #expect(found == TimestampAndOffset(timestamp: base + 17_010, offset: 17 * 3 + 1, leaderEpoch: 2))
                // Between records: the next record.
                found = try log.offsetForTimestamp(base + 17 * 1000 + 11)
                #expect(found?.offset == Int64(17 * 3 + 2))
                found = try log.offsetForTimestamp(base + 17 * 1000 + 21)
                #expect(found?.offset == Int64(18 * 3))
                #expect(found?.timestamp == base + 18_000)
                // Before everything: the first record; after everything: none.
                found = try log.offsetForTimestamp(0)
                #expect(found?.offset == 0)
                found = try log.offsetForTimestamp(base + 60 * 1000)
                #expect(found == nil)
                // Every batch start.
                for i in 0..<60 {
                    #expect(try log.offsetForTimestamp(base + Int64(i) * 1000)?.offset == Int64(i) * 3)
                }
                let max = try log.maxTimestampAndOffset()
                #expect(max == TimestampAndOffset(timestamp: base + 59_020, offset: 59 * 3 + 2, leaderEpoch: 2))
            }
            try check(log)
            try log.close()
            try check(try openLog(dir, config: config))

            // Timestamps going backwards: max timestamp is the first record holding it.
            let other = try openLog(dir + "/other")
            _ = try other.appendAsLeader(makeBatch(count: 3, timestamp: 500, timestampStep: -100), leaderEpoch: 0)
            _ = try other.appendAsLeader(makeBatch(count: 2, timestamp: 100), leaderEpoch: 0)
            #expect(try other.maxTimestampAndOffset() == TimestampAndOffset(timestamp: 500, offset: 0, leaderEpoch: 0))
            #expect(try other.offsetForTimestamp(350)?.offset == 0)
            try other.close()
        }
    }

    @Test("roll by size, by time and when an index is full")
    func rolls() throws {
        try withTemporaryDirectory { dir in
            let batchSize = makeBatch(count: 1, valueSize: 100).readableBytes
            // Size: three batches fit, the fourth rolls.
            let bySize = try openLog(dir + "/size", config: LogConfig(segmentBytes: batchSize * 3))
            for _ in 0..<7 { _ = try bySize.appendAsLeader(makeBatch(count: 1, valueSize: 100), leaderEpoch: 0) }
            #expect(bySize.segmentBaseOffsets == [0, 3, 6])

            // Time: segment.ms after the first batch's timestamp.
            let t0: Int64 = 1_700_000_000_000
            let byTime = try openLog(dir + "/time", config: LogConfig(segmentMs: 1000), now: t0)
            _ = try byTime.appendAsLeader(makeBatch(timestamp: t0), leaderEpoch: 0, now: t0)
            _ = try byTime.appendAsLeader(makeBatch(timestamp: t0 + 500), leaderEpoch: 0, now: t0 + 500)
            #expect(byTime.segmentCount == 1)
            let info = try byTime.appendAsLeader(makeBatch(timestamp: t0 + 1001), leaderEpoch: 0, now: t0 + 1001)
            #expect(info.rolled)
            #expect(byTime.segmentBaseOffsets == [0, 2])

            // Index full: segment.index.bytes of 2 offset entries (and 1 time entry): index every batch.
            let byIndex = try openLog(dir + "/index", config: LogConfig(indexIntervalBytes: 0, maxIndexBytes: 16))
            for i in 0..<10 {
                _ = try byIndex.appendAsLeader(makeBatch(timestamp: t0 + Int64(i)), leaderEpoch: 0)
            }
            #expect(byIndex.segmentCount > 3)
            for offset in 0..<Int64(10) {
                #expect(try byIndex.read(from: offset, maxBytes: 1).firstOffset == offset)
            }

            // A roll takes a producer snapshot at the new base offset and marks the old segment for
            // the next flush.
            #expect(fileExists(dir + "/size/orders-0/" + segmentName(3, ".snapshot")))
            #expect(bySize.recoveryPoint == 0)
            #expect(try bySize.flushIfDue())
            #expect(bySize.recoveryPoint == 6)
            try bySize.close()
            try byTime.close()
            try byIndex.close()
        }
    }
}

extension RecordBatchBuilder {
    func withRecord() throws -> RecordBatchBuilder {
        var copy = self
        try copy.append(key: nil, value: ByteBuffer(string: "gap"), timestamp: 1)
        return copy
    }
}
