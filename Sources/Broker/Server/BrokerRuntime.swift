import KafkaProtocol
import Logging
import NIOCore

/// Everything a request handler may consult: identity, configuration, metadata, partitions.
final class BrokerRuntime: Sendable {
    let config: BrokerConfig
    let nodeId: Int32
    let clusterId: String
    let advertisedHost: String
    let advertisedPort: Int32
    /// Every advertised client listener (the first is `advertisedHost:advertisedPort`).
    let advertised: [ListenerEndpoint]
    let metrics: BrokerMetrics
    let metadata: MetadataManager
    let replicas: ReplicaManager
    let producerIds: ProducerIdAllocator
    /// The group coordinator, created on first use (Groups/GroupCoordinator.swift).
    let groups = GroupCoordinatorSlot()
    /// Set in a multi-node cluster (controller.quorum.voters lists other nodes).
    let cluster: ClusterNode?
    let logger: Logger
    /// The event loop replica fetchers and replication timers run on.
    let replicationLoop: EventLoop

    init(config: BrokerConfig, clusterId: String, advertised: [ListenerEndpoint], metrics: BrokerMetrics,
         metadata: MetadataManager, replicas: ReplicaManager, cluster: ClusterNode?, replicationLoop: EventLoop, logger: Logger) {
        self.replicationLoop = replicationLoop
        self.cluster = cluster
        self.config = config
        self.nodeId = config.nodeID
        self.clusterId = clusterId
        self.advertised = advertised
        self.advertisedHost = advertised.first?.host ?? "127.0.0.1"
        self.advertisedPort = advertised.first?.port ?? 9092
        self.metrics = metrics
        self.metadata = metadata
        self.replicas = replicas
        self.logger = logger
        self.producerIds = ProducerIdAllocator { [metadata, cluster] count in
            if let cluster, !cluster.isActiveController { return try cluster.allocateProducerIds(count: count) }
            return try metadata.allocateProducerIds(count: count)
        }
    }

    /// The active controller (single node: this broker). -1 while none is elected.
    var controllerId: Int32 {
        guard let cluster else { return nodeId }
        // Clients send admin requests to the node named here, so it must be one they can reach
        // (a listed broker): the active controller when it is registered and unfenced, else
        // this node, which forwards to the controller (as KRaft brokers name a live broker).
        let brokers = metadata.current().brokers
        if let id = cluster.activeControllerId, brokers[id]?.fenced == false { return id }
        if brokers[nodeId]?.fenced == false { return nodeId }
        return cluster.activeControllerId ?? -1
    }
    var autoCreateTopicsEnabled: Bool { config.autoCreateTopicsEnable }
    var deleteTopicEnabled: Bool { config.deleteTopicEnable }
    var logDirs: [String] { config.logDirs }

    /// Registered, unfenced brokers, with the addresses of `listener` (the one the client
    /// connected on); on a single node this broker is always listed.
    func aliveBrokers(_ image: MetadataImage, listener: String) -> [BrokerImage] {
        var brokers = image.brokers.values.filter { !$0.fenced }
        if cluster == nil, !brokers.contains(where: { $0.id == nodeId }) {
            brokers.append(BrokerImage(id: nodeId, host: advertisedHost, port: advertisedPort, rack: nil, fenced: false, endpoints: advertised))
        }
        return brokers.map { $0.through(listener) }.sorted { $0.id < $1.id }
    }

    /// The static configuration with the dynamic overrides kept in the metadata log.
    func effectiveConfig(_ image: MetadataImage) -> BrokerConfig {
        (try? config.applyingDynamic(broker: image.brokerConfigs[String(nodeId)] ?? [:], clusterDefault: image.brokerConfigs[""] ?? [:])) ?? config
    }

    /// Topic configs as CreateTopics (v5+) reports them for a new topic.
    func describeTopicConfigs(overrides: [String: String]) -> [(name: String, value: String?, readOnly: Bool, source: Int8, isSensitive: Bool)] {
        TopicConfigDefinitions.effectiveTopicConfig(overrides: overrides, broker: config, includeSynonyms: false, includeDocumentation: false)
            .map { ($0.name, $0.value, $0.isReadOnly, $0.source.rawValue, $0.isSensitive) }
    }
}
