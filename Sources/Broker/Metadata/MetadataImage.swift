import KafkaProtocol

/// Kafka's config resource types (DescribeConfigs / ConfigRecord).
enum ConfigResourceType: Int8, Sendable {
    case unknown = 0
    case topic = 2
    case broker = 4
    case brokerLogger = 8
    case clientMetrics = 16
    case group = 32
}

struct PartitionImage: Hashable, Sendable {
    var partition: Int32
    var replicas: [Int32]
    var isr: [Int32]
    var leader: Int32
    var leaderEpoch: Int32
    var partitionEpoch: Int32
}

struct TopicImage: Hashable, Sendable {
    var name: String
    var id: KafkaUUID
    var partitions: [PartitionImage]
    var configs: [String: String] = [:]

    var isInternal: Bool { name.hasPrefix("__") }
}

/// One advertised listener of a broker (RegisterBrokerRecord's endpoints).
struct ListenerEndpoint: Hashable, Sendable {
    var name: String
    var host: String
    var port: Int32
}

struct BrokerImage: Hashable, Sendable {
    var id: Int32
    var host: String
    var port: Int32
    var rack: String?
    var fenced: Bool
    var incarnationId: KafkaUUID = .zero
    var epoch: Int64 = 0
    /// Every advertised listener; `host`/`port` are the first.
    var endpoints: [ListenerEndpoint] = []

    /// The broker as seen through `listener` (the listener a client connected on): its endpoint
    /// of that name, or its first one when it has none of that name.
    func through(_ listener: String) -> BrokerImage {
        guard let e = endpoints.first(where: { $0.name.caseInsensitiveCompare(listener) == .orderedSame }) else { return self }
        var b = self
        b.host = e.host
        b.port = e.port
        return b
    }
}

/// The cluster's metadata as of one offset of the metadata log: every broker applies the same
/// records in the same order and arrives at the same image (KRaft's model).
struct MetadataImage: Sendable {
    var offset: Int64 = -1
    var topics: [String: TopicImage] = [:]
    var topicNames: [KafkaUUID: String] = [:]
    var brokers: [Int32: BrokerImage] = [:]
    var brokerConfigs: [String: [String: String]] = [:]
    var nextProducerId: Int64 = 0

    mutating func apply(_ record: MetadataRecord) {
        switch record {
        case .topic(let r):
            topics[r.name] = TopicImage(name: r.name, id: r.topicId, partitions: [])
            topicNames[r.topicId] = r.name
        case .partition(let r):
            guard let name = topicNames[r.topicId], var topic = topics[name] else { return }
            let image = PartitionImage(
                partition: r.partitionId, replicas: r.replicas, isr: r.isr, leader: r.leader,
                leaderEpoch: r.leaderEpoch, partitionEpoch: r.partitionEpoch)
            if let index = topic.partitions.firstIndex(where: { $0.partition == r.partitionId }) {
                topic.partitions[index] = image
            } else {
                topic.partitions.append(image)
                topic.partitions.sort { $0.partition < $1.partition }
            }
            topics[name] = topic
        case .partitionChange(let r):
            guard let name = topicNames[r.topicId], var topic = topics[name],
                  let index = topic.partitions.firstIndex(where: { $0.partition == r.partitionId }) else { return }
            var p = topic.partitions[index]
            if let isr = r.isr { p.isr = isr }
            if let replicas = r.replicas { p.replicas = replicas }
            if r.leader != -2 {
                p.leader = r.leader
                p.leaderEpoch += 1
            }
            p.partitionEpoch += 1
            topic.partitions[index] = p
            topics[name] = topic
        case .removeTopic(let r):
            if let name = topicNames.removeValue(forKey: r.topicId) { topics.removeValue(forKey: name) }
        case .config(let r):
            switch ConfigResourceType(rawValue: r.resourceType) {
            case .topic:
                guard var topic = topics[r.resourceName] else { return }
                if let value = r.value { topic.configs[r.name] = value } else { topic.configs.removeValue(forKey: r.name) }
                topics[r.resourceName] = topic
            case .broker:
                var configs = brokerConfigs[r.resourceName, default: [:]]
                if let value = r.value { configs[r.name] = value } else { configs.removeValue(forKey: r.name) }
                brokerConfigs[r.resourceName] = configs
            default:
                break
            }
        case .registerBroker(let r):
            let endpoint = r.endPoints.first
            brokers[r.brokerId] = BrokerImage(
                id: r.brokerId, host: endpoint?.host ?? "", port: Int32(endpoint?.port ?? 0), rack: r.rack, fenced: r.fenced,
                incarnationId: r.incarnationId, epoch: r.brokerEpoch,
                endpoints: r.endPoints.map { ListenerEndpoint(name: $0.name, host: $0.host, port: Int32($0.port)) })
        case .fenceBroker(let r):
            brokers[r.id]?.fenced = true
        case .unfenceBroker(let r):
            brokers[r.id]?.fenced = false
        case .producerIds(let r):
            nextProducerId = max(nextProducerId, r.nextProducerId)
        case .noOp, .other:
            break
        }
    }
}
