// Kafka's topic-level configs, their broker-level synonyms (the broker key whose value is the
// topic's default), and validation of a topic config map for CreateTopics / AlterConfigs /
// IncrementalAlterConfigs with Kafka's INVALID_CONFIG messages.

import KafkaProtocol

/// A topic config key and the broker key that supplies its default.
public struct TopicConfigDefinition: Sendable {
    public let definition: ConfigDefinition
    /// Kafka's `ServerTopicConfigSynonyms`: the broker key holding this topic key's default.
    public let brokerSynonym: String?

    public var name: String { definition.name }
    public var type: ConfigType { definition.type }
    public var defaultValue: String? { definition.defaultValue }
    public var documentation: String { definition.documentation }

    init(_ name: String, _ type: ConfigType, default defaultValue: String?, _ validator: ConfigValidator = .none,
         broker brokerSynonym: String?, doc: String) {
        self.definition = ConfigDefinition(name, type, default: defaultValue, validator, dynamic: true, doc: doc)
        self.brokerSynonym = brokerSynonym
    }
}

/// A refused topic config; answer with `errorCode` (INVALID_CONFIG) and `message`.
public struct TopicConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var value: String?
    /// Kafka's wording, e.g. `Unknown topic config name: foo` or
    /// `Invalid value abc for configuration segment.bytes: Not a number of type INT`.
    public var message: String

    public init(key: String, value: String?, message: String) {
        self.key = key
        self.value = value
        self.message = message
    }

    public var errorCode: KafkaErrorCode { .invalidConfig }
    public var description: String { message }
}

public enum TopicConfigDefinitions {
    static let longMax = String(Int64.max)

    static let throttledReplicasValidator = ConfigValidator.custom(
        expected: "* or a list of partitionId:brokerId",
        check: { value in
            let items = ConfigDefinition.splitList(value)
            if items == ["*"] { return nil }
            for item in items {
                let parts = item.split(separator: ":", omittingEmptySubsequences: false)
                if parts.count != 2 || Int32(String(parts[0]).trimmingConfigWhitespace()) == nil || Int32(String(parts[1]).trimmingConfigWhitespace()) == nil {
                    return "must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                }
            }
            return nil
        })

    /// Every topic key, sorted by name.
    public static let all: [TopicConfigDefinition] = [
        TopicConfigDefinition("cleanup.policy", .list, default: "delete", .listOf(["compact", "delete"]), broker: "log.cleanup.policy",
            doc: "What to do with old segments: delete them, compact the log (keep the last value per key), or both."),
        TopicConfigDefinition("compression.type", .string, default: "producer", .oneOf(ConfigDefinitions.compressionTypes), broker: "compression.type",
            doc: "The compression batches are stored with: uncompressed, zstd, lz4, snappy, gzip, or producer (keep the producer's)."),
        TopicConfigDefinition("delete.retention.ms", .long, default: "86400000", .atLeast(0), broker: "log.cleaner.delete.retention.ms",
            doc: "How long tombstones are kept in a compacted topic."),
        TopicConfigDefinition("file.delete.delay.ms", .long, default: "60000", .atLeast(0), broker: "log.segment.delete.delay.ms",
            doc: "How long to wait before deleting a file from the filesystem."),
        TopicConfigDefinition("flush.messages", .long, default: longMax, .atLeast(1), broker: "log.flush.interval.messages",
            doc: "Force an fsync after this many messages."),
        TopicConfigDefinition("flush.ms", .long, default: longMax, .atLeast(0), broker: "log.flush.interval.ms",
            doc: "Force an fsync after this much time, in milliseconds."),
        TopicConfigDefinition("follower.replication.throttled.replicas", .list, default: "", throttledReplicasValidator, broker: nil,
            doc: "Replicas whose log replication should be throttled on the follower side, as partitionId:brokerId,... or *."),
        TopicConfigDefinition("index.interval.bytes", .int, default: "4096", .atLeast(0), broker: "log.index.interval.bytes",
            doc: "How often, in bytes, an entry is added to the offset index."),
        TopicConfigDefinition("leader.replication.throttled.replicas", .list, default: "", throttledReplicasValidator, broker: nil,
            doc: "Replicas whose log replication should be throttled on the leader side, as partitionId:brokerId,... or *."),
        TopicConfigDefinition("local.retention.bytes", .long, default: "-2", .atLeast(-2), broker: "log.local.retention.bytes",
            doc: "Tiered storage: local bytes kept; -2 means retention.bytes (Petrel keeps every segment local)."),
        TopicConfigDefinition("local.retention.ms", .long, default: "-2", .atLeast(-2), broker: "log.local.retention.ms",
            doc: "Tiered storage: local time kept; -2 means retention.ms (Petrel keeps every segment local)."),
        TopicConfigDefinition("max.compaction.lag.ms", .long, default: longMax, .atLeast(1), broker: "log.cleaner.max.compaction.lag.ms",
            doc: "The maximum time a message stays ineligible for compaction."),
        TopicConfigDefinition("max.message.bytes", .int, default: "1048588", .atLeast(0), broker: "message.max.bytes",
            doc: "The largest record batch size allowed, after compression."),
        TopicConfigDefinition("message.timestamp.after.max.ms", .long, default: "3600000", .atLeast(0), broker: "log.message.timestamp.after.max.ms",
            doc: "How far in the future a CreateTime timestamp may be before the batch is rejected."),
        TopicConfigDefinition("message.timestamp.before.max.ms", .long, default: longMax, .atLeast(0), broker: "log.message.timestamp.before.max.ms",
            doc: "How far in the past a CreateTime timestamp may be before the batch is rejected."),
        TopicConfigDefinition("message.timestamp.difference.max.ms", .long, default: longMax, .atLeast(0), broker: "log.message.timestamp.difference.max.ms",
            doc: "Deprecated (removed in Kafka 4.0): the maximum difference between a CreateTime timestamp and the broker's clock."),
        TopicConfigDefinition("message.timestamp.type", .string, default: "CreateTime", .oneOf(ConfigDefinitions.timestampTypes), broker: "log.message.timestamp.type",
            doc: "Whether record timestamps are the producer's create time or the broker's log append time."),
        TopicConfigDefinition("min.cleanable.dirty.ratio", .double, default: "0.5", .doubleRange(min: 0, max: 1), broker: "log.cleaner.min.cleanable.ratio",
            doc: "The minimum ratio of dirty log to total log for the log to be compacted."),
        TopicConfigDefinition("min.compaction.lag.ms", .long, default: "0", .atLeast(0), broker: "log.cleaner.min.compaction.lag.ms",
            doc: "The minimum time a message stays uncompacted."),
        TopicConfigDefinition("min.insync.replicas", .int, default: "1", .atLeast(1), broker: "min.insync.replicas",
            doc: "With acks=all, the minimum number of in-sync replicas that must acknowledge a write."),
        TopicConfigDefinition("preallocate", .boolean, default: "false", broker: "log.preallocate",
            doc: "Whether to preallocate the file when a new segment is created."),
        TopicConfigDefinition("retention.bytes", .long, default: "-1", broker: "log.retention.bytes",
            doc: "The maximum size of a partition before old segments are deleted; -1 means no limit."),
        TopicConfigDefinition("retention.ms", .long, default: "604800000", .atLeast(-1), broker: "log.retention.ms",
            doc: "How long a segment is kept before it is deleted; -1 means no time limit."),
        TopicConfigDefinition("segment.bytes", .int, default: "1073741824", .atLeast(14), broker: "log.segment.bytes",
            doc: "The segment file size of the log."),
        TopicConfigDefinition("segment.index.bytes", .int, default: "10485760", .atLeast(4), broker: "log.index.size.max.bytes",
            doc: "The size of the index that maps offsets to file positions."),
        TopicConfigDefinition("segment.jitter.ms", .long, default: "0", .atLeast(0), broker: "log.roll.jitter.ms",
            doc: "The maximum random jitter subtracted from segment.ms to avoid thundering herds of segment rolling."),
        TopicConfigDefinition("segment.ms", .long, default: "604800000", .atLeast(1), broker: "log.roll.ms",
            doc: "Roll a new segment after this much time even if the current one is not full."),
        TopicConfigDefinition("unclean.leader.election.enable", .boolean, default: "false", broker: "unclean.leader.election.enable",
            doc: "Whether replicas not in the ISR may be elected leader as a last resort, even though doing so may lose data."),
    ]

    public static let byName: [String: TopicConfigDefinition] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

    public static func definition(_ name: String) -> TopicConfigDefinition? { byName[name] }

    /// Validates one topic config value; returns it as Kafka prints it.
    public static func validate(key: String, value: String) throws(TopicConfigError) -> String {
        guard let topicDefinition = byName[key] else {
            throw TopicConfigError(key: key, value: value, message: "Unknown topic config name: \(key)")
        }
        switch topicDefinition.definition.parse(value) {
        case .success(let parsed): return parsed.canonicalString
        case .failure(let problem):
            throw TopicConfigError(key: key, value: value, message: "Invalid value \(value) for configuration \(key): \(problem.reason)")
        }
    }

    /// Validates a topic's config overrides (for CreateTopics, AlterConfigs, or the result of
    /// IncrementalAlterConfigs): every key must be a topic config and every value valid, and
    /// min.compaction.lag.ms may not exceed max.compaction.lag.ms (taking the other from
    /// `broker` when only one is overridden). Returns the values as Kafka prints them.
    @discardableResult
    public static func validate(_ configs: [String: String], broker: BrokerConfig? = nil) throws(TopicConfigError) -> [String: String] {
        var normalized: [String: String] = [:]
        for key in configs.keys.sorted() {
            guard let value = configs[key] else { continue }
            normalized[key] = try validate(key: key, value: value)
        }
        let minLag = normalized["min.compaction.lag.ms"].flatMap { Int64($0) } ?? broker.map { Int64($0.logCleanerMinCompactionLagMs) }
        let maxLag = normalized["max.compaction.lag.ms"].flatMap { Int64($0) } ?? broker.map { Int64($0.logCleanerMaxCompactionLagMs) }
        if let minLag, let maxLag, minLag > maxLag,
           normalized["min.compaction.lag.ms"] != nil || normalized["max.compaction.lag.ms"] != nil {
            throw TopicConfigError(key: normalized["min.compaction.lag.ms"] != nil ? "min.compaction.lag.ms" : "max.compaction.lag.ms",
                                   value: nil, message: "conflict topic config setting min.compaction.lag.ms (\(minLag)) > max.compaction.lag.ms (\(maxLag))")
        }
        return normalized
    }
}
