import Foundation
import KafkaProtocol
import NIOCore
import Testing

@testable import LogStorage

@Suite("Retention, DeleteRecords, truncation, flush")
struct RetentionTruncationTests {
    let batchSize = makeBatch(count: 1, valueSize: 100).readableBytes

    /// A log of `segments` segments of `perSegment` one-record batches; batch i has timestamp t0 + i*1000.
    func filledLog(_ dir: String, segments: Int = 5, perSegment: Int = 4, config: LogConfig? = nil, t0: Int64) throws -> PartitionLog {
        let config = config ?? LogConfig(segmentBytes: batchSize * perSegment, fileDeleteDelayMs: 1000)
        let log = try openLog(dir, config: config, now: t0)
        for i in 0..<(segments * perSegment) {
            _ = try log.appendAsLeader(
                makeBatch(count: 1, valueSize: 100, timestamp: t0 + Int64(i) * 1000), leaderEpoch: Int32(i / 7), now: t0)
        }
        #expect(log.segmentCount == segments)
        return log
    }

    @Test("retention.ms deletes whole old segments, never the active one, never past the high watermark")
    func retentionByTime() throws {
        try withTemporaryDirectory { dir in
            let t0: Int64 = 1_700_000_000_000
            var config = LogConfig(segmentBytes: batchSize * 4, retentionMs: 10_000, fileDeleteDelayMs: 1000)
            let log = try filledLog(dir, config: config, t0: t0)
            let partitionDir = dir + "/orders-0"
            // Segment k's largest timestamp is t0 + (4k+3)*1000. At t0 + 20_000 the first two
            // (largest t0+3000, t0+7000) are older than 10 s... but the high watermark is 0.
            let now = t0 + 20_000
            #expect(try log.deleteOldSegments(now: now) == 0)
            log.updateHighWatermark(log.logEndOffset)
            #expect(try log.deleteOldSegments(now: now) == 2)
            #expect(log.segmentBaseOffsets == [8, 12, 16])
            #expect(log.logStartOffset == 8)
            // Files renamed *.deleted, removed after file.delete.delay.ms.
            #expect(fileExists(partitionDir + "/" + segmentName(0, ".log.deleted")))
            #expect(try log.removeDeletedFiles(now: now) == 0)
            #expect(try log.removeDeletedFiles(now: now + 1000) > 0)
            #expect(!listFiles(partitionDir).contains { $0.hasSuffix(".deleted") })
            // Producer snapshots of deleted segments go too; the epoch cache starts at the log start.
            #expect(!fileExists(partitionDir + "/" + segmentName(4, ".snapshot")))
            #expect(log.leaderEpochEntries.first == EpochEntry(epoch: 1, startOffset: 8))
            #expect(throws: LogStorageError.self) { try log.read(from: 7, maxBytes: 100) }
            // Far in the future everything but the active segment goes.
            #expect(try log.deleteOldSegments(now: now + 1_000_000) == 2)
            #expect(log.segmentBaseOffsets == [16])
            #expect(log.logStartOffset == 16)
            // retention.ms = -1 keeps everything.
            config.retentionMs = -1
            try log.updateConfig(config)
            _ = try log.appendAsLeader(makeBatch(count: 1, valueSize: 100), leaderEpoch: 5, now: now)
            #expect(try log.deleteOldSegments(now: now + 10_000_000) == 0)
            try log.close()
        }
    }

    @Test("retention.bytes deletes the oldest segments while the log is too large")
    func retentionBySize() throws {
        try withTemporaryDirectory { dir in
            let t0 = LogClock.nowMillis()
            let config = LogConfig(
                segmentBytes: batchSize * 4, retentionMs: -1, retentionBytes: Int64(batchSize * 8 - 10), fileDeleteDelayMs: 0)
            let log = try filledLog(dir, config: config, t0: t0)
            log.updateHighWatermark(log.logEndOffset)
            // 5 full segments, 20 batches; Kafka keeps the log at or above retention.bytes: delete 3.
            #expect(try log.deleteOldSegments(now: t0) == 3)
            #expect(log.segmentBaseOffsets == [12, 16])
            #expect(log.size == Int64(batchSize * 8))
            #expect(!fileExists(dir + "/orders-0/" + segmentName(0, ".log.deleted")))  // no delay
            #expect(try log.deleteOldSegments(now: t0) == 0)
            try log.close()
        }
    }

    @Test("DeleteRecords raises the log start offset up to the high watermark")
    func deleteRecords() throws {
        try withTemporaryDirectory { dir in
            let log = try filledLog(dir, t0: 1_700_000_000_000)
            log.updateHighWatermark(10)
            #expect(throws: LogStorageError.offsetBeyondHighWatermark(testTopic, requested: 11, highWatermark: 10)) {
                try log.deleteRecords(before: 11)
            }
            #expect(try log.deleteRecords(before: 6) == 6)
            #expect(log.logStartOffset == 6)
            #expect(log.segmentBaseOffsets == [4, 8, 12, 16])  // segment 0 wholly below, deleted
            let result = try log.read(from: 6, maxBytes: 1)
            #expect(result.firstOffset == 6)
            // Lower than the current start: no change.
            #expect(try log.deleteRecords(before: 2) == 6)
            try log.close()
            // The log start offset comes back from the checkpoint.
            let reopened = try openLog(dir, config: log.config, logStartOffset: 6)
            #expect(reopened.logStartOffset == 6)
            #expect(throws: LogStorageError.self) { try reopened.read(from: 5, maxBytes: 1) }
            try reopened.close()
        }
    }

    @Test("truncate drops everything at and after an offset, across segments; appends continue")
    func truncate() throws {
        try withTemporaryDirectory { dir in
            let log = try filledLog(dir, t0: 1_700_000_000_000)
            log.updateHighWatermark(20)
            #expect(log.leaderEpochEntries.map(\.epoch) == [0, 1, 2])
            #expect(try !log.truncate(to: 20))
            // Into the second segment: later segments deleted, the segment cut.
            #expect(try log.truncate(to: 6))
            #expect(log.logEndOffset == 6)
            #expect(log.segmentBaseOffsets == [0, 4])
            #expect(log.highWatermark == 6)
            #expect(log.leaderEpochEntries == [EpochEntry(epoch: 0, startOffset: 0)])
            #expect(try readAll(log).count == 6)
            #expect(try log.read(from: 6, maxBytes: 100).records.readableBytes == 0)
            let info = try log.appendAsLeader(makeBatch(count: 3), leaderEpoch: 9)
            #expect(info.firstOffset == 6)
            #expect(log.leaderEpochEntries.last == EpochEntry(epoch: 9, startOffset: 6))
            #expect(log.endOffset(forEpoch: 0) == (0, 6))
            // Truncating in the middle of a batch removes the whole batch.
            #expect(try log.truncate(to: 7))
            #expect(log.logEndOffset == 6)
            // Truncation at a segment boundary keeps the (now empty) segment.
            #expect(try log.truncate(to: 4))
            #expect(log.segmentBaseOffsets == [0, 4])
            #expect(log.logEndOffset == 4)
            try log.close()
            let reopened = try openLog(dir, config: log.config)
            #expect(reopened.logEndOffset == 4)
            #expect(try readAll(reopened).count == 4)
            try reopened.close()
        }
    }

    @Test("truncateFullyAndStartAt empties the log at a new offset")
    func truncateFully() throws {
        try withTemporaryDirectory { dir in
            let log = try filledLog(dir, t0: 1_700_000_000_000)
            try log.truncateFullyAndStartAt(1000)
            #expect(log.logStartOffset == 1000 && log.logEndOffset == 1000 && log.highWatermark == 1000)
            #expect(log.segmentBaseOffsets == [1000])
            #expect(log.leaderEpochEntries.isEmpty)
            let info = try log.appendAsLeader(makeBatch(count: 2), leaderEpoch: 3)
            #expect(info.firstOffset == 1000)
            #expect(throws: LogStorageError.self) { try log.read(from: 5, maxBytes: 1) }
            try log.close()
            let reopened = try openLog(dir, config: log.config, logStartOffset: 1000)
            #expect(reopened.logStartOffset == 1000 && reopened.logEndOffset == 1002)
            try reopened.close()
        }
    }

    @Test("flush.messages fsyncs on append; flush.ms via flushIfDue; the default never flushes")
    func flushPolicy() throws {
        try withTemporaryDirectory { dir in
            let t0: Int64 = 1_700_000_000_000
            let byCount = try openLog(dir + "/count", config: LogConfig(flushIntervalMessages: 5), now: t0)
            for _ in 0..<4 { _ = try byCount.appendAsLeader(makeBatch(count: 1), leaderEpoch: 0, now: t0) }
            #expect(byCount.recoveryPoint == 0)
            #expect(byCount.unflushedMessages == 4)
            _ = try byCount.appendAsLeader(makeBatch(count: 1), leaderEpoch: 0, now: t0)
            #expect(byCount.recoveryPoint == 5)
            #expect(byCount.unflushedMessages == 0)

            let byTime = try openLog(dir + "/time", config: LogConfig(flushIntervalMs: 1000), now: t0)
            _ = try byTime.appendAsLeader(makeBatch(count: 3), leaderEpoch: 0, now: t0)
            #expect(try !byTime.flushIfDue(now: t0 + 999))
            #expect(try byTime.flushIfDue(now: t0 + 1000))
            #expect(byTime.recoveryPoint == 3)
            #expect(try !byTime.flushIfDue(now: t0 + 5000))  // nothing new

            let never = try openLog(dir + "/default", now: t0)
            for _ in 0..<50 { _ = try never.appendAsLeader(makeBatch(count: 10), leaderEpoch: 0, now: t0) }
            #expect(try !never.flushIfDue(now: t0 + 365 * 86_400_000))
            #expect(never.recoveryPoint == 0)
            try never.flush()
            #expect(never.recoveryPoint == 500)
            try byCount.close()
            try byTime.close()
            try never.close()
        }
    }
}
