import Foundation
import KafkaProtocol
import Testing

@testable import Broker

/// Writes `text` to a fresh file and returns its path.
func writeTempProperties(_ text: String, name: String = "server.properties") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

/// The ConfigError thrown by `body`, or nil.
func configError<T>(_ body: () throws -> T) -> ConfigError? {
    do {
        _ = try body()
        return nil
    } catch let error as ConfigError {
        return error
    } catch {
        return nil
    }
}

@Suite("Broker config defaults")
struct ConfigDefaultsTests {
    @Test func singleNodeDefaults() throws {
        let c = BrokerConfig.defaults
        #expect(c.nodeID == 1)
        #expect(c.processRoles == [.broker, .controller])
        #expect(c.listeners == [ListenerAddress(name: "PLAINTEXT", host: "127.0.0.1", port: 9092)])
        #expect(c.advertisedListeners == c.listeners)
        #expect(c.controllerListenerNames == ["CONTROLLER"])
        #expect(c.controllerListeners.isEmpty)
        #expect(c.quorumVoters.isEmpty)
        #expect(c.isSingleNodeQuorum)
        #expect(c.interBrokerListenerName == "PLAINTEXT")
        #expect(c.listenerSecurityProtocolMap["PLAINTEXT"] == .plaintext)
        #expect(c.listenerSecurityProtocolMap["CONTROLLER"] == .plaintext)
        #expect(c.clusterID == nil)
        #expect(c.logDirs == ["./petrel-data"])
        #expect(c.metadataLogDir == "./petrel-data")
        #expect(c.numPartitions == 1)
        #expect(c.defaultReplicationFactor == 1)
        #expect(c.minInsyncReplicas == 1)
        #expect(c.offsetsTopicReplicationFactor == 3)
        #expect(c.offsetsTopicNumPartitions == 50)
        #expect(c.transactionStateLogReplicationFactor == 3)
        #expect(c.logSegmentBytes == 1_073_741_824)
        #expect(c.logRollMs == 168 * 3_600_000)
        #expect(c.logRetentionMs == 168 * 3_600_000)
        #expect(c.logRetentionBytes == -1)
        #expect(c.logRetentionCheckIntervalMs == 300_000)
        #expect(c.logFlushIntervalMessages == Int(Int64.max))
        #expect(c.logFlushIntervalMs == Int(Int64.max))
        #expect(c.logFlushOffsetCheckpointIntervalMs == 60_000)
        #expect(c.logIndexIntervalBytes == 4096)
        #expect(c.logIndexSizeMaxBytes == 10_485_760)
        #expect(c.messageMaxBytes == 1_048_588)
        #expect(c.replicaFetchMaxBytes == 1_048_576)
        #expect(c.replicaLagTimeMaxMs == 30_000)
        #expect(c.socketRequestMaxBytes == 104_857_600)
        #expect(c.numNetworkThreads == 3)
        #expect(c.numIoThreads == 8)
        #expect(c.autoCreateTopicsEnable)
        #expect(c.deleteTopicEnable)
        #expect(!c.uncleanLeaderElectionEnable)
        #expect(c.autoLeaderRebalanceEnable)
        #expect(c.brokerSessionTimeoutMs == 9000)
        #expect(c.brokerHeartbeatIntervalMs == 2000)
        #expect(c.groupInitialRebalanceDelayMs == 3000)
        #expect(c.groupMinSessionTimeoutMs == 6000)
        #expect(c.groupMaxSessionTimeoutMs == 1_800_000)
        #expect(c.offsetsRetentionMinutes == 10080)
        #expect(c.logMessageTimestampType == .createTime)
        #expect(c.logCleanupPolicy == .delete)
        #expect(c.compressionType == .producer)
        #expect(c.connectionsMaxIdleMs == 600_000)
        #expect(c.producerIdExpirationMs == 86_400_000)
        #expect(c.maxIncrementalFetchSessionCacheSlots == 1000)
        #expect(c.fetchMaxBytes == 57_671_680)
        #expect(c.metricsListener == HostPort(host: "127.0.0.1", port: 9308))
        #expect(c.notes.isEmpty)
    }

    @Test func everyDefaultParsesWithItsOwnDefinition() {
        for definition in ConfigDefinitions.broker {
            guard let value = definition.defaultValue else { continue }
            if case .failure(let problem) = definition.parse(value) {
                Issue.record("\(definition.name) default \(value): \(problem.reason)")
            }
        }
        for topic in TopicConfigDefinitions.all {
            guard let value = topic.defaultValue else { continue }
            if case .failure(let problem) = topic.definition.parse(value) {
                Issue.record("\(topic.name) default \(value): \(problem.reason)")
            }
            if let synonym = topic.brokerSynonym {
                #expect(ConfigDefinitions.byName[synonym] != nil, "\(topic.name)'s synonym \(synonym) is not a broker key")
            }
        }
    }

    @Test func keysAreKafkaKeysOrPetrelPrefixed() {
        #expect(Set(ConfigDefinitions.broker.map(\.name)).count == ConfigDefinitions.broker.count)
        let petrel = ConfigDefinitions.broker.map(\.name).filter { $0.hasPrefix("petrel.") }
        #expect(petrel == ["petrel.metrics.listener"])
    }

    @Test func unknownKeyFromCodeIsRefused() {
        let error = configError { try BrokerConfig(["log.retention.hour": "1"]) }
        #expect(error?.kind == .unknownKey)
        #expect(error?.description.contains("did you mean 'log.retention.hours'") == true)
    }

    @Test func brokerIDIsALegacyNameOfNodeID() throws {
        #expect(try BrokerConfig(["broker.id": "1"]).nodeID == 1)
        let c = try BrokerConfig(["broker.id": "4", "controller.quorum.voters": "4@127.0.0.1:9093",
                                  "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"])
        #expect(c.nodeID == 4)
        #expect(configError { try BrokerConfig(["broker.id": "2", "node.id": "3"]) }?.key == "broker.id")
    }

    @Test func heartbeatLongerThanHalfTheSessionIsANote() throws {
        let c = try BrokerConfig(["broker.heartbeat.interval.ms": "5000"])
        #expect(c.notes.count == 1)
    }
}

@Suite("Sources and precedence")
struct ConfigLoadTests {
    @Test func fileThenEnvironmentThenOverride() throws {
        let path = try writeTempProperties("""
            num.partitions=2
            default.replication.factor=1
            log.segment.bytes=1000
            auto.create.topics.enable=false
            """)
        let (c, warnings) = try BrokerConfig.load(
            propertiesFile: path,
            overrides: ["log.segment.bytes=3000"],
            environment: ["KAFKA_NUM_PARTITIONS": "4", "PETREL_LOG_SEGMENT_BYTES": "2000", "PATH": "/bin"])
        #expect(warnings.isEmpty)
        #expect(c.numPartitions == 4)
        #expect(c.origin(of: "num.partitions") == .environment(variable: "KAFKA_NUM_PARTITIONS"))
        #expect(c.logSegmentBytes == 3000)
        #expect(c.origin(of: "log.segment.bytes") == .override)
        #expect(!c.autoCreateTopicsEnable)
        #expect(c.origin(of: "auto.create.topics.enable") == .file(path: path, line: 4))
        #expect(c.origin(of: "message.max.bytes") == .defaultValue)
    }

    @Test func noSourcesGiveTheDefaults() throws {
        let (c, warnings) = try BrokerConfig.load(propertiesFile: nil, overrides: [], environment: [:])
        #expect(warnings.isEmpty)
        #expect(c.layers == BrokerConfig.defaults.layers)
    }

    @Test func overrideSplitsAtTheFirstEquals() throws {
        let (c, _) = try BrokerConfig.load(
            propertiesFile: nil, overrides: ["cluster.id=abc=def", "log.dirs = /a,/b"], environment: [:])
        #expect(c.clusterID == "abc=def")
        #expect(c.logDirs == ["/a", "/b"])
    }

    @Test func malformedOverrideIsRefused() {
        let error = configError { try BrokerConfig.load(propertiesFile: nil, overrides: ["num.partitions"], environment: [:]) }
        #expect(error?.kind == .malformedSource)
        #expect(error?.description.contains("--override num.partitions") == true)
    }

    @Test func missingFileIsRefused() {
        let error = configError { try BrokerConfig.load(propertiesFile: "/nonexistent/server.properties", overrides: [], environment: [:]) }
        #expect(error?.kind == .malformedSource)
        #expect(error?.description.contains("/nonexistent/server.properties") == true)
    }

    @Test func logDirsWinsOverLogDir() throws {
        #expect(try BrokerConfig(["log.dir": "/x"]).logDirs == ["/x"])
        #expect(try BrokerConfig(["log.dir": "/x", "log.dirs": "/y, /z"]).logDirs == ["/y", "/z"])
        #expect(try BrokerConfig(["log.dirs": "/y,/z", "metadata.log.dir": "/m"]).metadataLogDir == "/m")
        #expect(try BrokerConfig(["log.dirs": "/y,/z"]).metadataLogDir == "/y")
        #expect(configError { try BrokerConfig(["log.dirs": "/y,/y"]) }?.key == "log.dirs")
    }
}

@Suite("Environment variables")
struct ConfigEnvironmentTests {
    @Test func dockerImageNaming() {
        #expect(EnvironmentConfig.propertyName(fromVariableSuffix: "NODE_ID") == "node.id")
        #expect(EnvironmentConfig.propertyName(fromVariableSuffix: "LOG_DIRS") == "log.dirs")
        #expect(EnvironmentConfig.propertyName(fromVariableSuffix: "LISTENER_SECURITY_PROTOCOL_MAP") == "listener.security.protocol.map")
        #expect(EnvironmentConfig.propertyName(fromVariableSuffix: "FOO__BAR") == "foo_bar")
        #expect(EnvironmentConfig.propertyName(fromVariableSuffix: "FOO___BAR") == "foo-bar")
        #expect(EnvironmentConfig.variableName(forKey: "log.retention.ms") == "PETREL_LOG_RETENTION_MS")
        #expect(EnvironmentConfig.variableName(forKey: "a_b-c.d", prefix: "KAFKA_") == "KAFKA_A__B___C_D")
    }

    @Test func kafkaAndPetrelPrefixes() throws {
        let (c, warnings) = try BrokerConfig.load(propertiesFile: nil, overrides: [], environment: [
            "KAFKA_NODE_ID": "1",
            "PETREL_LOG_DIRS": "/data/petrel",
            "KAFKA_LOG_RETENTION_HOURS": "24",
            "PETREL_METRICS_LISTENER": "0.0.0.0:9400",
            "KAFKA_HEAP_OPTS": "-Xmx1G",  // not a config: silently ignored
            "KAFKA_VERSION": "4.0.0",
            "HOME": "/root",
        ])
        #expect(warnings.isEmpty)
        #expect(c.logDirs == ["/data/petrel"])
        #expect(c.logRetentionMs == 24 * 3_600_000)
        #expect(c.metricsListener == HostPort(host: "0.0.0.0", port: 9400))
        #expect(c.origin(of: "log.dirs") == .environment(variable: "PETREL_LOG_DIRS"))
    }

    @Test func petrelBeatsKafkaForTheSameKey() throws {
        let (c, warnings) = try BrokerConfig.load(propertiesFile: nil, overrides: [], environment: [
            "KAFKA_NUM_PARTITIONS": "3", "PETREL_NUM_PARTITIONS": "6",
        ])
        #expect(c.numPartitions == 6)
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("PETREL_NUM_PARTITIONS wins") == true)
    }

    @Test func unknownPetrelVariablesAreWarnedAbout() throws {
        let (_, warnings) = try BrokerConfig.load(propertiesFile: nil, overrides: [], environment: [
            "PETREL_NUM_PARTITION": "3", "PETREL_LOG_LEVEL": "debug", "KAFKA_NUM_PARTITION": "3",
        ], ignoringEnvironment: ["PETREL_LOG_LEVEL"])
        #expect(warnings.count == 1)
        let warning = try #require(warnings.first)
        #expect(warning.contains("PETREL_NUM_PARTITION"))
        #expect(warning.contains("num.partition"))
        #expect(warning.contains("PETREL_NUM_PARTITIONS"))  // the suggestion
    }

    @Test func clusterIDVariableOfTheApacheImage() throws {
        let (c, _) = try BrokerConfig.load(propertiesFile: nil, overrides: [], environment: ["CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk"])
        #expect(c.clusterID == "MkU3OEVBNTcwNTJENDM2Qk")
    }

    @Test func badEnvironmentValueNamesTheVariable() {
        let error = configError { try BrokerConfig.load(propertiesFile: nil, overrides: [], environment: ["PETREL_NODE_ID": "-3"]) }
        #expect(error?.description == "node.id=-3 (from environment variable PETREL_NODE_ID): expected an integer between 0 and 2147483647")
    }
}

@Suite("Unknown keys and bad values")
struct ConfigValidationTests {
    @Test func unknownKeysAreWarnedWithTheirSource() throws {
        let path = try writeTempProperties("""
            # Kafka's quickstart has these
            log.retention.hour=1
            ssl.keystore.location=/etc/ks
            num.partitions=1
            """)
        let (_, warnings) = try BrokerConfig.load(propertiesFile: path, overrides: ["totally.unknown=1"], environment: [:])
        #expect(warnings.count == 3)
        #expect(warnings[0] == "\(path):2: unknown configuration 'log.retention.hour' ignored; did you mean 'log.retention.hours'?")
        #expect(warnings[1] == "\(path):3: 'ssl.keystore.location' is a Kafka setting Petrel does not implement; ignored")
        #expect(warnings[2] == "--override: unknown configuration 'totally.unknown' ignored")
    }

    @Test func duplicateKeysInAFileAreWarnedAbout() throws {
        let path = try writeTempProperties("num.partitions=1\nnum.partitions=2\n")
        let (c, warnings) = try BrokerConfig.load(propertiesFile: path, overrides: [], environment: [:])
        #expect(c.numPartitions == 2)
        #expect(warnings == ["\(path):2: num.partitions is also set on line 1; the later value wins"])
    }

    @Test func badValueNamesKeyValueSourceAndExpectation() throws {
        let lines = (1...11).map { "# line \($0)" } + ["log.segment.bytes=abc"]
        let path = try writeTempProperties(lines.joined(separator: "\n"))
        let error = configError { try BrokerConfig.load(propertiesFile: path, overrides: [], environment: [:]) }
        #expect(error?.kind == .invalidValue)
        #expect(error?.description == "log.segment.bytes=abc (from \(path):12): expected an integer between 14 and 2147483647")
    }

    @Test func rangesAsKafka() {
        let cases: [(String, String, String)] = [
            ("log.segment.bytes", "13", "an integer between 14 and 2147483647"),
            ("log.segment.bytes", "2147483648", "an integer between 14 and 2147483647"),
            ("message.max.bytes", "-1", "an integer between 0 and 2147483647"),
            ("node.id", "-1", "an integer between 0 and 2147483647"),
            ("min.insync.replicas", "0", "an integer between 1 and 2147483647"),
            ("offsets.topic.replication.factor", "40000", "an integer between 1 and 32767"),
            ("fetch.max.bytes", "1023", "an integer between 1024 and 2147483647"),
            ("auto.create.topics.enable", "yes", "true or false"),
            ("log.cleaner.min.cleanable.ratio", "1.5", "a number between 0.0 and 1.0"),
            ("log.message.timestamp.type", "createtime", "one of: CreateTime, LogAppendTime"),
            ("compression.type", "brotli", "one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
            ("log.cleanup.policy", "delete,archive", "a comma-separated list of: compact, delete"),
        ]
        for (key, value, expected) in cases {
            let error = configError { try BrokerConfig.load(propertiesFile: nil, overrides: ["\(key)=\(value)"], environment: [:]) }
            #expect(error?.description == "\(key)=\(value) (from --override): expected \(expected)", "\(key)=\(value)")
        }
    }

    @Test func valuesAreTrimmedAndBooleansCaseInsensitive() throws {
        let c = try BrokerConfig(["num.partitions": " 12 ", "delete.topic.enable": "FALSE", "log.cleanup.policy": "compact, delete"])
        #expect(c.numPartitions == 12)
        #expect(!c.deleteTopicEnable)
        #expect(c.logCleanupPolicy == [.compact, .delete])
        #expect(c.value(of: "log.cleanup.policy") == "compact,delete")
        #expect(c.value(of: "delete.topic.enable") == "false")
    }

    @Test func processRoles() throws {
        #expect(configError { try BrokerConfig(["process.roles": "broker,foo"]) }?.description
            .contains("expected broker, controller, or broker,controller") == true)
        #expect(configError { try BrokerConfig(["process.roles": ""]) }?.key == "process.roles")
        #expect(configError { try BrokerConfig(["process.roles": "broker,broker"]) }?.key == "process.roles")
    }

    @Test func replicaFetchWaitMustFitTheTimeouts() {
        let error = configError { try BrokerConfig(["replica.fetch.wait.max.ms": "40000"]) }
        #expect(error?.kind == .inconsistent)
        #expect(error?.key == "replica.fetch.wait.max.ms")
        #expect(error?.description.hasPrefix("replica.fetch.wait.max.ms=40000 (from code): must be at most replica.socket.timeout.ms") == true)
    }

    @Test func metricsListener() throws {
        #expect(try BrokerConfig(["petrel.metrics.listener": ""]).metricsListener == nil)
        #expect(try BrokerConfig(["petrel.metrics.listener": ":9999"]).metricsListener == HostPort(host: "", port: 9999))
        #expect(configError { try BrokerConfig(["petrel.metrics.listener": "localhost"]) }?.key == "petrel.metrics.listener")
        #expect(configError { try BrokerConfig(["petrel.metrics.listener": "127.0.0.1:9092"]) }?.kind == .inconsistent)
    }
}

@Suite("Retention, roll and flush synonyms")
struct ConfigRetentionTests {
    @Test func retentionMsBeatsMinutesBeatsHours() throws {
        #expect(try BrokerConfig(["log.retention.hours": "2"]).logRetentionMs == 7_200_000)
        #expect(try BrokerConfig(["log.retention.hours": "2", "log.retention.minutes": "3"]).logRetentionMs == 180_000)
        #expect(try BrokerConfig(["log.retention.hours": "2", "log.retention.minutes": "3", "log.retention.ms": "1234"]).logRetentionMs == 1234)
    }

    @Test func negativeRetentionMeansUnlimitedAndZeroIsRefused() throws {
        #expect(try BrokerConfig(["log.retention.ms": "-1"]).logRetentionMs == -1)
        #expect(try BrokerConfig(["log.retention.hours": "-1"]).logRetentionMs == -1)
        #expect(try BrokerConfig(["log.retention.minutes": "-5"]).logRetentionMs == -1)
        let error = configError { try BrokerConfig(["log.retention.minutes": "0", "log.retention.hours": "5"]) }
        #expect(error?.key == "log.retention.minutes")
    }

    @Test func rollAndFlushFallbacks() throws {
        #expect(try BrokerConfig(["log.roll.hours": "1"]).logRollMs == 3_600_000)
        #expect(try BrokerConfig(["log.roll.hours": "1", "log.roll.ms": "500"]).logRollMs == 500)
        #expect(try BrokerConfig(["log.roll.jitter.hours": "1"]).logRollJitterMs == 3_600_000)
        #expect(try BrokerConfig(["log.flush.scheduler.interval.ms": "700"]).logFlushIntervalMs == 700)
        #expect(try BrokerConfig(["log.flush.scheduler.interval.ms": "700", "log.flush.interval.ms": "50"]).logFlushIntervalMs == 50)
    }
}
