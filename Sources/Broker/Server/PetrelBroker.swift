import Foundation
import KafkaProtocol
import LogStorage
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A running single-node Petrel broker: storage, metadata, the Kafka listener and /metrics.
public final class PetrelBroker: Sendable {
    public let config: BrokerConfig
    public let kafkaPort: Int
    public let metricsPort: Int?
    private let group: MultiThreadedEventLoopGroup
    private let server: KafkaServer
    private let metricsServer: MetricsHTTPServer?
    private let logs: LogManager
    private let runtime: BrokerRuntime
    private let maintenance: RepeatedTask
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
        let metadataLog = LocalMetadataLog(log: try logs.getOrCreateLog(LocalMetadataLog.topicPartition, config: metadataLogConfig))

        let replicas = ReplicaManager(
            nodeId: config.nodeID, logs: logs, metrics: metrics, logger: logger,
            settingsFor: { overrides in
                let s = TopicLogSettings(overrides: overrides, broker: config)
                return PartitionSettings(
                    minInsyncReplicas: s.minInsyncReplicas, logAppendTime: s.timestampType == .logAppendTime,
                    timestampBeforeMaxMs: Int64(s.timestampBeforeMaxMs), timestampAfterMaxMs: Int64(s.timestampAfterMaxMs))
            },
            logConfigFor: { overrides in Self.logConfig(TopicLogSettings(overrides: overrides, broker: config)) })
        let metadata = MetadataManager(
            store: metadataLog,
            settings: .init(
                nodeId: config.nodeID, defaultPartitions: Int32(config.numPartitions),
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
        try metadata.load(logger: logger)

        guard let listener = config.listeners.first(where: { !config.controllerListenerNames.contains($0.name) }) else {
            throw BrokerStartError("no broker listener in listeners=\(config.listeners); add one such as PLAINTEXT://127.0.0.1:9092")
        }
        let advertised = config.advertisedListeners.first { $0.name == listener.name } ?? listener

        // The runtime needs the bound port when the listener asks for port 0 (tests).
        let placeholder = RuntimeBox()
        let router = RequestRouter(brokerProvider: placeholder, metrics: metrics)
        let server: KafkaServer
        do {
            server = try await KafkaServer.start(
                host: listener.bindHost, port: listener.port, listenerName: listener.name, router: router,
                maxFrameSize: config.socketRequestMaxBytes, group: group, logger: logger)
        } catch {
            throw BrokerStartError("cannot listen on \(listener): \(error). Is another broker using the port? Change `listeners`.")
        }
        let advertisedPort = advertised.port == 0 ? server.port : advertised.port
        let advertisedHost = advertised.isWildcard ? "127.0.0.1" : advertised.host
        let runtime = BrokerRuntime(
            config: config, clusterId: clusterId, advertisedHost: advertisedHost, advertisedPort: Int32(advertisedPort),
            metrics: metrics, metadata: metadata, replicas: replicas, logger: logger)
        placeholder.set(runtime)
        try metadata.registerBroker(id: config.nodeID, host: advertisedHost, port: advertisedPort, logger: logger)

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
                            server: server, metricsServer: metricsServer, logs: logs, runtime: runtime,
                            maintenance: maintenance, logger: logger)
    }

    private init(config: BrokerConfig, kafkaPort: Int, metricsPort: Int?, group: MultiThreadedEventLoopGroup, server: KafkaServer,
                 metricsServer: MetricsHTTPServer?, logs: LogManager, runtime: BrokerRuntime, maintenance: RepeatedTask, logger: Logger) {
        self.config = config
        self.kafkaPort = kafkaPort
        self.metricsPort = metricsPort
        self.group = group
        self.server = server
        self.metricsServer = metricsServer
        self.logs = logs
        self.runtime = runtime
        self.maintenance = maintenance
        self.logger = logger
    }

    /// The broker's metrics (tests read counters from it).
    var metrics: BrokerMetrics { runtime.metrics }

    /// Stops accepting, flushes and checkpoints every log, writes the clean-shutdown marker.
    public func shutdown() async {
        logger.info("shutting down")
        maintenance.cancel()
        try? await server.close()
        try? await metricsServer?.close()
        do {
            try logs.shutdown()
        } catch {
            logger.error("log shutdown failed: \(error); the next start will recover the logs")
        }
        try? await group.shutdownGracefully()
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
        let id = config.clusterID ?? found ?? KafkaUUID.random().description
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
