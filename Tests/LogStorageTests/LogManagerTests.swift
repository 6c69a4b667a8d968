import Foundation
import KafkaProtocol
import NIOCore
import Testing

@testable import LogStorage

@Suite("Log manager")
struct LogManagerTests {
    @Test("startup, placement, checkpoints, clean shutdown marker, reload")
    func lifecycle() throws {
        try withTemporaryDirectory { root in
            let dirs = [root + "/d1", root + "/d2"]
            let (logger, _) = makeLogger()
            let manager = try LogManager(logDirectories: dirs, logger: logger)
            #expect(manager.hadCleanShutdown == [dirs[0]: false, dirs[1]: false])
            var tps: [TopicPartition] = []
            for p in 0..<4 {
                let tp = TopicPartition(topic: "events", partition: Int32(p))
                tps.append(tp)
                let log = try manager.getOrCreateLog(tp)
                for _ in 0...p { _ = try log.appendAsLeader(makeBatch(count: 3), leaderEpoch: 1) }
                log.updateHighWatermark(Int64(2 * p))
            }
            // Two partitions in each directory (fewest partitions first).
            #expect(tps.filter { manager.logDirectory(for: $0) == dirs[0] }.count == 2)
            #expect(tps.filter { manager.logDirectory(for: $0) == dirs[1] }.count == 2)
            #expect(try manager.getOrCreateLog(tps[0]) === manager.log(for: tps[0]))

            try manager.checkpointAll()
            let d1Recovery = try OffsetCheckpointFile.read(path: dirs[0] + "/recovery-point-offset-checkpoint")
            #expect(d1Recovery.count == 2)
            #expect(d1Recovery.values.allSatisfy { $0 == 0 })  // nothing flushed yet
            let highWatermarks = try OffsetCheckpointFile.read(path: dirs[0] + "/replication-offset-checkpoint")
                .merging(try OffsetCheckpointFile.read(path: dirs[1] + "/replication-offset-checkpoint")) { a, _ in a }
            #expect(highWatermarks == Dictionary(uniqueKeysWithValues: tps.map { ($0, Int64(2 * $0.partition)) }))
            #expect(fileExists(dirs[1] + "/log-start-offset-checkpoint"))

            // A second manager cannot take the same directories.
            #expect(throws: LogStorageError.logDirectoryLocked(path: dirs[0])) {
                try LogManager(logDirectories: dirs, logger: logger)
            }

            try manager.shutdown()
            for dir in dirs {
                #expect(fileExists(dir + "/.kafka_cleanshutdown"))
                let recovery = try OffsetCheckpointFile.read(path: dir + "/recovery-point-offset-checkpoint")
                for (tp, offset) in recovery { #expect(offset == Int64(3 * (tp.partition + 1))) }
            }

            // Stray and deleted directories.
            try FileManager.default.createDirectory(atPath: dirs[0] + "/not a partition", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dirs[0] + "/old-0.abc-delete", withIntermediateDirectories: true)
            writeFileBytes(dirs[0] + "/old-0.abc-delete/00000000000000000000.log", [1, 2, 3])

            let (logger2, messages) = makeLogger()
            let reloaded = try LogManager(logDirectories: dirs, logger: logger2)
            #expect(reloaded.hadCleanShutdown == [dirs[0]: true, dirs[1]: true])
            #expect(!fileExists(dirs[0] + "/.kafka_cleanshutdown"))  // removed once loaded
            #expect(!fileExists(dirs[0] + "/old-0.abc-delete"))
            #expect(messages.contains("ignoring"))
            #expect(reloaded.topicPartitions == tps)
            for tp in tps {
                let log = reloaded.log(for: tp)!
                #expect(log.logEndOffset == Int64(3 * (tp.partition + 1)))
                #expect(log.highWatermark == Int64(2 * tp.partition))
                #expect(log.recoveryPoint == log.logEndOffset)
            }
            try reloaded.shutdown()
        }
    }

    @Test("a crash (no marker) recovers every log")
    func crashRecovery() throws {
        try withTemporaryDirectory { root in
            let dirs = [root + "/d1"]
            let tp = TopicPartition(topic: "t", partition: 0)
            do {
                let manager = try LogManager(logDirectories: dirs, logger: makeLogger().0)
                let log = try manager.getOrCreateLog(tp)
                for _ in 0..<10 { _ = try log.appendAsLeader(makeBatch(count: 2), leaderEpoch: 0) }
                try manager.checkpointAll()
                // Crash: no shutdown. Release the directory lock as process exit would.
                withExtendedLifetime(manager) {}
            }
            appendToFile(root + "/d1/t-0/00000000000000000000.log", [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9])
            let (logger, messages) = makeLogger()
            let manager = try LogManager(logDirectories: dirs, logger: logger)
            #expect(manager.hadCleanShutdown == [dirs[0]: false])
            #expect(manager.log(for: tp)?.logEndOffset == 20)
            #expect(messages.contains("truncated 13 bytes"))
            try manager.shutdown()
        }
    }

    @Test("delete renames to <topic>-<partition>.<uuid>-delete, removed after the delay")
    func deleteLog() throws {
        try withTemporaryDirectory { root in
            let dirs = [root + "/d1"]
            let manager = try LogManager(
                logDirectories: dirs, defaultConfig: LogConfig(fileDeleteDelayMs: 1000), logger: makeLogger().0)
            let tp = TopicPartition(topic: "gone", partition: 2)
            let log = try manager.getOrCreateLog(tp)
            _ = try log.appendAsLeader(makeBatch(), leaderEpoch: 0)
            let now = LogClock.nowMillis()
            try manager.deleteLog(tp, now: now)
            #expect(manager.log(for: tp) == nil)
            #expect(throws: LogStorageError.logClosed(tp)) { try log.appendAsLeader(makeBatch(), leaderEpoch: 0) }
            let renamed = listFiles(root + "/d1").filter { $0.hasPrefix("gone-2.") && $0.hasSuffix("-delete") }
            #expect(renamed.count == 1)
            #expect(renamed.first?.count == "gone-2.".count + 32 + "-delete".count)
            _ = manager.runMaintenance(now: now + 999)
            #expect(fileExists(root + "/d1/" + renamed[0]))
            _ = manager.runMaintenance(now: now + 1000)
            #expect(!fileExists(root + "/d1/" + renamed[0]))
            // It can be created again.
            #expect(try manager.getOrCreateLog(tp).logEndOffset == 0)
            try manager.shutdown()
        }
    }

    @Test("maintenance runs retention and flushes over every partition; configs per partition")
    func maintenance() throws {
        try withTemporaryDirectory { root in
            let t0: Int64 = 1_700_000_000_000
            let short = LogConfig(segmentBytes: 300, retentionMs: 1000, fileDeleteDelayMs: 0)
            let manager = try LogManager(
                logDirectories: [root + "/d"], defaultConfig: LogConfig(segmentBytes: 300),
                configFor: { $0.topic == "short" ? short : nil }, logger: makeLogger().0)
            let a = try manager.getOrCreateLog(TopicPartition(topic: "short", partition: 0), now: t0)
            let b = try manager.getOrCreateLog(TopicPartition(topic: "long", partition: 0), now: t0)
            #expect(a.config == short)
            for i in 0..<10 {
                _ = try a.appendAsLeader(makeBatch(count: 2, timestamp: t0 + Int64(i)), leaderEpoch: 0, now: t0)
                _ = try b.appendAsLeader(makeBatch(count: 2, timestamp: t0 + Int64(i)), leaderEpoch: 0, now: t0)
            }
            a.updateHighWatermark(a.logEndOffset)
            b.updateHighWatermark(b.logEndOffset)
            let segmentsBefore = b.segmentCount
            #expect(a.segmentCount > 2)
            let result = manager.runMaintenance(now: t0 + 10_000)
            #expect(result.segmentsDeleted >= 2)
            #expect(a.segmentCount == 1)
            #expect(b.segmentCount == segmentsBefore)  // 7 days retention
            #expect(result.flushed)  // post-roll flushes
            #expect(b.recoveryPoint == b.segmentBaseOffsets.last!)
            try manager.updateConfig(short, for: TopicPartition(topic: "long", partition: 0))
            _ = manager.runMaintenance(now: t0 + 10_000)
            #expect(b.segmentCount == 1)
            try manager.shutdown()
        }
    }
}
