import Logging

/// The broker's logs: every partition in every `log.dirs` directory.
///
/// At startup it locks each directory (`.lock`, as Kafka does), reads the three checkpoint files
/// and the `.kafka_cleanshutdown` marker, removes directories left by partition deletions
/// (`*-delete`), opens every `<topic>-<partition>` directory (recovering it if the marker is
/// missing), then deletes the marker: from then on a crash means recovery. On a clean
/// ``shutdown()`` it closes every log, writes the checkpoints and the marker.
///
/// The broker calls ``checkpointAll()`` periodically (Kafka: `log.flush.offset.checkpoint.interval.ms`,
/// 60 s) and ``runMaintenance(now:)`` from a timer (every few seconds: retention, `flush.ms`,
/// delayed file deletion, producer expiry).
///
/// Thread safety: `lock` guards only the map of logs and the pending directory deletions; each
/// log has its own lock, so work on different partitions never contends.
public final class LogManager: @unchecked Sendable {
    /// Kafka's clean shutdown marker, in each log directory.
    public static let cleanShutdownFileName = ".kafka_cleanshutdown"

    public let logDirectories: [String]
    private let defaultConfig: LogConfig
    private let configFor: @Sendable (TopicPartition) -> LogConfig?
    private let logger: Logger
    private let lock = Lock()
    private var directoryLocks: [DirectoryLock] = []

    // Guarded by `lock`:
    private var logs: [TopicPartition: PartitionLog] = [:]
    /// The log directory of each partition.
    private var logDirectoryOf: [TopicPartition: String] = [:]
    private var configs: [TopicPartition: LogConfig] = [:]
    /// Renamed `*-delete` partition directories and when to remove them.
    private var pendingDirectoryDeletions: [(due: Int64, path: String)] = []
    /// `cleaner-offset-checkpoint`: how far each compacted log has been cleaned.
    private var cleanerCheckpoints: [TopicPartition: Int64] = [:]
    private var isShutDown = false
    /// Whether each directory was shut down cleanly at the last stop (for the broker's logs).
    public let hadCleanShutdown: [String: Bool]

    /// Opens every log in `logDirectories` (Kafka's `log.dirs`; pass `split(",")` of the property).
    ///
    /// - Parameters:
    ///   - configFor: the configuration of a topic's partitions (topic overrides), nil for
    ///     `defaultConfig`.
    public init(
        logDirectories: [String], defaultConfig: LogConfig = .kafkaDefault,
        configFor: @escaping @Sendable (TopicPartition) -> LogConfig? = { _ in nil }, logger: Logger,
        now: Int64 = LogClock.nowMillis()
    ) throws(LogStorageError) {
        var directories: [String] = []
        for directory in logDirectories.map(\.trimmingTrailingSlashes) where !directory.isEmpty {
            if !directories.contains(directory) { directories.append(directory) }
        }
        guard !directories.isEmpty else { throw .noLogDirectories }
        try defaultConfig.validate()
        self.logDirectories = directories
        self.defaultConfig = defaultConfig
        self.configFor = configFor
        self.logger = logger

        var clean: [String: Bool] = [:]
        var loaded: [TopicPartition: PartitionLog] = [:]
        var dirOf: [TopicPartition: String] = [:]
        var configs: [TopicPartition: LogConfig] = [:]
        var locks: [DirectoryLock] = []
        var cleanerCheckpoints: [TopicPartition: Int64] = [:]
        for directory in directories {
            try FileSystem.createDirectory(directory)
            locks.append(try DirectoryLock(directory: directory))
            let marker = directory + "/" + Self.cleanShutdownFileName
            let wasClean = FileSystem.exists(marker)
            clean[directory] = wasClean
            let recoveryPoints = Self.readCheckpoint(directory, OffsetCheckpointFile.recoveryPointFileName, logger)
            let logStarts = Self.readCheckpoint(directory, OffsetCheckpointFile.logStartOffsetFileName, logger)
            let highWatermarks = Self.readCheckpoint(directory, OffsetCheckpointFile.highWatermarkFileName, logger)
            let cleanerOffsets = Self.readCheckpoint(directory, OffsetCheckpointFile.cleanerOffsetFileName, logger)
            // A new, empty directory has no marker either; only one holding logs was interrupted.
            let holdsLogs = (try? FileSystem.listDirectory(directory))?.contains { !$0.hasPrefix(".") && FileSystem.isDirectory(directory + "/" + $0) } ?? false
            if !wasClean && holdsLogs {
                logger.warning("log directory \(directory) was not shut down cleanly: logs will be recovered from their recovery points")
            }
            for name in try FileSystem.listDirectory(directory).sorted() {
                let path = directory + "/" + name
                guard FileSystem.isDirectory(path), !name.hasPrefix(".") else { continue }
                if name.hasSuffix("-delete") {
                    logger.info("removing \(path), a partition deleted before the last shutdown")
                    try FileSystem.removeTree(path)
                    continue
                }
                if name.hasSuffix("-future") || name.hasSuffix("-stray") {
                    logger.warning("ignoring \(path): a Kafka \(name.hasSuffix("-future") ? "future" : "stray") replica directory")
                    continue
                }
                guard let tp = TopicPartition(directoryName: name), !tp.topic.isEmpty else {
                    logger.warning("ignoring \(path): not a <topic>-<partition> log directory")
                    continue
                }
                if let other = dirOf[tp] {
                    throw .duplicateLog(tp, directories: [other, directory])
                }
                let config = configFor(tp) ?? defaultConfig
                let log = try PartitionLog.open(
                    directory: path, topicPartition: tp, config: config,
                    recoveryPoint: recoveryPoints[tp] ?? 0, logStartOffset: logStarts[tp],
                    highWatermark: highWatermarks[tp], hadCleanShutdown: wasClean, logger: logger, now: now)
                loaded[tp] = log
                dirOf[tp] = directory
                if let cleaned = cleanerOffsets[tp] { cleanerCheckpoints[tp] = cleaned }
                if configFor(tp) != nil { configs[tp] = config }
            }
            // From now on a crash must trigger recovery.
            if wasClean {
                try FileSystem.removeFile(marker)
                try FileSystem.syncDirectory(directory)
            }
        }
        self.hadCleanShutdown = clean
        self.directoryLocks = locks
        self.logs = loaded
        self.logDirectoryOf = dirOf
        self.configs = configs
        self.cleanerCheckpoints = cleanerCheckpoints
        logger.info("loaded \(loaded.count) log(s) from \(directories.joined(separator: ","))")
    }

    private static func readCheckpoint(_ directory: String, _ name: String, _ logger: Logger) -> [TopicPartition: Int64] {
        let path = directory + "/" + name
        do {
            return try OffsetCheckpointFile.read(path: path)
        } catch {
            logger.error("\(error)")
            return [:]
        }
    }

    // MARK: Logs

    public func log(for tp: TopicPartition) -> PartitionLog? {
        lock.withLock { logs[tp] }
    }

    public var allLogs: [TopicPartition: PartitionLog] {
        lock.withLock { logs }
    }

    public var topicPartitions: [TopicPartition] {
        lock.withLock { logs.keys.sorted() }
    }

    /// The log directory holding a partition.
    public func logDirectory(for tp: TopicPartition) -> String? {
        lock.withLock { logDirectoryOf[tp] }
    }

    /// The partition's log, created (in the log directory with the fewest partitions) if absent.
    public func getOrCreateLog(
        _ tp: TopicPartition, config: LogConfig? = nil, now: Int64 = LogClock.nowMillis()
    ) throws(LogStorageError) -> PartitionLog {
        try lock.withLock { () throws(LogStorageError) -> PartitionLog in
            if let log = logs[tp] { return log }
            guard !isShutDown else { throw .logClosed(tp) }
            var counts: [String: Int] = [:]
            for directory in logDirectories { counts[directory] = 0 }
            for directory in logDirectoryOf.values { counts[directory, default: 0] += 1 }
            let directory = logDirectories.min { (counts[$0] ?? 0, $0) < (counts[$1] ?? 0, $1) }!
            let config = config ?? configs[tp] ?? configFor(tp) ?? defaultConfig
            let path = directory + "/" + tp.directoryName
            let log = try PartitionLog.open(
                directory: path, topicPartition: tp, config: config, recoveryPoint: 0, logStartOffset: nil,
                highWatermark: nil, hadCleanShutdown: true, logger: logger, now: now)
            try FileSystem.syncDirectory(directory)
            logs[tp] = log
            logDirectoryOf[tp] = directory
            if config != defaultConfig { configs[tp] = config }
            logger.info("created log for \(tp) in \(directory)")
            return log
        }
    }

    /// Deletes a partition's log: it is closed, its directory renamed
    /// `<topic>-<partition>.<uuid>-delete` (as Kafka does) and removed after `file.delete.delay.ms`.
    public func deleteLog(_ tp: TopicPartition, now: Int64 = LogClock.nowMillis()) throws(LogStorageError) {
        try lock.withLock { () throws(LogStorageError) in
            guard let log = logs.removeValue(forKey: tp), let directory = logDirectoryOf.removeValue(forKey: tp) else { return }
            configs[tp] = nil
            cleanerCheckpoints[tp] = nil
            log.markDeleted()
            let renamed = directory + "/" + tp.directoryName + "." + randomHex(bytes: 16) + "-delete"
            try FileSystem.rename(log.directory, to: renamed)
            try FileSystem.syncDirectory(directory)
            let delay = log.config.fileDeleteDelayMs
            if delay <= 0 {
                try FileSystem.removeTree(renamed)
            } else {
                pendingDirectoryDeletions.append((now + delay, renamed))
            }
            logger.info("deleted log for \(tp) (renamed to \(renamed))")
        }
    }

    /// Changes a partition's configuration (a topic config change).
    public func updateConfig(_ config: LogConfig, for tp: TopicPartition) throws(LogStorageError) {
        try config.validate()
        let log = lock.withLock { () -> PartitionLog? in
            configs[tp] = config
            return logs[tp]
        }
        try log?.updateConfig(config)
    }

    // MARK: Checkpoints

    /// Writes the recovery points, log start offsets and high watermarks of each directory's
    /// partitions to its three checkpoint files (atomically).
    public func checkpointAll() throws(LogStorageError) {
        let (snapshot, directories) = lock.withLock { (logs.map { ($0.key, $0.value) }, logDirectoryOf) }
        for directory in logDirectories {
            var recoveryPoints: [TopicPartition: Int64] = [:]
            var logStarts: [TopicPartition: Int64] = [:]
            var highWatermarks: [TopicPartition: Int64] = [:]
            for (tp, log) in snapshot where directories[tp] == directory {
                recoveryPoints[tp] = log.recoveryPoint
                logStarts[tp] = log.logStartOffset
                highWatermarks[tp] = log.highWatermark
            }
            try OffsetCheckpointFile.write(recoveryPoints, to: directory + "/" + OffsetCheckpointFile.recoveryPointFileName)
            try OffsetCheckpointFile.write(logStarts, to: directory + "/" + OffsetCheckpointFile.logStartOffsetFileName)
            try OffsetCheckpointFile.write(highWatermarks, to: directory + "/" + OffsetCheckpointFile.highWatermarkFileName)
        }
    }

    // MARK: Maintenance

    /// The offset up to which a compacted partition has been cleaned (`cleaner-offset-checkpoint`).
    public func cleanerCheckpoint(for tp: TopicPartition) -> Int64? {
        lock.withLock { cleanerCheckpoints[tp] }
    }

    /// Compacts a `cleanup.policy=compact` log when its dirty ratio reaches
    /// `min.cleanable.dirty.ratio` (or `max.compaction.lag.ms` passed), and records how far it was
    /// cleaned in its directory's `cleaner-offset-checkpoint`. Returns the segments rewritten.
    @discardableResult
    public func cleanIfNeeded(_ tp: TopicPartition, now: Int64 = LogClock.nowMillis()) throws(LogStorageError) -> Int {
        guard let (log, checkpoint) = lock.withLock({ () -> (PartitionLog, Int64?)? in
            guard let log = logs[tp] else { return nil }
            return (log, cleanerCheckpoints[tp])
        }) else { return 0 }
        // A checkpoint beyond the log end (the log was truncated) no longer means anything.
        let firstDirty = checkpoint.flatMap { $0 <= log.logEndOffset ? $0 : nil }
        guard log.needsCleaning(firstDirtyOffset: firstDirty, now: now) else { return 0 }
        let result = try log.clean(now: now)
        if let cleaned = result.cleanedUpTo {
            try writeCleanerCheckpoint(setting: tp, to: cleaned)
        }
        return result.segmentsCleaned
    }

    private func writeCleanerCheckpoint(setting tp: TopicPartition, to offset: Int64) throws(LogStorageError) {
        let (entries, path) = lock.withLock { () -> ([TopicPartition: Int64], String?) in
            guard let directory = logDirectoryOf[tp] else { return ([:], nil) }
            cleanerCheckpoints[tp] = offset
            let entries = cleanerCheckpoints.filter { logDirectoryOf[$0.key] == directory }
            return (entries, directory + "/" + OffsetCheckpointFile.cleanerOffsetFileName)
        }
        guard let path else { return }
        try OffsetCheckpointFile.write(entries, to: path)
    }

    /// One pass over all partitions: retention, `flush.ms` and post-roll flushes, removal of
    /// deleted segment files and partition directories whose delay passed, producer expiry, and
    /// compaction of `cleanup.policy=compact` logs that are dirty enough (``cleanIfNeeded(_:now:)``,
    /// in line: a large log delays the other partitions' maintenance while it is cleaned). A
    /// failing partition is logged and skipped.
    @discardableResult
    public func runMaintenance(now: Int64 = LogClock.nowMillis()) -> LogMaintenanceResult {
        let snapshot = lock.withLock { logs.map { ($0.key, $0.value) } }
        var total = LogMaintenanceResult()
        for (tp, log) in snapshot {
            do {
                let result = try log.runMaintenance(now: now)
                total.segmentsDeleted += result.segmentsDeleted
                total.filesRemoved += result.filesRemoved
                total.producersExpired += result.producersExpired
                total.flushed = total.flushed || result.flushed
                total.segmentsCleaned += try cleanIfNeeded(tp, now: now)
            } catch {
                logger.error("maintenance of \(tp) failed: \(error)")
            }
        }
        let due = lock.withLock { () -> [String] in
            let due = pendingDirectoryDeletions.filter { $0.due <= now }.map(\.path)
            pendingDirectoryDeletions.removeAll { $0.due <= now }
            return due
        }
        for path in due {
            do {
                try FileSystem.removeTree(path)
                total.filesRemoved += 1
            } catch {
                logger.error("could not remove \(path): \(error)")
            }
        }
        return total
    }

    /// Flushes every log (fsync), e.g. before a controlled shutdown.
    public func flushAll() throws(LogStorageError) {
        for log in lock.withLock({ Array(logs.values) }) {
            try log.flush()
        }
    }

    // MARK: Shutdown

    /// Closes every log (flush, indexes, producer snapshots), writes the checkpoints and the clean
    /// shutdown marker in each directory, and releases the directory locks. If a log fails to
    /// close, the marker is not written for its directory, so the next start recovers it.
    public func shutdown() throws(LogStorageError) {
        let (snapshot, directories, pending) = lock.withLock {
            isShutDown = true
            let pending = pendingDirectoryDeletions.map(\.path)
            pendingDirectoryDeletions.removeAll()
            return (logs.map { ($0.key, $0.value) }, logDirectoryOf, pending)
        }
        var failedDirectories: Set<String> = []
        var firstError: LogStorageError? = nil
        for (tp, log) in snapshot {
            do {
                try log.close()
            } catch {
                logger.error("closing \(tp) failed: \(error)")
                if let directory = directories[tp] { failedDirectories.insert(directory) }
                firstError = firstError ?? error
            }
        }
        for path in pending { try? FileSystem.removeTree(path) }
        try checkpointAll()
        for directory in logDirectories where !failedDirectories.contains(directory) {
            try FileSystem.writeFileAtomically(
                directory + "/" + Self.cleanShutdownFileName, bytes: Array("{\"version\":0,\"brokerEpoch\":-1}".utf8))
        }
        for directoryLock in directoryLocks { directoryLock.release() }
        lock.withLock { logs.removeAll() }
        logger.info("log manager shut down cleanly (\(snapshot.count) log(s))")
        if let firstError { throw firstError }
    }
}

extension String {
    fileprivate var trimmingTrailingSlashes: String {
        var s = self.trimmingSpaces
        while s.count > 1 && s.hasSuffix("/") { s.removeLast() }
        return s
    }

    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
