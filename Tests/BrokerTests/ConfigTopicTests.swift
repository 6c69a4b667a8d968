import KafkaProtocol
import Testing

@testable import Broker

@Suite("Topic configs")
struct ConfigTopicTests {
    func entry(_ configs: [DescribedConfig], _ name: String) throws -> DescribedConfig {
        try #require(configs.first { $0.name == name })
    }

    @Test func validationRefusesUnknownKeysAndBadValuesWithKafkasMessages() throws {
        do {
            try TopicConfigDefinitions.validate(["retention.ms": "1000", "foo.bar": "1"])
            Issue.record("expected an error")
        } catch {
            #expect(error.message == "Unknown topic config name: foo.bar")
            #expect(error.errorCode == .invalidConfig)
        }
        let cases: [(String, String, String)] = [
            ("segment.bytes", "abc", "Invalid value abc for configuration segment.bytes: Not a number of type INT"),
            ("segment.bytes", "10", "Invalid value 10 for configuration segment.bytes: Value must be at least 14"),
            ("retention.ms", "-2", "Invalid value -2 for configuration retention.ms: Value must be at least -1"),
            ("cleanup.policy", "delete,shred", "Invalid value delete,shred for configuration cleanup.policy: String must be one of: compact, delete"),
            ("message.timestamp.type", "Now", "Invalid value Now for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"),
            ("preallocate", "maybe", "Invalid value maybe for configuration preallocate: Expected value to be either true or false"),
            ("min.cleanable.dirty.ratio", "2", "Invalid value 2 for configuration min.cleanable.dirty.ratio: Value must be no more than 1.0"),
        ]
        for (key, value, message) in cases {
            #expect(throws: TopicConfigError(key: key, value: value, message: message)) {
                try TopicConfigDefinitions.validate([key: value])
            }
        }
    }

    @Test func validationNormalisesValues() throws {
        let normalized = try TopicConfigDefinitions.validate([
            "retention.ms": " 1000 ", "cleanup.policy": "compact , delete", "unclean.leader.election.enable": "TRUE",
            "leader.replication.throttled.replicas": "0:1,1:2",
        ])
        #expect(normalized == [
            "retention.ms": "1000", "cleanup.policy": "compact,delete", "unclean.leader.election.enable": "true",
            "leader.replication.throttled.replicas": "0:1,1:2",
        ])
        #expect(throws: TopicConfigError.self) { try TopicConfigDefinitions.validate(["follower.replication.throttled.replicas": "x"]) }
    }

    @Test func compactionLagsMustBeOrdered() throws {
        #expect(throws: TopicConfigError.self) {
            try TopicConfigDefinitions.validate(["min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"])
        }
        let broker = try BrokerConfig(["log.cleaner.max.compaction.lag.ms": "100"])
        #expect(throws: TopicConfigError.self) { try TopicConfigDefinitions.validate(["min.compaction.lag.ms": "200"], broker: broker) }
        #expect(throws: Never.self) { try TopicConfigDefinitions.validate(["min.compaction.lag.ms": "50"], broker: broker) }
    }

    @Test func defaultsComeFromTheBrokersBuiltInDefaults() throws {
        let configs = TopicConfigDefinitions.effectiveTopicConfig(overrides: [:], broker: .defaults)
        #expect(configs.count == TopicConfigDefinitions.all.count)
        let segment = try entry(configs, "segment.bytes")
        #expect(segment.value == "1073741824")
        #expect(segment.source == .defaultConfig)
        #expect(segment.synonyms == [ConfigSynonym(name: "log.segment.bytes", value: "1073741824", source: .defaultConfig)])
        #expect(segment.type == .int)
        #expect(!segment.isReadOnly)
        // Kafka lists no synonyms for retention.ms unless log.retention.ms itself is set.
        let retention = try entry(configs, "retention.ms")
        #expect(retention.value == "604800000")
        #expect(retention.source == .defaultConfig)
        #expect(retention.synonyms.isEmpty)
        #expect(try entry(configs, "flush.ms").value == String(Int64.max))
        #expect(try entry(configs, "cleanup.policy").value == "delete")
        let throttled = try entry(configs, "leader.replication.throttled.replicas")
        #expect(throttled.value == "")
        #expect(throttled.source == .defaultConfig)
        #expect(throttled.synonyms.isEmpty)
    }

    @Test func staticBrokerSettingsAndTopicOverrides() throws {
        let (broker, _) = try BrokerConfig.load(
            propertiesFile: nil,
            overrides: ["log.segment.bytes=1048576", "log.retention.ms=3600000", "log.roll.hours=1"],
            environment: [:])
        let configs = TopicConfigDefinitions.effectiveTopicConfig(overrides: ["segment.bytes": "2048"], broker: broker)

        let segment = try entry(configs, "segment.bytes")
        #expect(segment.value == "2048")
        #expect(segment.source == .topicConfig)
        #expect(segment.synonyms == [
            ConfigSynonym(name: "segment.bytes", value: "2048", source: .topicConfig),
            ConfigSynonym(name: "log.segment.bytes", value: "1048576", source: .staticBrokerConfig),
            ConfigSynonym(name: "log.segment.bytes", value: "1073741824", source: .defaultConfig),
        ])

        let retention = try entry(configs, "retention.ms")
        #expect(retention.value == "3600000")
        #expect(retention.source == .staticBrokerConfig)
        #expect(retention.synonyms == [
            ConfigSynonym(name: "log.retention.ms", value: "3600000", source: .staticBrokerConfig),
            ConfigSynonym(name: "log.retention.hours", value: "168", source: .defaultConfig),
        ])

        // log.roll.hours feeds segment.ms, but Kafka reports its source only through log.roll.ms.
        let roll = try entry(configs, "segment.ms")
        #expect(roll.value == "3600000")
        #expect(roll.source == .defaultConfig)
        #expect(roll.synonyms.isEmpty)

        let noDocs = TopicConfigDefinitions.effectiveTopicConfig(
            overrides: [:], broker: broker, keys: ["segment.bytes", "nope"], includeSynonyms: false, includeDocumentation: false)
        #expect(noDocs.count == 1)
        #expect(noDocs[0].synonyms.isEmpty)
        #expect(noDocs[0].documentation == nil)
        #expect(noDocs[0].source == .staticBrokerConfig)
    }

    @Test func typedLogSettings() throws {
        let broker = try BrokerConfig(["log.retention.hours": "1", "log.segment.bytes": "4096", "log.message.timestamp.type": "LogAppendTime"])
        let defaults = TopicLogSettings(broker: broker)
        #expect(defaults.retentionMs == 3_600_000)
        #expect(defaults.segmentBytes == 4096)
        #expect(defaults.timestampType == .logAppendTime)
        #expect(defaults.cleanupPolicy == .delete)
        #expect(defaults.flushMessages == Int(Int64.max))
        #expect(defaults.segmentMs == 604_800_000)
        #expect(defaults.maxSegmentMs == 604_800_000)
        #expect(defaults.fileDeleteDelayMs == 60_000)
        #expect(defaults.minInsyncReplicas == 1)
        #expect(defaults.timestampAfterMaxMs == 3_600_000)
        #expect(defaults.minCleanableDirtyRatio == 0.5)

        let topic = TopicLogSettings(overrides: [
            "retention.ms": "-1", "segment.bytes": "100", "cleanup.policy": "compact", "max.compaction.lag.ms": "1000",
            "message.timestamp.type": "CreateTime", "min.insync.replicas": "2", "compression.type": "zstd",
            "max.message.bytes": "bogus",  // invalid: the broker default applies
        ], broker: broker)
        #expect(topic.retentionMs == -1)
        #expect(topic.segmentBytes == 100)
        #expect(topic.cleanupPolicy == .compact)
        #expect(topic.maxSegmentMs == 1000)
        #expect(topic.timestampType == .createTime)
        #expect(topic.minInsyncReplicas == 2)
        #expect(topic.compressionType == .zstd)
        #expect(topic.compressionType.codec == .zstd)
        #expect(topic.maxMessageBytes == 1_048_588)
    }
}

@Suite("DescribeConfigs for a broker")
struct ConfigDescribeTests {
    @Test func describesEveryKeyWithSourceTypeAndReadOnly() throws {
        let (broker, _) = try BrokerConfig.load(
            propertiesFile: nil, overrides: ["log.segment.bytes=1048576", "log.retention.hours=24"],
            environment: ["PETREL_NUM_IO_THREADS": "4"])
        let all = broker.describe()
        #expect(all.count == ConfigDefinitions.broker.count)
        #expect(all.map(\.name) == all.map(\.name).sorted())
        let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

        let segment = try #require(byName["log.segment.bytes"])
        #expect(segment.value == "1048576")
        #expect(segment.source == .staticBrokerConfig)
        #expect(!segment.isReadOnly)
        #expect(segment.type == .int)
        #expect(segment.documentation?.isEmpty == false)
        #expect(segment.description == "log.segment.bytes=1048576 sensitive=false synonyms={STATIC_BROKER_CONFIG:log.segment.bytes=1048576, DEFAULT_CONFIG:log.segment.bytes=1073741824}")

        let nodeID = try #require(byName["node.id"])
        #expect(nodeID.value == "1")
        #expect(nodeID.source == .defaultConfig)
        #expect(nodeID.isReadOnly)

        #expect(byName["num.io.threads"]?.source == .staticBrokerConfig)
        #expect(byName["num.io.threads"]?.value == "4")

        let hours = try #require(byName["log.retention.hours"])
        #expect(hours.synonyms.map(\.description) == ["STATIC_BROKER_CONFIG:log.retention.hours=24", "DEFAULT_CONFIG:log.retention.hours=168"])
        let ms = try #require(byName["log.retention.ms"])
        #expect(ms.value == nil)
        #expect(ms.source == .defaultConfig)
        #expect(ms.synonyms.isEmpty)
        #expect(ms.type == .long)
        #expect(byName["process.roles"]?.type == .list)
        #expect(byName["offsets.topic.replication.factor"]?.type == .short)
        #expect(byName["auto.create.topics.enable"]?.type == .boolean)
        #expect(byName["log.cleaner.min.cleanable.ratio"]?.type == .double)
    }

    @Test func requestedKeysOnly() {
        let some = BrokerConfig.defaults.describe(keys: ["num.partitions", "no.such.key"], includeSynonyms: false, includeDocumentation: false)
        #expect(some.map(\.name) == ["num.partitions"])
        #expect(some[0].synonyms.isEmpty)
        #expect(some[0].documentation == nil)
        #expect(some[0].isDefault)
    }

    @Test func dynamicLayers() throws {
        let dynamic = try BrokerConfig.defaults.applyingDynamic(
            broker: ["log.retention.ms": "1000"], clusterDefault: ["log.retention.ms": "2000", "message.max.bytes": "2000000"])
        #expect(dynamic.logRetentionMs == 1000)
        #expect(dynamic.messageMaxBytes == 2_000_000)
        let retention = try #require(dynamic.describe(keys: ["log.retention.ms"]).first)
        #expect(retention.value == "1000")
        #expect(retention.source == .dynamicBrokerConfig)
        #expect(retention.synonyms.map(\.source) == [.dynamicBrokerConfig, .dynamicDefaultBrokerConfig, .defaultConfig])

        let clusterWide = dynamic.describe(perBroker: false)
        #expect(clusterWide.map(\.name) == ["log.retention.ms", "message.max.bytes"])
        #expect(clusterWide[0].value == "2000")
        #expect(clusterWide[0].source == .dynamicDefaultBrokerConfig)
        #expect(clusterWide[0].synonyms.map(\.source) == [.dynamicDefaultBrokerConfig])

        let topicRetention = TopicConfigDefinitions.effectiveTopicConfig(overrides: [:], broker: dynamic, keys: ["retention.ms"])
        #expect(topicRetention.first?.value == "1000")
        #expect(topicRetention.first?.source == .dynamicBrokerConfig)

        #expect(configError { try BrokerConfig.defaults.applyingDynamic(broker: ["node.id": "2"], clusterDefault: [:]) }?.kind == .notDynamic)
        #expect(configError { try BrokerConfig.defaults.applyingDynamic(broker: [:], clusterDefault: ["nope": "1"]) }?.kind == .unknownKey)
        let bad = configError { try BrokerConfig.defaults.applyingDynamic(broker: ["log.segment.bytes": "1"], clusterDefault: [:]) }
        #expect(bad?.description == "log.segment.bytes=1 (from dynamic broker config): expected an integer between 14 and 2147483647")
    }

    @Test func wireEntries() throws {
        let (broker, _) = try BrokerConfig.load(propertiesFile: nil, overrides: ["log.segment.bytes=1048576"], environment: [:])
        let described = try #require(broker.describe(keys: ["log.segment.bytes"]).first)
        let entry = described.describeConfigsEntry
        #expect(entry.name == "log.segment.bytes")
        #expect(entry.value == "1048576")
        #expect(entry.readOnly == false)
        #expect(entry.isDefault == false)
        #expect(entry.configSource == 4)
        #expect(entry.configType == 3)
        #expect(entry.synonyms.map(\.source) == [4, 5])
        let topic = try #require(TopicConfigDefinitions.effectiveTopicConfig(overrides: ["retention.ms": "5"], broker: broker, keys: ["retention.ms"]).first)
        #expect(topic.createTopicsEntry.configSource == 1)
        #expect(topic.createTopicsEntry.value == "5")
        #expect(configError { try broker.applyingDynamic(broker: ["node.id": "3"], clusterDefault: [:]) }?.errorCode == .invalidRequest)
        #expect(configError { try broker.applyingDynamic(broker: ["num.io.threads": "0"], clusterDefault: [:]) }?.errorCode == .invalidConfig)
    }
}
