import Foundation
import KafkaProtocol
import NIOCore
import Testing

@testable import LogStorage

/// A record as a consumer sees it.
struct SeenRecord: Hashable, CustomStringConvertible {
    var offset: Int64
    var key: String?
    var value: String?
    var timestamp: Int64

    var description: String { "\(offset):\(key ?? "nil")=\(value ?? "null")@\(timestamp)" }
}

/// One batch of keyed records (a nil value is a tombstone).
func keyedBatch(
    _ entries: [(key: String?, value: String?)], timestamp: Int64, compression: CompressionCodec = .none,
    producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1
) -> ByteBuffer {
    var builder = RecordBatchBuilder(
        compression: compression, producerId: producerId, producerEpoch: producerEpoch, baseSequence: baseSequence)
    for (i, entry) in entries.enumerated() {
        try! builder.append(
            key: entry.key.map { ByteBuffer(string: $0) }, value: entry.value.map { ByteBuffer(string: $0) },
            headers: [RecordHeader(key: "h", value: ByteBuffer(string: "\(i)"))], timestamp: timestamp + Int64(i))
    }
    return try! builder.build().buffer
}

/// Every record of the log, in offset order, decoded from reads from the log start.
func seenRecords(_ log: PartitionLog) throws -> [SeenRecord] {
    try readAll(log).flatMap { batch in
        try batch.decodeRecords().map {
            SeenRecord(
                offset: $0.offset, key: $0.key.map { String(buffer: $0) }, value: $0.value.map { String(buffer: $0) },
                timestamp: $0.timestamp)
        }
    }
}

/// What compaction must leave: the latest record of each key among those below `cleanableEnd`,
/// records without a key, and everything from `cleanableEnd` on.
func compacted(_ records: [SeenRecord], cleanableEnd: Int64, dropTombstones: Bool = false) -> [SeenRecord] {
    var latest: [String: Int64] = [:]
    for record in records where record.offset < cleanableEnd {
        if let key = record.key { latest[key] = record.offset }
    }
    return records.filter { record in
        guard record.offset < cleanableEnd, let key = record.key else { return true }
        guard latest[key] == record.offset else { return false }
        return !(dropTombstones && record.value == nil)
    }
}

@Suite("Log compaction")
struct LogCleanerTests {
    let t0: Int64 = 1_700_000_000_000
    var config: LogConfig {
        LogConfig(segmentBytes: 1 << 20, indexIntervalBytes: 100, cleanupPolicy: .compact)
    }

    /// 9 rounds overwriting keys k0...k9 (a few rounds in gzip, one record without a key per
    /// round), rolling every 2 rounds, then one more round in the active segment.
    func fillOverwrites(_ log: PartitionLog, rounds: Int = 9) throws {
        for round in 0..<rounds {
            var entries: [(key: String?, value: String?)] = (0..<10).map { ("k\($0)", "r\(round)-k\($0)") }
            entries.append((nil, "unkeyed-\(round)"))
            _ = try log.appendAsLeader(
                keyedBatch(entries, timestamp: t0 + Int64(round) * 100, compression: round % 3 == 1 ? .gzip : .none),
                leaderEpoch: 1)
            // A second, smaller batch overwriting a few keys again.
            _ = try log.appendAsLeader(
                keyedBatch([("k\(round % 10)", "again-\(round)"), ("k9", "k9-\(round)")], timestamp: t0 + Int64(round) * 100 + 50),
                leaderEpoch: 1)
            if round % 2 == 1 { try log.roll() }
        }
        try log.roll()
        _ = try log.appendAsLeader(keyedBatch([("k0", "active-0"), ("k0", "active-1"), ("k1", "active")], timestamp: t0 + 10_000), leaderEpoch: 1)
        log.updateHighWatermark(log.logEndOffset)
    }

    @Test("overwritten keys compact to the latest value per key, with original offsets and contents")
    func compactsToLatest() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir, config: config)
            try fillOverwrites(log)
            let before = try seenRecords(log)
            let bases = log.segmentBaseOffsets
            #expect(bases.count >= 5)
            let activePath = log.directory + "/" + segmentName(bases.last!, ".log")
            let activeBytes = fileBytes(activePath)
            let end = log.logEndOffset
            let sizeBefore = log.size
            #expect(log.needsCleaning(firstDirtyOffset: nil, now: t0 + 20_000))

            let result = try log.clean(now: t0 + 20_000)
            #expect(result.segmentsCleaned == bases.count - 1)
            #expect(result.cleanedUpTo == bases.last!)
            #expect(result.recordsRemoved > 0)
            let expected = compacted(before, cleanableEnd: bases.last!)
            #expect(expected.count < before.count)
            let after = try seenRecords(log)
            #expect(after == expected)
            // Offsets and segments unchanged; active segment untouched; the log shrank.
            #expect(log.logEndOffset == end)
            #expect(log.segmentBaseOffsets == bases)
            #expect(fileBytes(activePath) == activeBytes)
            #expect(log.size < sizeBefore)
            #expect(!listFiles(log.directory).contains { $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") })
            // The active segment's duplicates are still there.
            #expect(after.filter { $0.key == "k0" }.map(\.value).suffix(2) == ["active-0", "active-1"])
            // Reads from inside a compacted range start at the next retained record.
            let mid = try log.read(from: 1, maxBytes: 1 << 20)
            #expect(mid.batchCount > 0)

            // A second pass changes nothing.
            let again = try log.clean(now: t0 + 20_000)
            #expect(again.segmentsCleaned == 0)
            #expect(try seenRecords(log) == expected)

            // The cleaned segments survive a clean reopen and a full recovery (CRC checks).
            try log.close()
            let reopened = try openLog(dir, config: config)
            #expect(try seenRecords(reopened) == expected)
            #expect(reopened.logEndOffset == end)
            try reopened.close()
            let recovered = try openLog(dir, config: config, clean: false, recoveryPoint: 0)
            #expect(try seenRecords(recovered) == expected)
            #expect(recovered.logEndOffset == end)
            try recovered.close()
        }
    }

    @Test("tombstones survive until delete.retention.ms, then disappear")
    func tombstones() throws {
        try withTemporaryDirectory { dir in
            var config = self.config
            config.deleteRetentionMs = 60_000
            let log = try openLog(dir, config: config)
            _ = try log.appendAsLeader(keyedBatch([("a", "a1"), ("b", "b1"), ("c", "c1")], timestamp: t0), leaderEpoch: 1)
            try log.roll()
            _ = try log.appendAsLeader(keyedBatch([("a", nil), ("b", "b2")], timestamp: t0 + 10), leaderEpoch: 1)
            try log.roll()
            _ = try log.appendAsLeader(keyedBatch([("c", nil)], timestamp: t0 + 20), leaderEpoch: 1)
            try log.roll()
            _ = try log.appendAsLeader(keyedBatch([("d", "d1")], timestamp: t0 + 30), leaderEpoch: 1)
            log.updateHighWatermark(log.logEndOffset)
            let before = try seenRecords(log)

            try log.clean(now: t0 + 1_000)
            let first = try seenRecords(log)
            #expect(first == compacted(before, cleanableEnd: 6))
            #expect(first.map(\.description) == ["3:a=null@\(t0 + 10)", "4:b=b2@\(t0 + 11)", "5:c=null@\(t0 + 20)", "6:d=d1@\(t0 + 30)"])

            try log.clean(now: t0 + 60_000 + 100)
            let second = try seenRecords(log)
            #expect(second.map(\.description) == ["4:b=b2@\(t0 + 11)", "6:d=d1@\(t0 + 30)"])
            // The segment that held only the tombstone stays, with an empty batch.
            #expect(log.segmentBaseOffsets == [0, 3, 5, 6])
            #expect(log.logEndOffset == 7)
            try log.close()
            let reopened = try openLog(dir, config: config, clean: false, recoveryPoint: 0)
            #expect(try seenRecords(reopened) == second)
            #expect(reopened.logEndOffset == 7)
            try reopened.close()
        }
    }

    @Test("the active segment, the high watermark and min.compaction.lag.ms bound the cleaning")
    func bounds() throws {
        try withTemporaryDirectory { dir in
            var config = self.config
            let log = try openLog(dir, config: config)
            for round in 0..<4 {
                _ = try log.appendAsLeader(keyedBatch([("k", "v\(round)")], timestamp: t0 + Int64(round)), leaderEpoch: 1)
                try log.roll()
            }
            _ = try log.appendAsLeader(keyedBatch([("k", "active")], timestamp: t0 + 10), leaderEpoch: 1)
            // High watermark at 2: only the segments [0] and [1] are cleanable.
            log.updateHighWatermark(2)
            var result = try log.clean(now: t0 + 1_000)
            #expect(result.cleanedUpTo == 2)
            #expect(try seenRecords(log).map(\.value) == ["v1", "v2", "v3", "active"])
            // With a lag longer than the records' age nothing is cleanable.
            config.minCompactionLagMs = 10_000
            try log.updateConfig(config)
            log.updateHighWatermark(log.logEndOffset)
            result = try log.clean(now: t0 + 1_000)
            #expect(result.cleanedUpTo == nil && result.segmentsCleaned == 0)
            result = try log.clean(now: t0 + 20_000)
            #expect(try seenRecords(log).map(\.value) == ["v3", "active"])
            try log.close()
        }
    }

    @Test("delete-policy logs are never compacted; compact-only logs skip time and size retention")
    func policies() throws {
        try withTemporaryDirectory { dir in
            let deleteConfig = LogConfig(segmentBytes: 1 << 20, retentionMs: -1)
            let log = try openLog(dir, config: deleteConfig)
            for round in 0..<4 {
                _ = try log.appendAsLeader(keyedBatch([("k", "v\(round)")], timestamp: t0 + Int64(round)), leaderEpoch: 1)
                try log.roll()
            }
            log.updateHighWatermark(log.logEndOffset)
            let before = try seenRecords(log)
            #expect(!log.needsCleaning(firstDirtyOffset: nil, now: t0 + 1_000))
            #expect(try log.clean(now: t0 + 1_000).segmentsCleaned == 0)
            #expect(try seenRecords(log) == before)

            var compact = LogConfig(segmentBytes: 1 << 20, retentionMs: 1, retentionBytes: 1, cleanupPolicy: .compact)
            try log.updateConfig(compact)
            #expect(try log.deleteOldSegments(now: t0 + 1_000_000) == 0)
            compact.cleanupPolicy = [.compact, .delete]
            try log.updateConfig(compact)
            #expect(try log.deleteOldSegments(now: t0 + 1_000_000) > 0)
            try log.close()
        }
        #expect(CleanupPolicy(kafkaValue: "compact, delete") == [.compact, .delete])
        #expect(CleanupPolicy(kafkaValue: "DELETE") == .delete)
        #expect(CleanupPolicy(kafkaValue: "nope") == nil)
        #expect(CleanupPolicy([.compact, .delete]).description == "compact,delete")
        #expect(throws: LogStorageError.self) { try LogConfig(minCleanableDirtyRatio: 1.5).validate() }
        #expect(throws: LogStorageError.self) { try LogConfig(deleteRetentionMs: -1).validate() }
    }

    @Test("appends and reads during cleaning are not lost")
    func concurrentAppends() async throws {
        try await withTemporaryDirectory { dir in
            let config = LogConfig(segmentBytes: 4096, indexIntervalBytes: 100, cleanupPolicy: .compact)
            let log = try openLog(dir, config: config)
            let t0 = self.t0
            let appender = Task.detached { () throws -> [Int64] in
                var offsets: [Int64] = []
                for i in 0..<600 {
                    // Unique keys (never compacted away) and a hot key overwritten all the time.
                    let info = try log.appendAsLeader(
                        keyedBatch([("u\(i)", "unique-\(i)"), ("hot", "hot-\(i)")], timestamp: t0 + Int64(i)), leaderEpoch: 1)
                    offsets.append(info.firstOffset)
                    log.updateHighWatermark(log.logEndOffset)
                    if i % 50 == 0 { _ = try log.read(from: log.logStartOffset, maxBytes: 1 << 16) }
                }
                return offsets
            }
            var passes = 0
            var cleaned = 0
            while passes < 400 {
                passes += 1
                cleaned += try log.clean(now: t0 + 1_000_000).segmentsCleaned
                _ = try seenRecords(log)
                if log.logEndOffset >= 1200 && passes > 20 { break }
                try await Task.sleep(nanoseconds: 1_000_000)
            }
            let offsets = try await appender.value
            cleaned += try log.clean(now: t0 + 1_000_000).segmentsCleaned
            #expect(cleaned > 0)
            let records = try seenRecords(log)
            let byOffset = Dictionary(uniqueKeysWithValues: records.map { ($0.offset, $0) })
            for (i, offset) in offsets.enumerated() {
                #expect(byOffset[offset]?.key == "u\(i)" && byOffset[offset]?.value == "unique-\(i)")
            }
            #expect(records.last { $0.key == "hot" }?.value == "hot-599")
            #expect(records.filter { $0.key == "hot" }.count < 600)
            #expect(records.map(\.offset) == records.map(\.offset).sorted())
            try log.close()
            let reopened = try openLog(dir, config: config, clean: false, recoveryPoint: 0)
            #expect(try seenRecords(reopened) == records)
            try reopened.close()
        }
    }

    @Test("an idempotent producer's last batch stays as an empty batch, keeping its sequence state")
    func producerLastBatch() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir, config: config)
            _ = try log.appendAsLeader(keyedBatch([("k", "p0")], timestamp: t0, producerId: 7, producerEpoch: 0, baseSequence: 0), leaderEpoch: 1)
            _ = try log.appendAsLeader(keyedBatch([("k", "p1"), ("j", "x")], timestamp: t0 + 1, producerId: 7, producerEpoch: 0, baseSequence: 1), leaderEpoch: 1)
            try log.roll()
            _ = try log.appendAsLeader(keyedBatch([("k", "plain"), ("j", "y")], timestamp: t0 + 2), leaderEpoch: 1)
            try log.roll()
            log.updateHighWatermark(log.logEndOffset)
            try log.clean(now: t0 + 1_000)
            let batches = try readAll(log)
            // Producer 7's first batch is gone; its last batch (offsets 1-2) stays, empty.
            #expect(batches.map(\.baseOffset) == [1, 3])
            #expect(batches[0].recordCount == 0 && batches[0].producerId == 7 && batches[0].baseSequence == 1)
            #expect(batches[0].lastOffsetDelta == 1)
            #expect(try seenRecords(log).map(\.value) == ["plain", "y"])
            #expect(log.producerStateEntry(for: 7)?.lastSequence == 2)
            try log.close()
            let reopened = try openLog(dir, config: config, clean: false, recoveryPoint: 0)
            #expect(reopened.producerStateEntry(for: 7)?.lastSequence == 2)
            try reopened.close()
        }
    }

    /// Builds a log, copies its directory, cleans the original: returns the directories of the
    /// uncleaned copy and the cleaned log, the cleaned segment bases, and what the cleaned log holds.
    func cleanedAndUncleaned(_ dir: String) throws -> (uncleaned: String, cleaned: String, bases: [Int64], expected: [SeenRecord], end: Int64) {
        let log = try openLog(dir, config: config)
        try fillOverwrites(log)
        try log.close()
        let cleanedDir = dir + "/orders-0"
        let copyRoot = dir + "/copy"
        try FileManager.default.createDirectory(atPath: copyRoot, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: cleanedDir, toPath: copyRoot + "/orders-0")
        let cleanedLog = try openLog(dir, config: config, highWatermark: Int64.max)
        let result = try cleanedLog.clean(now: t0 + 20_000)
        #expect(result.segmentsCleaned > 0)
        let expected = try seenRecords(cleanedLog)
        let end = cleanedLog.logEndOffset
        let bases = Array(cleanedLog.segmentBaseOffsets.dropLast())
        try cleanedLog.close()
        return (copyRoot + "/orders-0", cleanedDir, bases, expected, end)
    }

    @Test("a crash leaving .cleaned files recovers the original segments")
    func crashWithCleanedFiles() throws {
        try withTemporaryDirectory { dir in
            let (uncleaned, cleaned, bases, _, end) = try cleanedAndUncleaned(dir)
            let original = try { () throws -> [SeenRecord] in
                let log = try PartitionLog.open(
                    directory: uncleaned, topicPartition: testTopic, config: config, hadCleanShutdown: true, logger: makeLogger().0)
                defer { try? log.close() }
                return try seenRecords(log)
            }()
            // A complete cleaned log for the first segment, a torn one for the second.
            let first = segmentName(bases[0], ".log")
            writeFileBytes(uncleaned + "/" + first + ".cleaned", fileBytes(cleaned + "/" + first))
            writeFileBytes(uncleaned + "/" + segmentName(bases[0], ".index.cleaned"), fileBytes(cleaned + "/" + segmentName(bases[0], ".index")))
            let second = fileBytes(cleaned + "/" + segmentName(bases[1], ".log"))
            writeFileBytes(uncleaned + "/" + segmentName(bases[1], ".log.cleaned"), Array(second.prefix(second.count / 2)))
            let (logger, messages) = makeLogger()
            let log = try PartitionLog.open(
                directory: uncleaned, topicPartition: testTopic, config: config, recoveryPoint: 0, hadCleanShutdown: false,
                logger: logger)
            #expect(try seenRecords(log) == original)
            #expect(log.logEndOffset == end)
            #expect(!listFiles(uncleaned).contains { $0.hasSuffix(".cleaned") })
            #expect(messages.contains("interrupted log compaction"))
            try log.close()
        }
    }

    @Test("a crash during the swap completes it: no latest value is lost")
    func crashDuringSwap() throws {
        try withTemporaryDirectory { dir in
            let (uncleaned, cleaned, bases, expected, end) = try cleanedAndUncleaned(dir)
            // Segment 0: crash after its indexes were renamed over the live ones but before the
            // log was (new indexes, old log, `.log.swap`).
            for suffix in [".index", ".timeindex"] {
                writeFileBytes(uncleaned + "/" + segmentName(bases[0], suffix), fileBytes(cleaned + "/" + segmentName(bases[0], suffix)))
            }
            writeFileBytes(uncleaned + "/" + segmentName(bases[0], ".log.swap"), fileBytes(cleaned + "/" + segmentName(bases[0], ".log")))
            // Segment 1: crash after everything was renamed to `.swap`.
            for suffix in [".log", ".index", ".timeindex"] {
                writeFileBytes(uncleaned + "/" + segmentName(bases[1], suffix + ".swap"), fileBytes(cleaned + "/" + segmentName(bases[1], suffix)))
            }
            // Segment 2: crash while renaming to `.swap` (index renamed, log still `.cleaned`).
            writeFileBytes(uncleaned + "/" + segmentName(bases[2], ".index.swap"), fileBytes(cleaned + "/" + segmentName(bases[2], ".index")))
            writeFileBytes(uncleaned + "/" + segmentName(bases[2], ".log.cleaned"), fileBytes(cleaned + "/" + segmentName(bases[2], ".log")))
            // Recovery point at the end: only the swap handling can make the indexes consistent.
            let log = try PartitionLog.open(
                directory: uncleaned, topicPartition: testTopic, config: config, recoveryPoint: end, hadCleanShutdown: false,
                logger: makeLogger().0)
            #expect(log.logEndOffset == end)
            #expect(!listFiles(uncleaned).contains { $0.hasSuffix(".cleaned") || $0.hasSuffix(".swap") })
            #expect(fileBytes(uncleaned + "/" + segmentName(bases[0], ".log")) == fileBytes(cleaned + "/" + segmentName(bases[0], ".log")))
            #expect(fileBytes(uncleaned + "/" + segmentName(bases[1], ".log")) == fileBytes(cleaned + "/" + segmentName(bases[1], ".log")))
            let records = try seenRecords(log)
            // Every latest value is there: the log compacts to the same state as the cleaned one.
            #expect(compacted(records, cleanableEnd: log.segmentBaseOffsets.last!) == expected)
            // Reads at every offset work (the rebuilt indexes point at real batches).
            for record in records {
                let result = try log.read(from: record.offset, maxBytes: 1)
                #expect(result.firstOffset <= record.offset && result.nextOffset > record.offset)
            }
            log.updateHighWatermark(log.logEndOffset)
            try log.clean(now: t0 + 20_000)
            #expect(try seenRecords(log) == expected)
            try log.close()
        }
    }

    @Test("LogManager cleans compacted logs when dirty enough and records cleaner-offset-checkpoint")
    func managerCheckpoint() throws {
        try withTemporaryDirectory { dir in
            let compactTopic = TopicPartition(topic: "__consumer_offsets", partition: 3)
            let compactConfig = self.config
            let manager = try LogManager(
                logDirectories: [dir],
                configFor: { tp in tp.topic == "__consumer_offsets" ? compactConfig : nil }, logger: makeLogger().0)
            let compactLog = try manager.getOrCreateLog(compactTopic)
            let plainLog = try manager.getOrCreateLog(testTopic)
            for log in [compactLog, plainLog] {
                for round in 0..<6 {
                    _ = try log.appendAsLeader(keyedBatch([("g", "offset-\(round)")], timestamp: LogClock.nowMillis()), leaderEpoch: 1)
                    try log.roll()
                }
                log.updateHighWatermark(log.logEndOffset)
            }
            let result = manager.runMaintenance()
            // Segments 0-4 lose their record (each keeps an empty batch); segment 5 is unchanged.
            #expect(result.segmentsCleaned == 5)
            #expect(manager.cleanerCheckpoint(for: compactTopic) == 6)
            #expect(manager.cleanerCheckpoint(for: testTopic) == nil)
            #expect(try seenRecords(compactLog).map(\.value) == ["offset-5"])
            #expect(try seenRecords(plainLog).count == 6)
            let text = String(decoding: fileBytes(dir + "/cleaner-offset-checkpoint"), as: UTF8.self)
            #expect(text == "0\n1\n__consumer_offsets 3 6\n")
            // Nothing dirty: the next pass does nothing.
            #expect(manager.runMaintenance().segmentsCleaned == 0)
            try manager.shutdown()
            let reopened = try LogManager(
                logDirectories: [dir], configFor: { tp in tp.topic == "__consumer_offsets" ? compactConfig : nil },
                logger: makeLogger().0)
            #expect(reopened.cleanerCheckpoint(for: compactTopic) == 6)
            try reopened.shutdown()
        }
    }
}
