import Foundation
import KafkaProtocol
import LogStorage
import Logging
import NIOCore
import NIOPosix
import MetadataQuorum
import Synchronization

/// A running single-node Petrel broker: storage, metadata, the Kafka listener and /metrics.
public final class PetrelBroker: Sendable {
    public let config: BrokerConfig
    public let kafkaPort: Int
    public let metricsPort: Int?
    private let group: MultiThreadedEventLoopGroup
    private let servers: [KafkaServer]
    private let metricsServer: MetricsHTTPServer?
    private let logs: LogManager
    private let runtime: BrokerRuntime
    private let maintenance: RepeatedTask
    private let controllerServer: KafkaServer?
    private let clusterGroup: MultiThreadedEventLoopGroup
    private let applyGroup: MultiThreadedEventLoopGroup
    private let shutDown = Atomic<Bool>(false)
    private let logger: Logger

    /// Starts everything; returns once the Kafka listener accepts connections.
    public static func start(config: BrokerConfig, logger: Logger) async throws -> PetrelBroker {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, min(config.numNetworkThreads, System.coreCount)))
        let metrics = BrokerMetrics()
        let clusterId = try ClusterIdentity.load(config: config, logger: logger)
        let baseLogConfig = Self.logConfig(TopicLogSettings(broker: config))
        let metadataLogConfig = LocalMetadataLog.logConfig(base: baseLogConfig)
        let logs = try LogManager(
            logDirectories: Array(Set(config.logDirs + [config.metadataLogDir])).sorted(), defaultConfig: baseLogConfig,
            configFor: { tp in tp == LocalMetadataLog.topicPartition ? metadataLogConfig : nil }, logger: logger)
        let metadataPartitionLog = try logs.getOrCreateLog(LocalMetadataLog.topicPartition, config: metadataLogConfig)
        let clustered = !config.isSingleNodeQuorum

        let replicas = ReplicaManager(
            nodeId: config.nodeID, logs: logs, metrics: metrics, logger: logger,
            settingsFor: { overrides in
                let s = TopicLogSettings(overrides: overrides, broker: config)
                return PartitionSettings(
                    minInsyncReplicas: s.minInsyncReplicas, logAppendTime: s.timestampType == .logAppendTime,
                    timestampBeforeMaxMs: Int64(s.timestampBeforeMaxMs), timestampAfterMaxMs: Int64(s.timestampAfterMaxMs),
                    replicaLagTimeMaxMs: Int64(config.replicaLagTimeMaxMs))
            },
            logConfigFor: { overrides in Self.logConfig(TopicLogSettings(overrides: overrides, broker: config)) })
        let metadata = MetadataManager(
            store: clustered ? nil : LocalMetadataLog(log: metadataPartitionLog),
            settings: .init(
                nodeId: config.nodeID, brokerSessionTimeoutMs: Int64(config.brokerSessionTimeoutMs),
                defaultPartitions: Int32(config.numPartitions),
                defaultReplicationFactor: Int16(config.defaultReplicationFactor),
                validateTopicConfigs: { configs in
                    do {
                        _ = try TopicConfigDefinitions.validate(configs, broker: config)
                        return nil
                    } catch let error as TopicConfigError {
                        return (.invalidConfig, error.message)
                    } catch {
                        return (.invalidConfig, "\(error)")
                    }
                }),
            onChange: { image in replicas.apply(image) })

        var cluster: ClusterNode?
        var controllerServer: KafkaServer?
        let clusterGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let applyGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let placeholder = RuntimeBox()
        let router = RequestRouter(brokerProvider: placeholder, metrics: metrics)
        if clustered {
            guard config.isBroker && config.isController else {
                throw BrokerStartError("process.roles=\(config.processRoles.map(\.rawValue).sorted().joined(separator: ",")) with controller.quorum.voters=\(config.quorumVoters): Petrel cluster nodes run both roles; set process.roles=broker,controller")
            }
            guard config.quorumVoters.contains(where: { $0.id == config.nodeID }) else {
                throw BrokerStartError("node.id=\(config.nodeID) is not one of controller.quorum.voters (\(config.quorumVoters)); add it as \(config.nodeID)@host:port")
            }
            let stateFile = metadataPartitionLog.directory + "/quorum-state"
            if !FileManager.default.fileExists(atPath: stateFile) && metadataPartitionLog.logEndOffset > 0 {
                throw BrokerStartError("\(metadataPartitionLog.directory) holds a single-node metadata log, but controller.quorum.voters makes this node part of a cluster; start the cluster with empty log dirs (or remove \(metadataPartitionLog.directory))")
            }
            var raft = RaftConfig(nodeId: config.nodeID, voters: config.quorumVoters.map(\.id))
            raft.electionTimeoutMs = Int64(config.quorumElectionTimeoutMs)
            raft.fetchTimeoutMs = Int64(config.quorumFetchTimeoutMs)
            raft.electionJitterMs = Int64(max(1, min(config.quorumElectionBackoffMaxMs, config.quorumElectionTimeoutMs)))
            raft.randomSeed = UInt64.random(in: 0...UInt64.max)
            // Followers poll the leader this often when idle: a metadata commit waits at most
            // about one interval (controller.quorum.append.linger.ms is the closest Kafka key).
            raft.fetchIntervalMs = Int64(max(10, min(config.quorumAppendLingerMs * 2, 100)))
            let peers = PeerDirectory(nodeId: config.nodeID, eventLoopGroup: clusterGroup, dataGroup: group)
            let driver = try QuorumDriver(
                nodeId: config.nodeID, voters: config.quorumVoters.map { .init(id: $0.id, host: $0.host, port: $0.port) },
                clusterId: clusterId, config: raft, log: metadataPartitionLog, stateFile: stateFile, loop: clusterGroup.next(),
                applyLoop: applyGroup.next(),
                peers: peers, requestTimeoutMs: config.quorumRequestTimeoutMs, logger: logger,
                snapshotBytes: config.metadataLogMaxRecordBytesBetweenSnapshots,
                snapshotIntervalMs: config.metadataLogMaxSnapshotIntervalMs,
                currentImage: { metadata.current() },
                installImage: { image, fromLeader in
                    metadata.installSnapshotImage(image)
                    if fromLeader { replicas.deleteStrayLogs(image) }
                },
                apply: { records, offset in metadata.applyCommitted(records, offset: offset) })
            metadata.setStore(QuorumMetadataStore(driver: driver))
            let node = ClusterNode(nodeId: config.nodeID, driver: driver, peers: peers, metadata: metadata, config: config,
                                   group: clusterGroup, logger: logger)
            metadata.createTopicsForwarder.withLock { $0 = { topics, validateOnly in node.forwardCreateTopics(topics, validateOnly: validateOnly) } }
            cluster = node
            guard let controllerListener = config.listeners.first(where: { config.controllerListenerNames.contains($0.name) }) else {
                throw BrokerStartError("no controller listener in listeners=\(config.listeners); add one named by controller.listener.names (\(config.controllerListenerNames.joined(separator: ","))), e.g. CONTROLLER://127.0.0.1:19092")
            }
            do {
                controllerServer = try await KafkaServer.start(
                    host: controllerListener.bindHost, port: controllerListener.port, listenerName: controllerListener.name, router: router,
                    maxFrameSize: config.socketRequestMaxBytes, group: clusterGroup, logger: logger)
            } catch {
                throw BrokerStartError("cannot listen on \(controllerListener): \(error). Is another node using the port? Change `listeners`.")
            }
        } else {
            try metadata.load(logger: logger)
        }

        let clientListeners = config.listeners.filter { !config.controllerListenerNames.contains($0.name) }
        guard !clientListeners.isEmpty else {
            throw BrokerStartError("no broker listener in listeners=\(config.listeners); add one such as PLAINTEXT://127.0.0.1:9092")
        }
        // Every client listener (e.g. INTERNAL for the compose network, EXTERNAL for the host);
        // clients get the addresses of the listener they connected on.
        var servers = [KafkaServer]()
        var advertisedEndpoints = [ListenerEndpoint]()
        for listener in clientListeners {
            let server: KafkaServer
            do {
                server = try await KafkaServer.start(
                    host: listener.bindHost, port: listener.port, listenerName: listener.name, router: router,
                    maxFrameSize: config.socketRequestMaxBytes, group: group, logger: logger)
            } catch {
                for s in servers { try? await s.close() }
                throw BrokerStartError("cannot listen on \(listener): \(error). Is another broker using the port? Change `listeners`.")
            }
            servers.append(server)
            // The bound port when the listener asks for port 0 (tests).
            let advertised = config.advertisedListeners.first { $0.name == listener.name } ?? listener
            advertisedEndpoints.append(ListenerEndpoint(
                name: listener.name, host: advertised.isWildcard ? "127.0.0.1" : advertised.host,
                port: Int32(advertised.port == 0 ? server.port : advertised.port)))
        }
        let server = servers[0]
        let advertisedHost = advertisedEndpoints[0].host, advertisedPort = Int(advertisedEndpoints[0].port)
        let runtime = BrokerRuntime(
            config: config, clusterId: clusterId, advertised: advertisedEndpoints,
            metrics: metrics, metadata: metadata, replicas: replicas, cluster: cluster, replicationLoop: group.next(), logger: logger)
        placeholder.set(runtime)
        if let cluster {
            let producerIds = runtime.producerIds
            cluster.afterRegistration.withLock {
                $0 = {
                    do { try producerIds.prefetch() } catch {
                        logger.debug("could not reserve producer ids ahead of time: \(error); InitProducerId will ask the controller")
                    }
                }
            }
        }
        replicas.attach(runtime: runtime)
        if let cluster {
            cluster.driver.start()
            cluster.start(endpoints: advertisedEndpoints)
        } else {
            try metadata.registerBroker(id: config.nodeID, endpoints: advertisedEndpoints, logger: logger)
        }

        var metricsServer: MetricsHTTPServer?
        if let m = config.metricsListener {
            metricsServer = try await MetricsHTTPServer.start(host: m.bindHost, port: m.port, metrics: metrics, group: group, logger: logger)
        }
        let interval = max(100, min(config.logRetentionCheckIntervalMs, config.logFlushSchedulerIntervalMs, 1000))
        let maintenance = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(Int64(interval)), delay: .milliseconds(Int64(interval))) { _ in
            replicas.runMaintenance()
        }
        logger.info("Petrel broker \(config.nodeID) ready: cluster \(clusterId), Kafka on \(advertisedHost):\(advertisedPort)")
        return PetrelBroker(config: config, kafkaPort: server.port, metricsPort: metricsServer?.localPort, group: group,
                            servers: servers, metricsServer: metricsServer, logs: logs, runtime: runtime,
                            maintenance: maintenance, controllerServer: controllerServer, clusterGroup: clusterGroup, applyGroup: applyGroup, logger: logger)
    }

    private init(config: BrokerConfig, kafkaPort: Int, metricsPort: Int?, group: MultiThreadedEventLoopGroup, servers: [KafkaServer],
                 metricsServer: MetricsHTTPServer?, logs: LogManager, runtime: BrokerRuntime, maintenance: RepeatedTask,
                 controllerServer: KafkaServer?, clusterGroup: MultiThreadedEventLoopGroup, applyGroup: MultiThreadedEventLoopGroup, logger: Logger) {
        self.applyGroup = applyGroup
        self.controllerServer = controllerServer
        self.clusterGroup = clusterGroup
        self.config = config
        self.kafkaPort = kafkaPort
        self.metricsPort = metricsPort
        self.group = group
        self.servers = servers
        self.metricsServer = metricsServer
        self.logs = logs
        self.runtime = runtime
        self.maintenance = maintenance
        self.logger = logger
    }

    /// The bound port of each client listener, by listener name.
    public var listenerPorts: [String: Int] {
        Dictionary(uniqueKeysWithValues: zip(config.listeners.filter { !config.controllerListenerNames.contains($0.name) }.map(\.name), servers.map(\.port)))
    }

    /// The runtime (tests inspect partitions through it).
    var runtimeAccess: BrokerRuntime { runtime }

    /// The broker's metrics (tests read counters from it).
    var metrics: BrokerMetrics { runtime.metrics }

    /// Stops accepting, flushes and checkpoints every log, writes the clean-shutdown marker.
    public func shutdown() async {
        guard !shutDown.exchange(true, ordering: .acquiringAndReleasing) else { return }
        logger.info("shutting down")
        maintenance.cancel()
        runtime.replicas.stopFetchers()
        await runtime.cluster?.shutdown()
        try? await controllerServer?.close()
        for server in servers { try? await server.close() }
        try? await metricsServer?.close()
        do {
            try logs.shutdown()
        } catch {
            logger.error("log shutdown failed: \(error); the next start will recover the logs")
        }
        try? await group.shutdownGracefully()
        try? await clusterGroup.shutdownGracefully()
        try? await applyGroup.shutdownGracefully()
        logger.info("shut down cleanly")
    }

    static func logConfig(_ s: TopicLogSettings) -> LogConfig {
        LogConfig(
            segmentBytes: s.segmentBytes, segmentMs: Int64(s.segmentMs), retentionMs: Int64(s.retentionMs),
            retentionBytes: Int64(s.retentionBytes), flushIntervalMessages: Int64(s.flushMessages),
            flushIntervalMs: Int64(s.flushMs), indexIntervalBytes: s.indexIntervalBytes, maxIndexBytes: s.segmentIndexBytes,
            fileDeleteDelayMs: Int64(s.fileDeleteDelayMs), maxMessageBytes: s.maxMessageBytes,
            cleanupPolicy: (s.cleanupPolicy.contains(.delete) ? LogStorage.CleanupPolicy.delete : [])
                .union(s.cleanupPolicy.contains(.compact) ? .compact : []),
            minCleanableDirtyRatio: s.minCleanableDirtyRatio, deleteRetentionMs: Int64(s.deleteRetentionMs),
            minCompactionLagMs: Int64(s.minCompactionLagMs), maxCompactionLagMs: Int64(s.maxCompactionLagMs))
    }
}

public struct BrokerStartError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Lets the router be created before the runtime (which needs the bound port).
final class RuntimeBox: Sendable {
    private let value = Mutex<BrokerRuntime?>(nil)
    func set(_ runtime: BrokerRuntime) { value.withLock { $0 = runtime } }
    func get() -> BrokerRuntime? { value.withLock { $0 } }
}

/// The cluster id kept in `meta.properties` of every log directory, as Kafka keeps it.
enum ClusterIdentity {
    /// Without `cluster.id`, the nodes of one cluster agree on an id derived from their voters
    /// (Kafka has `kafka-storage.sh format` write it; Petrel nodes start from empty dirs).
    static func derivedClusterId(_ config: BrokerConfig) -> String {
        let text = config.quorumVoters.map { "\($0.id)@\($0.host):\($0.port)" }.sorted().joined(separator: ",")
        var h1: UInt64 = 0xcbf29ce484222325, h2: UInt64 = 0x84222325cbf29ce4
        for b in text.utf8 {
            h1 = (h1 ^ UInt64(b)) &* 0x100000001b3
            h2 = (h2 ^ UInt64(b)) &* 0x100000001b3 &+ 0x9E3779B97F4A7C15
        }
        return KafkaUUID(high: h1, low: h2).description
    }

    static func load(config: BrokerConfig, logger: Logger) throws -> String {
        let dirs = Array(Set(config.logDirs + [config.metadataLogDir])).sorted()
        var found: String?
        for dir in dirs {
            let path = dir + "/meta.properties"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.hasPrefix("cluster.id=") {
                let id = String(line.dropFirst("cluster.id=".count))
                if let found, found != id {
                    throw BrokerStartError("log directories disagree on cluster.id (\(found) vs \(id) in \(path)): they belong to different clusters")
                }
                found = id
            }
        }
        if let configured = config.clusterID, let found, configured != found {
            throw BrokerStartError("cluster.id=\(configured) but the log directories belong to cluster \(found)")
        }
        let id = config.clusterID ?? found ?? (config.isSingleNodeQuorum ? KafkaUUID.random().description : Self.derivedClusterId(config))
        for dir in dirs {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let text = "#\n#Written by Petrel\nversion=1\ncluster.id=\(id)\nnode.id=\(config.nodeID)\n"
            let path = dir + "/meta.properties"
            if (try? String(contentsOfFile: path, encoding: .utf8)) != text {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            }
        }
        return id
    }
}
