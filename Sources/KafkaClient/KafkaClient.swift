/// # KafkaClient: a pure-Swift Kafka client on SwiftNIO
///
/// Four public types, each built from a value-type configuration:
///
/// ```swift
/// let client = KafkaClient(ClientConfiguration(bootstrapServers: ["127.0.0.1:9092"]))
/// // TLS (security.protocol=SSL): config.tls = TLSConfiguration (swift-nio-ssl), or from
/// // librdkafka-style properties: try config.applying(properties: ["security.protocol": "SSL",
/// //     "ssl.ca.location": "ca.pem"]); config.tlsServerHostname overrides the name checked / sent as SNI.
///
/// // Producer: batched, idempotent by default (KIP-360 epoch bump on OUT_OF_ORDER_SEQUENCE_NUMBER /
/// // UNKNOWN_PRODUCER_ID), murmur2 partitioner (same placement as Java/librdkafka).
/// let producer = try KafkaProducer(client: client, configuration: ProducerConfiguration())
/// let meta = try await producer.send(ProducerRecord(topic: "t", key: "k", value: "v"))   // (partition, offset)
/// try await producer.produce(ProducerRecord(topic: "t", value: bytes))   // fire-and-forget; awaits only for buffer.memory
/// try await producer.flush()                                             // throws the first failed fire-and-forget
/// await producer.close()
///
/// // Consumer: manual assignment or a group (range / roundrobin / cooperative-sticky), AsyncSequence of records.
/// var cc = ConsumerConfiguration(groupId: "g")           // nil groupId: manual assignment only
/// cc.onPartitionsRevoked = { parts in ... }              // called before a partition is lost
/// let consumer = KafkaConsumer(client: client, configuration: cc)
/// try await consumer.subscribe(["t"])                    // or consumer.assign([TopicPartition(...)])
/// for try await record in consumer.records { ...; try await consumer.commit() }
/// try await consumer.seek(tp, to: .earliest); await consumer.pause([tp]); await consumer.resume([tp])
/// await consumer.close()                                 // commits (auto-commit), leaves the group
///
/// // Admin: topics, partitions, configs, groups, offsets, lag, delete records.
/// let admin = KafkaAdmin(client: client)
/// try await admin.createTopic("t", partitions: 3, replicationFactor: 1)   // createTopics, deleteTopics, createPartitions
/// let topics = try await admin.describeTopics(["t"])      // listTopics, describeCluster
/// try await admin.alterConfigs(.topic("t"), [.set("retention.ms", "60000")])   // describeConfigs
/// let lag = try await admin.consumerLag(group: "g")      // listGroups, describeGroups, deleteGroups,
///                                                         // committedOffsets, alterGroupOffsets (reset)
/// let ends = try await admin.listOffsets(parts, spec: .latest)   // deleteRecords([tp: offset])
///
/// await client.shutdown()
/// ```
///
/// `KafkaProducer` and `KafkaConsumer` are swift-service-lifecycle `Service`s (`run()` returns
/// on graceful shutdown after flushing / committing). Errors are ``KafkaClientError``; broker
/// errors carry the generated `KafkaErrorCode`. ``KafkaClient`` itself owns the connections
/// (one per broker, pipelined, with ApiVersions negotiation, timeouts and reconnect backoff) and
/// the metadata cache; `KafkaClient.send(_:to:)` sends any generated request to a broker.
import KafkaProtocol
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Where to send a request.
public enum BrokerTarget: Hashable, Sendable {
    /// Any broker (the least busy known connection, or a bootstrap server).
    case any
    /// A node id from the metadata.
    case node(Int32)
    /// The controller (for admin requests Kafka routes to it).
    case controller
}

/// The connections to the cluster and its metadata, shared by producers, consumers and admins.
public final class KafkaClient: Sendable {
    public let configuration: ClientConfiguration
    let core: ClientCore
    let logger: Logger

    public init(_ configuration: ClientConfiguration, logger: Logger = Logger(label: "petrel.kafka-client")) {
        self.configuration = configuration
        self.logger = logger
        self.core = ClientCore(configuration: configuration, logger: logger)
    }

    /// Convenience: a client for "host:port" bootstrap servers with default settings.
    public convenience init(bootstrapServers: [String]) {
        self.init(ClientConfiguration(bootstrapServers: bootstrapServers))
    }

    /// Sends any generated request to a broker and returns its answer. Does not retry and does
    /// not check error codes inside the answer.
    public func send<M: KafkaRequestMessage>(_ request: M, to target: BrokerTarget = .any) async throws(KafkaClientError) -> M.Response {
        let connection = try await core.connection(to: target)
        return try await connection.send(request)
    }

    /// The connection to a broker (opened and negotiated if needed).
    public func connection(to target: BrokerTarget) async throws(KafkaClientError) -> BrokerConnection {
        try await core.connection(to: target)
    }

    /// Fresh metadata for `topics` (nil: every topic). Topics asked for are remembered and kept
    /// in later refreshes.
    public func metadata(topics: [String]? = nil, allowAutoTopicCreation: Bool = false) async throws(KafkaClientError) -> ClusterMetadata {
        try await core.refreshMetadata(topics: topics, allowAutoCreate: allowAutoTopicCreation)
    }

    /// The cached metadata, without asking the cluster.
    public func cachedMetadata() async -> ClusterMetadata { await core.metadata }

    /// Closes every connection.
    public func shutdown() async { await core.shutdown() }

    /// Runs `operation` with retries on retriable errors (refreshing metadata when the error
    /// calls for it), waiting `retry.backoff.ms` (exponential) between attempts, until
    /// `deadlineMs` from now.
    func retrying<T: Sendable>(
        _ what: String, deadlineMs: Int? = nil, _ operation: () async throws(KafkaClientError) -> T
    ) async throws(KafkaClientError) -> T {
        let policy = configuration.retryPolicy
        let deadline = monotonicNanos() + UInt64(deadlineMs ?? configuration.requestTimeoutMs * 2) * 1_000_000
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch {
                attempt += 1
                guard policy.shouldRetry(error, attempt: attempt), monotonicNanos() < deadline, !Task.isCancelled else { throw error }
                logger.debug("\(what): \(error); retry \(attempt)")
                if error.invalidatesMetadata { await core.invalidate(error) }
                try? await Task.sleep(for: policy.backoff(attempt: attempt))
            }
        }
    }
}

/// Connection pool and metadata cache.
actor ClientCore {
    let configuration: ClientConfiguration
    let logger: Logger
    private(set) var metadata = ClusterMetadata()
    private var metadataFetchedAt: UInt64 = 0
    private var interestingTopics = Set<String>()
    private var connections: [Int32: BrokerConnection] = [:]
    private var connecting: [Int32: Task<BrokerConnection, any Error>] = [:]
    private var failures: [String: (count: Int, at: UInt64)] = [:]
    private var bootstrapIndex = 0
    private var isShutdown = false
    /// Made once from `configuration.tls` (loading certificates is not per connection).
    private var sslContext: NIOSSLContext?
    /// Connections that are not to a known node (bootstrap) use negative keys.
    private static let bootstrapKey: Int32 = -1

    init(configuration: ClientConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func metadataBrokerMissing(_ id: Int32) -> Bool { metadata.brokers[id] == nil }
    func addBroker(_ info: BrokerInfo) { metadata.brokers[info.nodeId] = info }

    func shutdown() {
        isShutdown = true
        for task in connecting.values { task.cancel() }
        for c in connections.values { c.close() }
        connections.removeAll()
        connecting.removeAll()
    }

    func connection(to target: BrokerTarget) async throws(KafkaClientError) -> BrokerConnection {
        guard !isShutdown else { throw .closed }
        switch target {
        case .any:
            if let live = connections.values.first(where: { $0.isActive }) { return live }
            if let node = metadata.brokers.keys.randomElement() {
                if let c = try? await connection(node: node) { return c }
            }
            return try await connection(node: Self.bootstrapKey)
        case let .node(id):
            return try await connection(node: id)
        case .controller:
            if metadata.controllerId < 0 || metadata.brokers[metadata.controllerId] == nil {
                _ = try await refreshMetadata(topics: [], allowAutoCreate: false)
            }
            let id = metadata.controllerId
            // A controller the metadata names but does not list (KRaft: not registered yet, or
            // fenced): any broker forwards admin requests to the active controller.
            guard id >= 0, metadata.brokers[id] != nil else { return try await connection(to: .any) }
            return try await connection(node: id)
        }
    }

    private func connection(node: Int32) async throws(KafkaClientError) -> BrokerConnection {
        if let c = connections[node], c.isActive { return c }
        connections[node] = nil
        if let task = connecting[node] {
            do { return try await task.value } catch { throw KafkaClientError.wrap(error) }
        }
        let addresses: [(String, Int)]
        if node == Self.bootstrapKey {
            var list = [(String, Int)]()
            for s in configuration.bootstrapServers {
                list.append(try parseHostPort(s))
            }
            guard !list.isEmpty else { throw .invalidConfiguration("bootstrap.servers is empty") }
            let start = bootstrapIndex % list.count
            bootstrapIndex += 1
            addresses = Array(list[start...] + list[..<start])
        } else {
            guard let broker = metadata.brokers[node] else {
                _ = try? await refreshMetadata(topics: nil, allowAutoCreate: false, onlyKnown: true)
                guard let broker = metadata.brokers[node] else {
                    throw .connectionFailed("node \(node) is not in the cluster metadata")
                }
                return try await connection(node: broker.nodeId)
            }
            addresses = [(broker.host, broker.port)]
        }
        let configuration = self.configuration
        if let tls = configuration.tls, sslContext == nil {
            do {
                sslContext = try NIOSSLContext(configuration: tls)
            } catch {
                throw .invalidConfiguration("TLS: \(error)")
            }
        }
        let sslContext = self.sslContext
        let waits = addresses.map { backoffRemaining(address: "\($0.0):\($0.1)") }
        let task = Task<BrokerConnection, any Error> {
            var lastError: KafkaClientError = .connectionFailed("no address")
            for (i, (host, port)) in addresses.enumerated() {
                if waits[i] > 0 { try await Task.sleep(nanoseconds: waits[i]) }
                do {
                    return try await BrokerConnection.connect(
                        host: host, port: port, nodeId: node, configuration: configuration, sslContext: sslContext)
                } catch {
                    lastError = KafkaClientError.wrap(error)
                    self.recordFailure(address: "\(host):\(port)")
                }
            }
            throw lastError
        }
        connecting[node] = task
        do {
            let c = try await task.value
            connecting[node] = nil
            failures["\(c.host):\(c.port)"] = nil
            if isShutdown {
                c.close()
                throw KafkaClientError.closed
            }
            connections[node] = c
            return c
        } catch {
            connecting[node] = nil
            throw KafkaClientError.wrap(error)
        }
    }

    private func recordFailure(address: String) {
        let count = (failures[address]?.count ?? 0) + 1
        failures[address] = (count, monotonicNanos())
        logger.debug("connection to \(address) failed (\(count) in a row)")
    }

    /// Nanoseconds to wait before the next attempt to `address` (exponential reconnect backoff).
    private func backoffRemaining(address: String) -> UInt64 {
        guard let f = failures[address] else { return 0 }
        let policy = RetryPolicy(backoffMs: configuration.reconnectBackoffMs, backoffMaxMs: configuration.reconnectBackoffMaxMs)
        let wait = policy.backoff(attempt: f.count, jitter: false)
        let waitNanos = UInt64(wait.components.seconds) * 1_000_000_000 + UInt64(wait.components.attoseconds / 1_000_000_000)
        let elapsed = monotonicNanos() - f.at
        return elapsed >= waitNanos ? 0 : waitNanos - elapsed
    }

    /// Marks metadata stale after an error that calls for it; closes a dead connection.
    func invalidate(_ error: KafkaClientError) {
        metadataFetchedAt = 0
        for (id, c) in connections where !c.isActive { connections[id] = nil }
    }

    /// Metadata for the topics, from the cache when fresh and complete.
    func metadata(for topics: [String]) async throws(KafkaClientError) -> ClusterMetadata {
        let fresh = monotonicNanos() - metadataFetchedAt < UInt64(configuration.metadataMaxAgeMs) * 1_000_000
        if fresh && metadataFetchedAt > 0 && topics.allSatisfy({ metadata.topics[$0] != nil }) { return metadata }
        return try await refreshMetadata(topics: topics, allowAutoCreate: false)
    }

    /// Asks the cluster. `topics` nil: all topics; `onlyKnown`: the remembered topics only.
    func refreshMetadata(topics: [String]?, allowAutoCreate: Bool, onlyKnown: Bool = false) async throws(KafkaClientError) -> ClusterMetadata {
        var request = MetadataRequest()
        request.allowAutoTopicCreation = allowAutoCreate
        if let topics {
            for t in topics { interestingTopics.insert(t) }
            let names = onlyKnown ? Array(interestingTopics) : Array(Set(topics).union(interestingTopics))
            request.topics = names.sorted().map { MetadataRequest.MetadataRequestTopic(name: $0) }
        } else if onlyKnown {
            request.topics = interestingTopics.sorted().map { MetadataRequest.MetadataRequestTopic(name: $0) }
        } else {
            request.topics = nil
        }
        let connection = try await connection(to: .any)
        var version = try connection.version(for: .metadata)
        // v0 has no "all topics" null; v1+ is the minimum anyway. Topic ids only from v10.
        if version < 4 && allowAutoCreate == false { version = max(version, 1) }
        let response: MetadataResponse
        do {
            response = try await connection.send(request, version: version)
        } catch {
            if error.invalidatesMetadata { connections[connection.nodeId] = nil }
            throw error
        }
        var updated = ClusterMetadata(clusterId: response.clusterId, controllerId: response.controllerId)
        for b in response.brokers {
            updated.brokers[b.nodeId] = BrokerInfo(nodeId: b.nodeId, host: b.host, port: Int(b.port), rack: b.rack)
        }
        // Keep topics not asked about this time.
        if request.topics != nil {
            for (name, info) in metadata.topics where !(request.topics ?? []).contains(where: { $0.name == name }) {
                updated.topics[name] = info
            }
        }
        for t in response.topics {
            guard let name = t.name else { continue }
            var partitions = t.partitions.map { p in
                PartitionInfo(
                    partition: p.partitionIndex, leader: p.leaderId, leaderEpoch: p.leaderEpoch, replicas: p.replicaNodes,
                    isr: p.isrNodes, offlineReplicas: p.offlineReplicas, error: KafkaErrorCode(rawValue: p.errorCode).flatMap { $0 == .none ? nil : $0 })
            }
            partitions.sort { $0.partition < $1.partition }
            // Hostile input: partition indexes must be 0..<n.
            if partitions.enumerated().contains(where: { Int($0.element.partition) != $0.offset }) {
                throw .protocolViolation("metadata for \(name) has partition indexes \(partitions.map(\.partition))")
            }
            let error = KafkaErrorCode(rawValue: t.errorCode).flatMap { $0 == .none ? nil : $0 }
            if error == .unknownTopicOrPartition {
                updated.topics[name] = nil
                continue
            }
            updated.topics[name] = TopicInfo(name: name, topicId: t.topicId, isInternal: t.isInternal, partitions: partitions, error: error)
        }
        metadata = updated
        metadataFetchedAt = monotonicNanos()
        // Re-key a bootstrap connection under its node id when the broker list says who it is.
        if connection.nodeId == Self.bootstrapKey,
           let node = updated.brokers.values.first(where: { $0.host == connection.host && $0.port == connection.port }),
           connections[node.nodeId] == nil {
            connections[node.nodeId] = connection
        }
        return updated
    }

    /// The leader of a partition, refreshing metadata once if it is not known.
    func leader(for tp: TopicPartition) async throws(KafkaClientError) -> Int32 {
        if let l = metadata.leader(for: tp) { return l }
        let m = try await refreshMetadata(topics: [tp.topic], allowAutoCreate: false)
        guard let t = m.topics[tp.topic] else { throw .unknownTopic(tp.topic) }
        guard Int(tp.partition) < t.partitions.count, tp.partition >= 0 else { throw .unknownPartition(tp) }
        guard let l = m.leader(for: tp) else { throw .broker(.leaderNotAvailable, "\(tp)") }
        return l
    }
}
