import KafkaProtocol
import Logging
import Synchronization

/// A topic to create, as CreateTopics, auto-creation and the admin tools describe it.
struct TopicCreation: Sendable {
    var name: String
    var partitions: Int32  // -1: num.partitions
    var replicationFactor: Int16  // -1: default.replication.factor
    var assignments: [Int32: [Int32]]  // manual replica assignment, partition → brokers
    var configs: [String: String]
}

struct TopicOperationResult: Sendable {
    var name: String
    var topicId: KafkaUUID = .zero
    var error: KafkaErrorCode?
    var message: String?
    var partitions: Int32 = -1
    var replicationFactor: Int16 = -1
}

/// Where metadata records are made durable before they are applied. Single node: a local
/// `__cluster_metadata-0` log; with the Raft quorum (issue 4), the replicated metadata log.
protocol MetadataLogStore: Sendable {
    func append(_ records: [MetadataRecord]) throws -> Int64
    func replay() throws -> [MetadataRecord]
    /// True when the store itself applies committed records (through `applyCommitted`), as the
    /// Raft quorum does on every node; false when `commit` applies them after the append.
    var appliesCommittedRecords: Bool { get }
}

extension MetadataLogStore {
    var appliesCommittedRecords: Bool { false }
}

/// The metadata image every handler reads, and the controller operations that change it.
/// Operations are serialised (as Kafka's controller is single-threaded); reads take a snapshot
/// (copy-on-write) and never wait for an operation's disk write.
final class MetadataManager: Sendable {
    private let image = Mutex(MetadataImage())
    let controllerLock = Mutex(())
    private let storeBox = Mutex<MetadataLogStore?>(nil)
    let settings: ControllerSettings
    /// Controller-only, not replicated: when each broker last sent a heartbeat (monotonic ms).
    let brokerContacts = Mutex<[Int32: Int64]>([:])
    var store: MetadataLogStore { storeBox.withLock { $0! } }
    private let onChange: @Sendable (MetadataImage) -> Void

    struct ControllerSettings: Sendable {
        var nodeId: Int32
        var brokerSessionTimeoutMs: Int64 = 9000
        var defaultPartitions: Int32
        var defaultReplicationFactor: Int16
        var validateTopicConfigs: @Sendable ([String: String]) -> (KafkaErrorCode, String)?
    }

    init(store: MetadataLogStore?, settings: ControllerSettings, onChange: @escaping @Sendable (MetadataImage) -> Void) {
        self.storeBox.withLock { $0 = store }
        self.settings = settings
        self.onChange = onChange
    }

    func current() -> MetadataImage { image.withLock { $0 } }

    /// Replays the metadata log into the image (at startup).
    func load(logger: Logger) throws {
        let records = try store.replay()
        let loaded = image.withLock { img -> MetadataImage in
            for record in records { img.apply(record) }
            return img
        }
        logger.info("metadata loaded: \(records.count) records, \(loaded.topics.count) topics")
        onChange(loaded)
    }

    /// The store, when it is made after the manager (the quorum needs the manager to apply).
    func setStore(_ store: MetadataLogStore) { storeBox.withLock { $0 = store } }

    /// Appends records durably, then applies them and tells the broker. Through the quorum this
    /// returns once the records are committed and applied (and throws NotControllerError on a
    /// node that is not the active controller).
    func commit(_ records: [MetadataRecord]) throws {
        guard !records.isEmpty else { return }
        let store = self.store
        let offset = try store.append(records)
        if store.appliesCommittedRecords { return }
        applyCommitted(records, offset: offset)
    }

    /// Replaces the image with one loaded from a metadata snapshot and tells the broker (which
    /// compares it with what it runs, as after any change).
    func installSnapshotImage(_ snapshot: MetadataImage) {
        image.withLock { $0 = snapshot }
        onChange(snapshot)
    }

    /// Applies committed records to the image and tells the broker (every node, in log order).
    func applyCommitted(_ records: [MetadataRecord], offset: Int64) {
        let updated = image.withLock { img -> MetadataImage in
            for record in records { img.apply(record) }
            img.offset = offset
            return img
        }
        onChange(updated)
    }

    func registerBroker(id: Int32, endpoints: [ListenerEndpoint], logger: Logger) throws {
        try controllerLock.withLock { _ in
            let current = current()
            if let existing = current.brokers[id], existing.endpoints == endpoints, !existing.fenced { return }
            var record = RegisterBrokerRecord()
            record.brokerId = id
            record.incarnationId = KafkaUUID.random()
            record.endPoints = endpoints.map { .init(name: $0.name, host: $0.host, port: UInt16(clamping: $0.port), securityProtocol: 0) }
            record.fenced = false
            record.rack = nil
            try commit([.registerBroker(record)])
        }
    }

    /// In a cluster: sends topic creations to the active controller when this node is not it
    /// (auto-creation, `__consumer_offsets`); nil when this node should create them itself.
    let createTopicsForwarder = Mutex<(@Sendable ([TopicCreation], Bool) -> [TopicOperationResult]?)?>(nil)

    func createTopics(_ topics: [TopicCreation], validateOnly: Bool, logger: Logger) -> [TopicOperationResult] {
        if let forward = createTopicsForwarder.withLock({ $0 }), let results = forward(topics, validateOnly) { return results }
        return controllerLock.withLock { _ in
            var results = [TopicOperationResult]()
            var seen = Set<String>()
            for request in topics {
                var result = TopicOperationResult(name: request.name)
                let current = current()
                if !seen.insert(request.name).inserted {
                    result.error = .invalidRequest
                    result.message = "topic \(request.name) appears more than once in the request"
                } else if let why = TopicNames.validate(request.name) {
                    result.error = .invalidTopicException
                    result.message = why
                } else if current.topics[request.name] != nil {
                    result.error = .topicAlreadyExists
                    result.message = "Topic '\(request.name)' already exists."
                } else if let (code, message) = settings.validateTopicConfigs(request.configs) {
                    result.error = code
                    result.message = message
                } else {
                    let live = current.brokers.values.filter { !$0.fenced }.map(\.id).sorted()
                    let brokers = live.isEmpty ? [settings.nodeId] : live
                    let partitions = request.partitions == -1 ? settings.defaultPartitions : request.partitions
                    let rf = request.replicationFactor == -1 ? settings.defaultReplicationFactor : request.replicationFactor
                    if !request.assignments.isEmpty && (request.partitions != -1 || request.replicationFactor != -1) {
                        result.error = .invalidRequest
                        result.message = "both manual replica assignments and numPartitions/replicationFactor were given"
                    } else if request.assignments.isEmpty && partitions <= 0 {
                        result.error = .invalidPartitions
                        result.message = "Number of partitions must be larger than 0."
                    } else if partitions > Self.maxPartitionsPerTopic || request.assignments.count > Int(Self.maxPartitionsPerTopic) {
                        result.error = .invalidPartitions
                        result.message = "Number of partitions \(max(Int(partitions), request.assignments.count)) exceeds this broker's limit of \(Self.maxPartitionsPerTopic) per topic."
                    } else if request.assignments.isEmpty && (rf <= 0 || Int(rf) > brokers.count) {
                        result.error = .invalidReplicationFactor
                        result.message = "Replication factor: \(rf) larger than available brokers: \(brokers.count)."
                    } else {
                        let assignment = request.assignments.isEmpty
                            ? Self.assignReplicas(partitions: partitions, startAt: 0, replicationFactor: Int(rf), brokers: brokers, seed: request.name)
                            : request.assignments
                        if let bad = assignment.values.first(where: { Set($0).count != $0.count || $0.isEmpty || !$0.allSatisfy(brokers.contains) }) {
                            result.error = .invalidReplicaAssignment
                            result.message = "replica assignment \(bad) names unknown or repeated brokers"
                        } else if Set(assignment.keys) != Set(0..<Int32(assignment.count)) {
                            result.error = .invalidReplicaAssignment
                            result.message = "replica assignments must cover partitions 0..<\(assignment.count)"
                        } else {
                            result.topicId = KafkaUUID.random()
                            result.partitions = Int32(assignment.count)
                            result.replicationFactor = Int16(assignment[0]?.count ?? 0)
                            if !validateOnly {
                                var records: [MetadataRecord] = [.topic(TopicRecord(name: request.name, topicId: result.topicId))]
                                for (name, value) in request.configs.sorted(by: { $0.key < $1.key }) {
                                    records.append(.config(ConfigRecord(resourceType: ConfigResourceType.topic.rawValue, resourceName: request.name, name: name, value: value)))
                                }
                                for p in assignment.keys.sorted() {
                                    let replicas = assignment[p]!
                                    records.append(.partition(PartitionRecord(
                                        partitionId: p, topicId: result.topicId, replicas: replicas, isr: replicas,
                                        leader: replicas[0], leaderEpoch: 0, partitionEpoch: 0)))
                                }
                                do {
                                    try commit(records)
                                    logger.info("created topic \(request.name) with \(assignment.count) partitions, replication factor \(result.replicationFactor), id \(result.topicId)")
                                } catch {
                                    (result.error, result.message) = Self.failure(error)
                                }
                            }
                        }
                    }
                }
                results.append(result)
            }
            return results
        }
    }

    func deleteTopics(names: [String], logger: Logger) -> [TopicOperationResult] {
        controllerLock.withLock { _ in
            names.map { name in
                var result = TopicOperationResult(name: name)
                guard let topic = current().topics[name] else {
                    result.error = .unknownTopicOrPartition
                    result.message = "This server does not host this topic-partition."
                    return result
                }
                result.topicId = topic.id
                do {
                    try commit([.removeTopic(RemoveTopicRecord(topicId: topic.id))])
                    logger.info("deleted topic \(name) (id \(topic.id))")
                } catch {
                    (result.error, result.message) = Self.failure(error)
                }
                return result
            }
        }
    }

    /// Grows a topic to `count` partitions (CreatePartitions).
    func createPartitions(topic name: String, count: Int32, assignments: [[Int32]]?, validateOnly: Bool, logger: Logger) -> (KafkaErrorCode, String?) {
        controllerLock.withLock { _ in
            let current = current()
            guard let topic = current.topics[name] else {
                return (.unknownTopicOrPartition, "Topic '\(name)' does not exist.")
            }
            let existing = Int32(topic.partitions.count)
            guard count > existing else {
                return (.invalidPartitions, "Topic currently has \(existing) partitions, \(count) would not be an increase.")
            }
            guard count <= Self.maxPartitionsPerTopic else {
                return (.invalidPartitions, "\(count) partitions exceeds this broker's limit of \(Self.maxPartitionsPerTopic) per topic.")
            }
            let rf = topic.partitions.first?.replicas.count ?? 1
            let live = current.brokers.values.filter { !$0.fenced }.map(\.id).sorted()
            let brokers = live.isEmpty ? [settings.nodeId] : live
            var newAssignments: [Int32: [Int32]] = [:]
            if let assignments {
                guard assignments.count == Int(count - existing) else {
                    return (.invalidReplicaAssignment, "\(assignments.count) assignments given for \(count - existing) new partitions")
                }
                for (i, replicas) in assignments.enumerated() {
                    guard !replicas.isEmpty, Set(replicas).count == replicas.count, replicas.allSatisfy(brokers.contains) else {
                        return (.invalidReplicaAssignment, "replica assignment \(replicas) names unknown or repeated brokers")
                    }
                    newAssignments[existing + Int32(i)] = replicas
                }
            } else {
                guard rf <= brokers.count else {
                    return (.invalidReplicationFactor, "Replication factor: \(rf) larger than available brokers: \(brokers.count).")
                }
                newAssignments = Self.assignReplicas(partitions: count - existing, startAt: existing, replicationFactor: rf, brokers: brokers, seed: name)
            }
            if validateOnly { return (.none, nil) }
            let records: [MetadataRecord] = newAssignments.keys.sorted().map { p in
                let replicas = newAssignments[p]!
                return .partition(PartitionRecord(partitionId: p, topicId: topic.id, replicas: replicas, isr: replicas, leader: replicas[0], leaderEpoch: 0, partitionEpoch: 0))
            }
            do {
                try commit(records)
                logger.info("topic \(name) grown from \(existing) to \(count) partitions")
                return (.none, nil)
            } catch {
                return Self.failure(error)
            }
        }
    }

    /// Sets (value) or removes (nil) configs of one resource.
    func alterConfigs(type: ConfigResourceType, name: String, changes: [(String, String?)], logger: Logger) throws {
        try controllerLock.withLock { _ in
            let records = changes.map { MetadataRecord.config(ConfigRecord(resourceType: type.rawValue, resourceName: name, name: $0.0, value: $0.1)) }
            try commit(records)
            logger.info("altered \(changes.count) config(s) of \(type) \(name)")
        }
    }

    /// Allocates a block of producer ids.
    func allocateProducerIds(count: Int64) throws -> Int64 {
        try controllerLock.withLock { _ in
            let first = current().nextProducerId
            try commit([.producerIds(ProducerIdsRecord(brokerId: settings.nodeId, brokerEpoch: 0, nextProducerId: first + count))])
            return first
        }
    }

    /// The error a failed metadata write is answered with.
    static func failure(_ error: Error) -> (KafkaErrorCode, String) {
        if let e = error as? NotControllerError { return (.notController, e.description) }
        return (.kafkaStorageError, "could not write the metadata log: \(error)")
    }

    /// A bound on partitions per topic, so that one request cannot make the broker allocate (and
    /// open files for) billions of partitions.
    static let maxPartitionsPerTopic: Int32 = 10_000

    /// Kafka's round-robin assignment with a per-topic starting broker, so that topics spread.
    static func assignReplicas(partitions: Int32, startAt: Int32, replicationFactor: Int, brokers: [Int32], seed: String) -> [Int32: [Int32]] {
        var hash: UInt32 = 2166136261
        for b in seed.utf8 { hash = (hash ^ UInt32(b)) &* 16777619 }
        let start = Int(hash % UInt32(max(brokers.count, 1)))
        var result = [Int32: [Int32]]()
        for i in 0..<Int(partitions) {
            let p = startAt + Int32(i)
            var replicas = [Int32]()
            for r in 0..<replicationFactor {
                replicas.append(brokers[(start + Int(p) + r) % brokers.count])
            }
            result[p] = replicas
        }
        return result
    }
}
