import KafkaProtocol
import NIOCore

/// Settings shared by every client (producer, consumer, admin). Kafka's names in the comments.
public struct ClientConfiguration: Sendable {
    /// `bootstrap.servers`: "host:port" entries; the first reachable one gives the cluster metadata.
    public var bootstrapServers: [String]
    /// `client.id`, sent in every request header.
    public var clientId: String = "petrel-swift"
    /// `request.timeout.ms`: how long to wait for any answer.
    public var requestTimeoutMs: Int = 30_000
    /// `socket.connection.setup.timeout.ms`.
    public var connectTimeoutMs: Int = 10_000
    /// `reconnect.backoff.ms` / `reconnect.backoff.max.ms`: exponential wait between connection
    /// attempts to one address.
    public var reconnectBackoffMs: Int = 50
    public var reconnectBackoffMaxMs: Int = 1_000
    /// `retry.backoff.ms` / `retry.backoff.max.ms`: wait before retrying a failed request.
    public var retryBackoffMs: Int = 100
    public var retryBackoffMaxMs: Int = 1_000
    /// `metadata.max.age.ms`: metadata older than this is refreshed before use.
    public var metadataMaxAgeMs: Int = 300_000
    /// The largest answer frame accepted (Fetch answers included).
    public var maxResponseSize: Int = 128 * 1024 * 1024
    /// Reported to brokers in ApiVersions.
    public var softwareVersion: String = "0.1.0"
    /// A hook run first in every new channel's initializer, e.g. to add a TLS handler
    /// (`NIOSSLClientHandler`) for the broker host name. Nil: plain TCP.
    public var transportConfigurator: (@Sendable (Channel, String) throws -> Void)?

    public init(bootstrapServers: [String]) {
        self.bootstrapServers = bootstrapServers
    }

    var retryPolicy: RetryPolicy { RetryPolicy(backoffMs: retryBackoffMs, backoffMaxMs: retryBackoffMaxMs) }
}

/// One broker of the cluster.
public struct BrokerInfo: Hashable, Sendable {
    public var nodeId: Int32
    public var host: String
    public var port: Int
    public var rack: String?
}

/// One partition as the metadata describes it.
public struct PartitionInfo: Hashable, Sendable {
    public var partition: Int32
    /// The leader's node id, -1 when there is none.
    public var leader: Int32
    public var leaderEpoch: Int32
    public var replicas: [Int32]
    public var isr: [Int32]
    public var offlineReplicas: [Int32]
    /// The partition's error, nil when none.
    public var error: KafkaErrorCode?
}

/// One topic as the metadata describes it.
public struct TopicInfo: Hashable, Sendable {
    public var name: String
    public var topicId: KafkaUUID
    public var isInternal: Bool
    /// Sorted by partition index.
    public var partitions: [PartitionInfo]
    public var error: KafkaErrorCode?
}

/// A snapshot of the cluster's metadata.
public struct ClusterMetadata: Sendable {
    public var clusterId: String?
    public var controllerId: Int32
    public var brokers: [Int32: BrokerInfo]
    public var topics: [String: TopicInfo]

    public init(clusterId: String? = nil, controllerId: Int32 = -1, brokers: [Int32: BrokerInfo] = [:], topics: [String: TopicInfo] = [:]) {
        self.clusterId = clusterId
        self.controllerId = controllerId
        self.brokers = brokers
        self.topics = topics
    }

    /// The leader of a partition, nil if unknown or leaderless.
    public func leader(for tp: TopicPartition) -> Int32? {
        guard let topic = topics[tp.topic], tp.partition >= 0, Int(tp.partition) < topic.partitions.count else { return nil }
        let p = topic.partitions[Int(tp.partition)]
        return p.leader >= 0 ? p.leader : nil
    }

    public func partitionCount(_ topic: String) -> Int? {
        guard let t = topics[topic], t.error == nil, !t.partitions.isEmpty else { return nil }
        return t.partitions.count
    }
}
