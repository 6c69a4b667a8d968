/// `cleanup.policy`: `delete` (retention removes old segments), `compact` (the log cleaner keeps
/// the latest record of each key) or both (`compact,delete`).
public struct CleanupPolicy: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let delete = CleanupPolicy(rawValue: 1)
    public static let compact = CleanupPolicy(rawValue: 2)

    /// Parses Kafka's comma-separated list (`"compact,delete"`, case-insensitive, spaces allowed);
    /// nil for an unknown policy.
    public init?(kafkaValue: String) {
        var policy: CleanupPolicy = []
        for part in kafkaValue.split(separator: ",") {
            let name = part.trimmingCleanupPolicy(" ").lowercased()
            switch name {
            case "delete": policy.insert(.delete)
            case "compact": policy.insert(.compact)
            case "": continue
            default: return nil
            }
        }
        self = policy
    }

    /// Kafka's text: `delete`, `compact` or `compact,delete` (empty for none).
    public var description: String {
        [contains(.compact) ? "compact" : nil, contains(.delete) ? "delete" : nil].compactMap { $0 }.joined(separator: ",")
    }
}

extension Substring {
    fileprivate func trimmingCleanupPolicy(_ set: Character) -> Substring {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return s
    }
}

/// The settings of one partition's log, under Kafka's topic-level names, with Kafka's defaults.
///
/// The broker builds one from `log.*` broker properties (the defaults for every topic) and the
/// topic's overrides, and passes it to `LogManager` (which can update it per partition).
public struct LogConfig: Hashable, Sendable {
    /// `segment.bytes` (`log.segment.bytes`): roll to a new segment when the active one would
    /// grow past this. Kafka's default: 1 GiB.
    public var segmentBytes: Int
    /// `segment.ms` (`log.roll.ms`): roll when the active segment's first batch is older than this.
    /// Kafka's default: 7 days.
    public var segmentMs: Int64
    /// `retention.ms` (`log.retention.ms`): delete segments whose newest timestamp is older than
    /// this; -1 keeps them forever. Kafka's default: 7 days.
    public var retentionMs: Int64
    /// `retention.bytes` (`log.retention.bytes`): delete the oldest segments while the log is
    /// larger than this; -1 for no limit (Kafka's default).
    public var retentionBytes: Int64
    /// `flush.messages` (`log.flush.interval.messages`): fsync when this many messages are not yet
    /// flushed. Kafka's default `Long.MAX_VALUE` leaves durability to replication.
    public var flushIntervalMessages: Int64
    /// `flush.ms` (`log.flush.interval.ms`): fsync when the last flush is older than this (checked by
    /// ``PartitionLog/flushIfDue(now:)``). Default: never.
    public var flushIntervalMs: Int64
    /// `index.interval.bytes` (`log.index.interval.bytes`): bytes of log between offset index
    /// entries. Default 4096.
    public var indexIntervalBytes: Int
    /// `segment.index.bytes` (`log.index.size.max.bytes`): the largest an index file may grow;
    /// the segment rolls when either index is full. Default 10 MiB.
    public var maxIndexBytes: Int
    /// `file.delete.delay.ms` (`log.segment.delete.delay.ms`): how long deleted segment files stay
    /// on disk (renamed `*.deleted`) before they are removed. Default 60 s.
    public var fileDeleteDelayMs: Int64
    /// `max.message.bytes` (`message.max.bytes`): the largest record batch accepted.
    /// Kafka's default: 1048588.
    public var maxMessageBytes: Int
    /// `producer.id.expiration.ms` (broker-level in Kafka): idempotent producer state is dropped
    /// when a producer has not written for this long. Default: 1 day.
    public var producerIdExpirationMs: Int64
    /// `cleanup.policy` (`log.cleanup.policy`): delete, compact or both. Kafka's default: delete.
    /// Time and size retention apply only with `.delete`; the cleaner only with `.compact`.
    public var cleanupPolicy: CleanupPolicy
    /// `min.cleanable.dirty.ratio` (`log.cleaner.min.cleanable.ratio`): a compacted log is cleaned
    /// when the bytes not yet cleaned are at least this fraction of the cleanable bytes. Default 0.5.
    public var minCleanableDirtyRatio: Double
    /// `delete.retention.ms` (`log.cleaner.delete.retention.ms`): how long tombstones (records with
    /// a key and a null value) survive compaction. Default: 1 day.
    public var deleteRetentionMs: Int64
    /// `min.compaction.lag.ms` (`log.cleaner.min.compaction.lag.ms`): segments with records newer
    /// than this are not compacted. Default 0.
    public var minCompactionLagMs: Int64
    /// `max.compaction.lag.ms` (`log.cleaner.max.compaction.lag.ms`): a log whose dirty segments are
    /// older than this is compacted whatever its dirty ratio. Default `Long.MAX_VALUE`.
    public var maxCompactionLagMs: Int64

    public static let kafkaDefault = LogConfig()

    public init(
        segmentBytes: Int = 1024 * 1024 * 1024,
        segmentMs: Int64 = 7 * 24 * 60 * 60 * 1000,
        retentionMs: Int64 = 7 * 24 * 60 * 60 * 1000,
        retentionBytes: Int64 = -1,
        flushIntervalMessages: Int64 = Int64.max,
        flushIntervalMs: Int64 = Int64.max,
        indexIntervalBytes: Int = 4096,
        maxIndexBytes: Int = 10 * 1024 * 1024,
        fileDeleteDelayMs: Int64 = 60_000,
        maxMessageBytes: Int = 1_048_588,
        producerIdExpirationMs: Int64 = 86_400_000,
        cleanupPolicy: CleanupPolicy = .delete,
        minCleanableDirtyRatio: Double = 0.5,
        deleteRetentionMs: Int64 = 86_400_000,
        minCompactionLagMs: Int64 = 0,
        maxCompactionLagMs: Int64 = Int64.max
    ) {
        self.segmentBytes = segmentBytes
        self.segmentMs = segmentMs
        self.retentionMs = retentionMs
        self.retentionBytes = retentionBytes
        self.flushIntervalMessages = flushIntervalMessages
        self.flushIntervalMs = flushIntervalMs
        self.indexIntervalBytes = indexIntervalBytes
        self.maxIndexBytes = maxIndexBytes
        self.fileDeleteDelayMs = fileDeleteDelayMs
        self.maxMessageBytes = maxMessageBytes
        self.producerIdExpirationMs = producerIdExpirationMs
        self.cleanupPolicy = cleanupPolicy
        self.minCleanableDirtyRatio = minCleanableDirtyRatio
        self.deleteRetentionMs = deleteRetentionMs
        self.minCompactionLagMs = minCompactionLagMs
        self.maxCompactionLagMs = maxCompactionLagMs
    }

    /// Checks the values Kafka checks (`LogConfig.validate`), naming the offending key.
    public func validate() throws(LogStorageError) {
        // Kafka's minimum segment.bytes is 14 (LegacyRecord.RECORD_OVERHEAD_V0); anything below a
        // batch header makes every append roll.
        guard segmentBytes >= 14 else { throw .invalidConfig(key: "segment.bytes", value: "\(segmentBytes)", reason: "must be at least 14") }
        guard segmentBytes <= Int(Int32.max) else {
            throw .invalidConfig(key: "segment.bytes", value: "\(segmentBytes)", reason: "must fit an int32 file position")
        }
        guard segmentMs >= 1 else { throw .invalidConfig(key: "segment.ms", value: "\(segmentMs)", reason: "must be at least 1") }
        guard retentionMs >= -1 else { throw .invalidConfig(key: "retention.ms", value: "\(retentionMs)", reason: "must be -1 or more") }
        guard flushIntervalMessages >= 1 else {
            throw .invalidConfig(key: "flush.messages", value: "\(flushIntervalMessages)", reason: "must be at least 1")
        }
        guard flushIntervalMs >= 0 else { throw .invalidConfig(key: "flush.ms", value: "\(flushIntervalMs)", reason: "must be 0 or more") }
        guard indexIntervalBytes >= 0 else {
            throw .invalidConfig(key: "index.interval.bytes", value: "\(indexIntervalBytes)", reason: "must be 0 or more")
        }
        guard maxIndexBytes >= TimeIndex.entrySize else {
            throw .invalidConfig(key: "segment.index.bytes", value: "\(maxIndexBytes)", reason: "must hold at least one time index entry (12 bytes)")
        }
        guard maxMessageBytes >= 0 else {
            throw .invalidConfig(key: "max.message.bytes", value: "\(maxMessageBytes)", reason: "must be 0 or more")
        }
        guard fileDeleteDelayMs >= 0 else {
            throw .invalidConfig(key: "file.delete.delay.ms", value: "\(fileDeleteDelayMs)", reason: "must be 0 or more")
        }
        guard minCleanableDirtyRatio >= 0, minCleanableDirtyRatio <= 1 else {
            throw .invalidConfig(
                key: "min.cleanable.dirty.ratio", value: "\(minCleanableDirtyRatio)", reason: "must be between 0 and 1")
        }
        guard deleteRetentionMs >= 0 else {
            throw .invalidConfig(key: "delete.retention.ms", value: "\(deleteRetentionMs)", reason: "must be 0 or more")
        }
        guard minCompactionLagMs >= 0 else {
            throw .invalidConfig(key: "min.compaction.lag.ms", value: "\(minCompactionLagMs)", reason: "must be 0 or more")
        }
        guard maxCompactionLagMs >= 1 else {
            throw .invalidConfig(key: "max.compaction.lag.ms", value: "\(maxCompactionLagMs)", reason: "must be at least 1")
        }
    }
}
