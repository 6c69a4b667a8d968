// The broker's configuration as typed values, resolved from its layers (defaults, static
// config, dynamic config) and checked as Kafka checks it. Build one with
// `BrokerConfig.load(propertiesFile:overrides:environment:)` (start-up) or
// `BrokerConfig(["key": "value"])` (code and tests).

import KafkaProtocol

public struct BrokerConfig: Sendable, Equatable {
    /// Where every value came from; DescribeConfigs reads this.
    public private(set) var layers: ConfigLayers
    /// Non-fatal remarks found while resolving (e.g. heartbeat interval vs session timeout).
    public private(set) var notes: [String] = []

    // MARK: Identity and roles
    /// `node.id` (or the legacy `broker.id`).
    public private(set) var nodeID: Int32
    /// `process.roles`.
    public private(set) var processRoles: Set<ProcessRole>
    /// `cluster.id`, if configured.
    public private(set) var clusterID: String?

    // MARK: Listeners and the quorum
    /// `listeners`: what to bind. A wildcard host (empty, 0.0.0.0, ::) binds every interface.
    public private(set) var listeners: [ListenerAddress]
    /// The broker listeners published to clients: `advertised.listeners`, or `listeners` minus the
    /// controller listeners with wildcard hosts replaced by 127.0.0.1 (::1 for ::).
    /// A port of 0 means "the port the listener was bound to".
    public private(set) var advertisedListeners: [ListenerAddress]
    /// The listeners named in `controller.listener.names` that this node binds.
    public private(set) var controllerListeners: [ListenerAddress]
    /// `controller.listener.names`, upper-cased.
    public private(set) var controllerListenerNames: [String]
    /// `listener.security.protocol.map`, upper-cased names; when the key is not set, controller
    /// listeners are mapped to PLAINTEXT (as Kafka does in KRaft mode).
    public private(set) var listenerSecurityProtocolMap: [String: SecurityProtocol]
    /// The listener brokers use to reach each other (`inter.broker.listener.name`, or the
    /// listener named like `security.inter.broker.protocol`).
    public private(set) var interBrokerListenerName: String
    /// `controller.quorum.voters`. Empty on a combined broker+controller node means a
    /// single-node quorum of this node alone (a Petrel convenience; Kafka requires voters).
    public private(set) var quorumVoters: [QuorumVoter]
    public private(set) var quorumElectionTimeoutMs: Int
    public private(set) var quorumFetchTimeoutMs: Int
    public private(set) var quorumElectionBackoffMaxMs: Int
    public private(set) var quorumRequestTimeoutMs: Int
    public private(set) var quorumRetryBackoffMs: Int
    public private(set) var quorumAppendLingerMs: Int
    public private(set) var brokerSessionTimeoutMs: Int
    public private(set) var brokerHeartbeatIntervalMs: Int
    public private(set) var initialBrokerRegistrationTimeoutMs: Int
    /// `petrel.metrics.listener`: where to serve Prometheus metrics; nil when disabled.
    public private(set) var metricsListener: HostPort?

    // MARK: Storage
    /// `log.dirs`, or `log.dir` when `log.dirs` is not set.
    public private(set) var logDirs: [String]
    /// `metadata.log.dir`, or the first of `logDirs`.
    public private(set) var metadataLogDir: String
    public private(set) var metadataLogSegmentBytes: Int
    public private(set) var metadataMaxRetentionBytes: Int
    public private(set) var metadataMaxRetentionMs: Int
    public private(set) var metadataLogMaxRecordBytesBetweenSnapshots: Int
    public private(set) var metadataLogMaxSnapshotIntervalMs: Int
    public private(set) var metadataMaxIdleIntervalMs: Int
    public private(set) var numRecoveryThreadsPerDataDir: Int
    public private(set) var backgroundThreads: Int

    // MARK: Topic defaults
    public private(set) var numPartitions: Int
    public private(set) var defaultReplicationFactor: Int
    public private(set) var minInsyncReplicas: Int
    public private(set) var autoCreateTopicsEnable: Bool
    public private(set) var deleteTopicEnable: Bool
    public private(set) var uncleanLeaderElectionEnable: Bool
    public private(set) var autoLeaderRebalanceEnable: Bool
    public private(set) var leaderImbalanceCheckIntervalSeconds: Int
    public private(set) var leaderImbalancePerBrokerPercentage: Int

    // MARK: Logs
    public private(set) var logSegmentBytes: Int
    /// `log.roll.ms`, else `log.roll.hours` in milliseconds.
    public private(set) var logRollMs: Int
    /// `log.roll.jitter.ms`, else `log.roll.jitter.hours` in milliseconds.
    public private(set) var logRollJitterMs: Int
    /// `log.retention.ms`, else `log.retention.minutes`, else `log.retention.hours`, in
    /// milliseconds; -1 means no time limit (any negative setting means -1, as in Kafka).
    public private(set) var logRetentionMs: Int
    public private(set) var logRetentionBytes: Int
    public private(set) var logRetentionCheckIntervalMs: Int
    public private(set) var logCleanupPolicy: CleanupPolicy
    public private(set) var logCleanerEnable: Bool
    public private(set) var logCleanerThreads: Int
    public private(set) var logCleanerBackoffMs: Int
    public private(set) var logCleanerDeleteRetentionMs: Int
    public private(set) var logCleanerMinCompactionLagMs: Int
    public private(set) var logCleanerMaxCompactionLagMs: Int
    public private(set) var logCleanerMinCleanableRatio: Double
    public private(set) var logSegmentDeleteDelayMs: Int
    public private(set) var logIndexSizeMaxBytes: Int
    public private(set) var logIndexIntervalBytes: Int
    public private(set) var logFlushIntervalMessages: Int
    /// `log.flush.interval.ms`, else `log.flush.scheduler.interval.ms`.
    public private(set) var logFlushIntervalMs: Int
    public private(set) var logFlushSchedulerIntervalMs: Int
    public private(set) var logFlushOffsetCheckpointIntervalMs: Int
    public private(set) var logFlushStartOffsetCheckpointIntervalMs: Int
    public private(set) var logPreallocate: Bool
    public private(set) var logMessageTimestampType: TimestampType
    public private(set) var logMessageTimestampDifferenceMaxMs: Int
    public private(set) var logMessageTimestampBeforeMaxMs: Int
    public private(set) var logMessageTimestampAfterMaxMs: Int
    public private(set) var logLocalRetentionMs: Int
    public private(set) var logLocalRetentionBytes: Int
    public private(set) var messageMaxBytes: Int
    public private(set) var compressionType: BrokerCompressionType

    // MARK: Internal topics, transactions, producer ids
    /// Kafka's default is 3; the broker caps it to the live broker count when creating the topic.
    public private(set) var offsetsTopicReplicationFactor: Int
    public private(set) var offsetsTopicNumPartitions: Int
    public private(set) var offsetsTopicSegmentBytes: Int
    public private(set) var offsetsRetentionMinutes: Int
    public private(set) var offsetsRetentionCheckIntervalMs: Int
    public private(set) var offsetsCommitTimeoutMs: Int
    public private(set) var offsetMetadataMaxBytes: Int
    public private(set) var transactionStateLogReplicationFactor: Int
    public private(set) var transactionStateLogNumPartitions: Int
    public private(set) var transactionStateLogMinIsr: Int
    public private(set) var transactionStateLogSegmentBytes: Int
    public private(set) var transactionMaxTimeoutMs: Int
    public private(set) var transactionalIdExpirationMs: Int
    public private(set) var producerIdExpirationMs: Int

    // MARK: Groups and fetch sessions
    public private(set) var groupInitialRebalanceDelayMs: Int
    public private(set) var groupMinSessionTimeoutMs: Int
    public private(set) var groupMaxSessionTimeoutMs: Int
    public private(set) var groupMaxSize: Int
    public private(set) var maxIncrementalFetchSessionCacheSlots: Int
    public private(set) var fetchMaxBytes: Int

    // MARK: Replication
    public private(set) var replicaFetchMaxBytes: Int
    public private(set) var replicaFetchResponseMaxBytes: Int
    public private(set) var replicaFetchMinBytes: Int
    public private(set) var replicaFetchWaitMaxMs: Int
    public private(set) var replicaFetchBackoffMs: Int
    public private(set) var replicaLagTimeMaxMs: Int
    public private(set) var replicaSocketTimeoutMs: Int
    public private(set) var replicaHighWatermarkCheckpointIntervalMs: Int
    public private(set) var numReplicaFetchers: Int

    // MARK: Network
    public private(set) var socketRequestMaxBytes: Int
    public private(set) var socketSendBufferBytes: Int
    public private(set) var socketReceiveBufferBytes: Int
    public private(set) var socketListenBacklogSize: Int
    public private(set) var queuedMaxRequests: Int
    public private(set) var numNetworkThreads: Int
    public private(set) var numIoThreads: Int
    public private(set) var connectionsMaxIdleMs: Int
    public private(set) var maxConnections: Int
    public private(set) var maxConnectionsPerIp: Int

    // MARK: Derived conveniences
    public var offsetsRetentionMs: Int { offsetsRetentionMinutes * 60_000 }
    public var isBroker: Bool { processRoles.contains(.broker) }
    public var isController: Bool { processRoles.contains(.controller) }
    /// True when this node is the whole metadata quorum (no voters listed, or only itself).
    public var isSingleNodeQuorum: Bool {
        isController && (quorumVoters.isEmpty || quorumVoters.map(\.id) == [nodeID])
    }
    /// The advertised listener brokers use to reach this one.
    public var interBrokerListener: ListenerAddress? { advertisedListeners.first { $0.name == interBrokerListenerName } }
    public func securityProtocol(forListener name: String) -> SecurityProtocol? { listenerSecurityProtocolMap[name.uppercased()] }

    // MARK: - Building

    /// A config from code: `properties` are static values (origin `.programmatic`) over the defaults.
    /// Unknown keys are refused here (files and overrides only warn about them).
    public init(_ properties: [String: String] = [:]) throws(ConfigError) {
        var values: [String: ConfiguredValue] = [:]
        for (key, value) in properties {
            guard ConfigDefinitions.byName[key] != nil else {
                throw ConfigError(kind: .unknownKey, key: key, value: value, origin: .programmatic,
                                  message: "is not a broker configuration\(Self.didYouMean(key))")
            }
            values[key] = ConfiguredValue(value, origin: .programmatic)
        }
        try self.init(layers: ConfigLayers(staticValues: values))
    }

    /// The built-in defaults: a single-node broker+controller on 127.0.0.1:9092.
    public static let defaults: BrokerConfig = {
        do { return try BrokerConfig() } catch { preconditionFailure("Petrel's built-in config defaults do not validate: \(error)") }
    }()

    /// This config with more static values (origin `.programmatic`) on top.
    public func with(_ properties: [String: String]) throws(ConfigError) -> BrokerConfig {
        var layers = self.layers
        for (key, value) in properties {
            guard ConfigDefinitions.byName[key] != nil else {
                throw ConfigError(kind: .unknownKey, key: key, value: value, origin: .programmatic,
                                  message: "is not a broker configuration\(Self.didYouMean(key))")
            }
            layers.staticValues[key] = ConfiguredValue(value, origin: .programmatic)
        }
        return try BrokerConfig(layers: layers)
    }

    /// This config with its dynamic layers replaced (from the metadata log's ConfigRecords).
    /// Keys that cannot change at runtime are refused with `.notDynamic`, unknown keys with `.unknownKey`.
    public func applyingDynamic(broker: [String: String], clusterDefault: [String: String]) throws(ConfigError) -> BrokerConfig {
        for (values, origin) in [(broker, ConfigOrigin.dynamicBroker), (clusterDefault, .dynamicClusterDefault)] {
            for key in values.keys.sorted() {
                guard let definition = ConfigDefinitions.byName[key] else {
                    throw ConfigError(kind: .unknownKey, key: key, value: values[key], origin: origin, message: "is not a broker configuration")
                }
                guard definition.isDynamic else {
                    throw ConfigError(kind: .notDynamic, key: key, value: values[key], origin: origin,
                                      message: "cannot be updated dynamically; set it in the properties file and restart")
                }
            }
        }
        var layers = self.layers
        layers.dynamicBroker = broker
        layers.dynamicClusterDefault = clusterDefault
        return try BrokerConfig(layers: layers)
    }

    /// The effective value of `key` as Kafka prints it, or nil (unknown key, or null).
    public func value(of key: String) -> String? {
        guard let definition = ConfigDefinitions.byName[key], let raw = layers.effective(key) else { return nil }
        switch definition.parse(raw.value) {
        case .success(let v): return v.canonicalString
        case .failure: return raw.value
        }
    }

    /// Where the effective value of `key` came from.
    public func origin(of key: String) -> ConfigOrigin? { layers.effective(key)?.origin }

    static func didYouMean(_ key: String) -> String {
        ConfigDefinitions.closestKey(to: key).map { "; did you mean '\($0)'?" } ?? ""
    }

    /// Resolves and checks every value. Throws the first problem found.
    public init(layers: ConfigLayers) throws(ConfigError) {
        self.layers = layers
        let r = ConfigReader(layers: layers)
        // Every set value must parse, even for keys nothing below reads.
        for key in Set(layers.staticValues.keys).union(layers.dynamicBroker.keys).union(layers.dynamicClusterDefault.keys).sorted() {
            _ = try r.value(key)
        }

        // Identity and roles
        let nodeIDSetting = try r.int("node.id")
        if let brokerID = try r.optionalInt("broker.id") {
            if layers.isSet("node.id"), brokerID != nodeIDSetting {
                throw r.inconsistency("broker.id", "must equal node.id (\(nodeIDSetting)); set only node.id")
            }
            nodeID = Int32(brokerID)
        } else {
            nodeID = Int32(nodeIDSetting)
        }
        processRoles = Set(try r.list("process.roles").compactMap(ProcessRole.init(rawValue:)))
        clusterID = try r.optionalString("cluster.id")

        // Storage
        let dirs: [String]
        let dirsKey: String
        if let logDirsValue = try r.optionalString("log.dirs") {
            (dirs, dirsKey) = (ConfigDefinition.splitList(logDirsValue), "log.dirs")
        } else {
            (dirs, dirsKey) = (ConfigDefinition.splitList(try r.string("log.dir")), "log.dir")
        }
        guard !dirs.isEmpty else { throw r.inconsistency(dirsKey, "at least one log directory must be defined via log.dirs or log.dir") }
        if let duplicate = dirs.first(where: { d in dirs.filter { $0 == d }.count > 1 }) {
            throw r.inconsistency(dirsKey, "log directory \(duplicate) is listed more than once")
        }
        logDirs = dirs
        let metadataDir = try r.optionalString("metadata.log.dir")
        metadataLogDir = metadataDir ?? dirs[0]
        metadataLogSegmentBytes = try r.int("metadata.log.segment.bytes")
        metadataMaxRetentionBytes = try r.int("metadata.max.retention.bytes")
        metadataMaxRetentionMs = try r.int("metadata.max.retention.ms")
        metadataLogMaxRecordBytesBetweenSnapshots = try r.int("metadata.log.max.record.bytes.between.snapshots")
        metadataLogMaxSnapshotIntervalMs = try r.int("metadata.log.max.snapshot.interval.ms")
        metadataMaxIdleIntervalMs = try r.int("metadata.max.idle.interval.ms")
        numRecoveryThreadsPerDataDir = try r.int("num.recovery.threads.per.data.dir")
        backgroundThreads = try r.int("background.threads")

        // Topic defaults
        numPartitions = try r.int("num.partitions")
        defaultReplicationFactor = try r.int("default.replication.factor")
        minInsyncReplicas = try r.int("min.insync.replicas")
        autoCreateTopicsEnable = try r.bool("auto.create.topics.enable")
        deleteTopicEnable = try r.bool("delete.topic.enable")
        uncleanLeaderElectionEnable = try r.bool("unclean.leader.election.enable")
        autoLeaderRebalanceEnable = try r.bool("auto.leader.rebalance.enable")
        leaderImbalanceCheckIntervalSeconds = try r.int("leader.imbalance.check.interval.seconds")
        leaderImbalancePerBrokerPercentage = try r.int("leader.imbalance.per.broker.percentage")

        // Logs
        logSegmentBytes = try r.int("log.segment.bytes")
        let rollHours = try r.int("log.roll.hours")
        logRollMs = try r.optionalInt("log.roll.ms") ?? rollHours * 3_600_000
        let rollJitterHours = try r.int("log.roll.jitter.hours")
        logRollJitterMs = try r.optionalInt("log.roll.jitter.ms") ?? rollJitterHours * 3_600_000
        let retentionKey: String
        let retention: Int
        if let ms = try r.optionalInt("log.retention.ms") {
            (retentionKey, retention) = ("log.retention.ms", ms)
        } else if let minutes = try r.optionalInt("log.retention.minutes") {
            (retentionKey, retention) = ("log.retention.minutes", minutes * 60_000)
        } else {
            (retentionKey, retention) = ("log.retention.hours", try r.int("log.retention.hours") * 3_600_000)
        }
        guard retention != 0 else { throw r.inconsistency(retentionKey, "log retention must be unlimited (-1) or at least 1 ms") }
        logRetentionMs = retention < 0 ? -1 : retention
        logRetentionBytes = try r.int("log.retention.bytes")
        logRetentionCheckIntervalMs = try r.int("log.retention.check.interval.ms")
        logCleanupPolicy = CleanupPolicy(configList: try r.list("log.cleanup.policy"))
        logCleanerEnable = try r.bool("log.cleaner.enable")
        logCleanerThreads = try r.int("log.cleaner.threads")
        logCleanerBackoffMs = try r.int("log.cleaner.backoff.ms")
        logCleanerDeleteRetentionMs = try r.int("log.cleaner.delete.retention.ms")
        logCleanerMinCompactionLagMs = try r.int("log.cleaner.min.compaction.lag.ms")
        logCleanerMaxCompactionLagMs = try r.int("log.cleaner.max.compaction.lag.ms")
        logCleanerMinCleanableRatio = try r.double("log.cleaner.min.cleanable.ratio")
        logSegmentDeleteDelayMs = try r.int("log.segment.delete.delay.ms")
        logIndexSizeMaxBytes = try r.int("log.index.size.max.bytes")
        logIndexIntervalBytes = try r.int("log.index.interval.bytes")
        logFlushIntervalMessages = try r.int("log.flush.interval.messages")
        logFlushSchedulerIntervalMs = try r.int("log.flush.scheduler.interval.ms")
        let flushIntervalMs = try r.optionalInt("log.flush.interval.ms")
        logFlushIntervalMs = flushIntervalMs ?? logFlushSchedulerIntervalMs
        logFlushOffsetCheckpointIntervalMs = try r.int("log.flush.offset.checkpoint.interval.ms")
        logFlushStartOffsetCheckpointIntervalMs = try r.int("log.flush.start.offset.checkpoint.interval.ms")
        logPreallocate = try r.bool("log.preallocate")
        let timestampType = try r.string("log.message.timestamp.type")
        logMessageTimestampType = TimestampType(configValue: timestampType) ?? .createTime
        logMessageTimestampDifferenceMaxMs = try r.int("log.message.timestamp.difference.max.ms")
        logMessageTimestampBeforeMaxMs = try r.int("log.message.timestamp.before.max.ms")
        logMessageTimestampAfterMaxMs = try r.int("log.message.timestamp.after.max.ms")
        logLocalRetentionMs = try r.int("log.local.retention.ms")
        logLocalRetentionBytes = try r.int("log.local.retention.bytes")
        messageMaxBytes = try r.int("message.max.bytes")
        let compression = try r.string("compression.type")
        compressionType = BrokerCompressionType(rawValue: compression) ?? .producer

        // Internal topics
        offsetsTopicReplicationFactor = try r.int("offsets.topic.replication.factor")
        offsetsTopicNumPartitions = try r.int("offsets.topic.num.partitions")
        offsetsTopicSegmentBytes = try r.int("offsets.topic.segment.bytes")
        offsetsRetentionMinutes = try r.int("offsets.retention.minutes")
        offsetsRetentionCheckIntervalMs = try r.int("offsets.retention.check.interval.ms")
        offsetsCommitTimeoutMs = try r.int("offsets.commit.timeout.ms")
        offsetMetadataMaxBytes = try r.int("offset.metadata.max.bytes")
        transactionStateLogReplicationFactor = try r.int("transaction.state.log.replication.factor")
        transactionStateLogNumPartitions = try r.int("transaction.state.log.num.partitions")
        transactionStateLogMinIsr = try r.int("transaction.state.log.min.isr")
        transactionStateLogSegmentBytes = try r.int("transaction.state.log.segment.bytes")
        transactionMaxTimeoutMs = try r.int("transaction.max.timeout.ms")
        transactionalIdExpirationMs = try r.int("transactional.id.expiration.ms")
        producerIdExpirationMs = try r.int("producer.id.expiration.ms")

        // Groups and fetch sessions
        groupInitialRebalanceDelayMs = try r.int("group.initial.rebalance.delay.ms")
        groupMinSessionTimeoutMs = try r.int("group.min.session.timeout.ms")
        groupMaxSessionTimeoutMs = try r.int("group.max.session.timeout.ms")
        groupMaxSize = try r.int("group.max.size")
        maxIncrementalFetchSessionCacheSlots = try r.int("max.incremental.fetch.session.cache.slots")
        fetchMaxBytes = try r.int("fetch.max.bytes")

        // Replication
        replicaFetchMaxBytes = try r.int("replica.fetch.max.bytes")
        replicaFetchResponseMaxBytes = try r.int("replica.fetch.response.max.bytes")
        replicaFetchMinBytes = try r.int("replica.fetch.min.bytes")
        replicaFetchWaitMaxMs = try r.int("replica.fetch.wait.max.ms")
        replicaFetchBackoffMs = try r.int("replica.fetch.backoff.ms")
        replicaLagTimeMaxMs = try r.int("replica.lag.time.max.ms")
        replicaSocketTimeoutMs = try r.int("replica.socket.timeout.ms")
        replicaHighWatermarkCheckpointIntervalMs = try r.int("replica.high.watermark.checkpoint.interval.ms")
        numReplicaFetchers = try r.int("num.replica.fetchers")
        guard replicaFetchWaitMaxMs <= replicaSocketTimeoutMs else {
            throw r.inconsistency("replica.fetch.wait.max.ms", "must be at most replica.socket.timeout.ms (\(replicaSocketTimeoutMs)) to prevent unnecessary socket timeouts")
        }
        guard replicaFetchWaitMaxMs <= replicaLagTimeMaxMs else {
            throw r.inconsistency("replica.fetch.wait.max.ms", "must be at most replica.lag.time.max.ms (\(replicaLagTimeMaxMs)) to prevent frequent changes in ISR")
        }

        // Network
        socketRequestMaxBytes = try r.int("socket.request.max.bytes")
        socketSendBufferBytes = try r.int("socket.send.buffer.bytes")
        socketReceiveBufferBytes = try r.int("socket.receive.buffer.bytes")
        socketListenBacklogSize = try r.int("socket.listen.backlog.size")
        queuedMaxRequests = try r.int("queued.max.requests")
        numNetworkThreads = try r.int("num.network.threads")
        numIoThreads = try r.int("num.io.threads")
        connectionsMaxIdleMs = try r.int("connections.max.idle.ms")
        maxConnections = try r.int("max.connections")
        maxConnectionsPerIp = try r.int("max.connections.per.ip")

        // Quorum timings
        quorumElectionTimeoutMs = try r.int("controller.quorum.election.timeout.ms")
        quorumFetchTimeoutMs = try r.int("controller.quorum.fetch.timeout.ms")
        quorumElectionBackoffMaxMs = try r.int("controller.quorum.election.backoff.max.ms")
        quorumRequestTimeoutMs = try r.int("controller.quorum.request.timeout.ms")
        quorumRetryBackoffMs = try r.int("controller.quorum.retry.backoff.ms")
        quorumAppendLingerMs = try r.int("controller.quorum.append.linger.ms")
        brokerSessionTimeoutMs = try r.int("broker.session.timeout.ms")
        brokerHeartbeatIntervalMs = try r.int("broker.heartbeat.interval.ms")
        initialBrokerRegistrationTimeoutMs = try r.int("initial.broker.registration.timeout.ms")
        if brokerHeartbeatIntervalMs * 2 > brokerSessionTimeoutMs {
            notes.append("broker.heartbeat.interval.ms (\(brokerHeartbeatIntervalMs) ms) should be at most half of broker.session.timeout.ms (\(brokerSessionTimeoutMs) ms), or brokers may lose their lease")
        }
        let metrics = try r.string("petrel.metrics.listener")
        if metrics.isEmpty {
            metricsListener = nil
        } else {
            do { metricsListener = try HostPort.parse(metrics) } catch { throw r.inconsistency("petrel.metrics.listener", error.reason) }
        }

        // Listeners and the quorum (BrokerConfig+Listeners.swift)
        let network = try Self.resolveNetwork(r, nodeID: nodeID, roles: processRoles)
        listeners = network.listeners
        advertisedListeners = network.advertised
        controllerListeners = network.controllerListeners
        controllerListenerNames = network.controllerListenerNames
        listenerSecurityProtocolMap = network.protocolMap
        interBrokerListenerName = network.interBrokerListenerName
        quorumVoters = network.voters
        if let metricsListener, metricsListener.port != 0,
           let clash = listeners.first(where: { $0.port == metricsListener.port && ($0.host == metricsListener.host || $0.isWildcard || metricsListener.isWildcard) }) {
            throw r.inconsistency("petrel.metrics.listener", "port \(metricsListener.port) is already used by listener \(clash)")
        }
    }
}
