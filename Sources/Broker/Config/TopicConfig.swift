// A topic's effective configuration: its overrides over the broker's defaults, described the
// way Kafka's DescribeConfigs describes a TOPIC resource, and typed for the log layer.

import KafkaProtocol

extension TopicConfigDefinitions {
    /// The topic default that `broker` supplies for `key`, as Kafka prints it: the broker
    /// synonym's effective value, converted where the broker key has other units
    /// (log.roll.hours → segment.ms, log.retention.minutes/hours → retention.ms, ...).
    public static func brokerDefault(for key: String, broker: BrokerConfig) -> String? {
        switch key {
        case "segment.ms": return String(broker.logRollMs)
        case "segment.jitter.ms": return String(broker.logRollJitterMs)
        case "retention.ms": return String(broker.logRetentionMs)
        case "flush.ms": return String(broker.logFlushIntervalMs)
        default:
            guard let definition = byName[key] else { return nil }
            guard let synonym = definition.brokerSynonym else { return definition.defaultValue }
            return broker.value(of: synonym) ?? definition.defaultValue
        }
    }

    /// The value `key` resolves to: the override if it is valid, else the broker's default.
    static func resolved(_ key: String, overrides: [String: String], broker: BrokerConfig) -> ConfigValue? {
        guard let definition = byName[key]?.definition else { return nil }
        if let raw = overrides[key], case .success(let v) = definition.parse(raw) { return v }
        if let raw = brokerDefault(for: key, broker: broker), case .success(let v) = definition.parse(raw) { return v }
        if let raw = definition.defaultValue, case .success(let v) = definition.parse(raw) { return v }
        return nil
    }

    /// DescribeConfigs for a TOPIC resource: every topic key with its value and source
    /// (TOPIC_CONFIG when overridden, else the source of the broker synonym — STATIC_BROKER_CONFIG
    /// when the broker's file, environment or command line sets it, DEFAULT_CONFIG otherwise)
    /// and synonyms as Kafka lists them (the topic override first, then the broker's).
    /// Invalid overrides (which validation should have kept out) are ignored.
    public static func effectiveTopicConfig(
        overrides: [String: String], broker: BrokerConfig, keys: [String]? = nil,
        includeSynonyms: Bool = true, includeDocumentation: Bool = true
    ) -> [DescribedConfig] {
        let wanted = keys.map(Set.init)
        return all.compactMap { topicDefinition -> DescribedConfig? in
            let name = topicDefinition.name
            guard wanted?.contains(name) ?? true else { return nil }
            let definition = topicDefinition.definition
            var override: String?
            if let raw = overrides[name], case .success(let v) = definition.parse(raw) { override = v.canonicalString }
            let value = resolved(name, overrides: overrides, broker: broker)?.canonicalString
            var synonyms = topicDefinition.brokerSynonym.map { broker.brokerSynonyms(for: $0) } ?? []
            if let override { synonyms.insert(ConfigSynonym(name: name, value: override, source: .topicConfig), at: 0) }
            return DescribedConfig(
                name: name, value: value, isReadOnly: false,
                source: synonyms.first?.source ?? .defaultConfig,
                isSensitive: false,
                synonyms: includeSynonyms ? synonyms : [],
                type: definition.type,
                documentation: includeDocumentation ? definition.documentation : nil)
        }
    }
}

/// The settings a partition's log runs with, resolved from the topic's overrides over the
/// broker's defaults. Invalid overrides are ignored (the broker default applies).
public struct TopicLogSettings: Sendable, Hashable {
    public var segmentBytes: Int
    public var segmentMs: Int
    public var segmentJitterMs: Int
    public var segmentIndexBytes: Int
    public var indexIntervalBytes: Int
    /// -1 means no time limit.
    public var retentionMs: Int
    /// -1 means no size limit.
    public var retentionBytes: Int
    public var flushMessages: Int
    public var flushMs: Int
    public var maxMessageBytes: Int
    public var timestampType: TimestampType
    /// How far in the past a CreateTime timestamp may be (also bounded by the deprecated
    /// message.timestamp.difference.max.ms).
    public var timestampBeforeMaxMs: Int
    /// How far in the future a CreateTime timestamp may be (also bounded by the deprecated
    /// message.timestamp.difference.max.ms).
    public var timestampAfterMaxMs: Int
    public var cleanupPolicy: CleanupPolicy
    public var compressionType: BrokerCompressionType
    public var minInsyncReplicas: Int
    public var uncleanLeaderElectionEnable: Bool
    public var fileDeleteDelayMs: Int
    public var deleteRetentionMs: Int
    public var minCompactionLagMs: Int
    public var maxCompactionLagMs: Int
    public var minCleanableDirtyRatio: Double
    public var preallocate: Bool

    /// Kafka's `LogConfig.maxSegmentMs`: compacted logs roll by max.compaction.lag.ms too.
    public var maxSegmentMs: Int {
        cleanupPolicy.contains(.compact) && maxCompactionLagMs > 0 ? min(maxCompactionLagMs, segmentMs) : segmentMs
    }

    public init(overrides: [String: String] = [:], broker: BrokerConfig) {
        func int(_ key: String) -> Int {
            if case .integer(let i)? = TopicConfigDefinitions.resolved(key, overrides: overrides, broker: broker) { return Int(i) }
            return 0
        }
        func bool(_ key: String) -> Bool {
            if case .boolean(let b)? = TopicConfigDefinitions.resolved(key, overrides: overrides, broker: broker) { return b }
            return false
        }
        func string(_ key: String) -> String {
            if case .string(let s)? = TopicConfigDefinitions.resolved(key, overrides: overrides, broker: broker) { return s }
            return ""
        }
        func list(_ key: String) -> [String] {
            if case .list(let items)? = TopicConfigDefinitions.resolved(key, overrides: overrides, broker: broker) { return items }
            return []
        }
        segmentBytes = int("segment.bytes")
        segmentMs = int("segment.ms")
        segmentJitterMs = int("segment.jitter.ms")
        segmentIndexBytes = int("segment.index.bytes")
        indexIntervalBytes = int("index.interval.bytes")
        retentionMs = int("retention.ms")
        retentionBytes = int("retention.bytes")
        flushMessages = int("flush.messages")
        flushMs = int("flush.ms")
        maxMessageBytes = int("max.message.bytes")
        timestampType = TimestampType(configValue: string("message.timestamp.type")) ?? .createTime
        let difference = int("message.timestamp.difference.max.ms")
        timestampBeforeMaxMs = min(int("message.timestamp.before.max.ms"), difference)
        timestampAfterMaxMs = min(int("message.timestamp.after.max.ms"), difference)
        cleanupPolicy = CleanupPolicy(configList: list("cleanup.policy"))
        compressionType = BrokerCompressionType(rawValue: string("compression.type")) ?? .producer
        minInsyncReplicas = int("min.insync.replicas")
        uncleanLeaderElectionEnable = bool("unclean.leader.election.enable")
        fileDeleteDelayMs = int("file.delete.delay.ms")
        deleteRetentionMs = int("delete.retention.ms")
        minCompactionLagMs = int("min.compaction.lag.ms")
        maxCompactionLagMs = int("max.compaction.lag.ms")
        if case .double(let d)? = TopicConfigDefinitions.resolved("min.cleanable.dirty.ratio", overrides: overrides, broker: broker) {
            minCleanableDirtyRatio = d
        } else {
            minCleanableDirtyRatio = 0.5
        }
        preallocate = bool("preallocate")
    }
}
