import KafkaProtocol
import LogStorage
import Logging
import MetadataQuorum
import NIOCore
import NIOPosix
import Synchronization

/// The metadata log of a multi-node cluster: proposals go through the Raft quorum; the call
/// returns once the records are committed by a majority and applied on this node.
final class QuorumMetadataStore: MetadataLogStore {
    let driver: QuorumDriver
    init(driver: QuorumDriver) { self.driver = driver }

    var appliesCommittedRecords: Bool { true }

    func append(_ records: [MetadataRecord]) throws -> Int64 {
        try driver.propose(records).wait()
    }

    func replay() throws -> [MetadataRecord] { [] }
}

/// This node's part in a multi-node cluster, beside the request handlers: the quorum member,
/// the broker's registration and heartbeats to the active controller, and (while this node is
/// the active controller) the controller's timers: fencing expired brokers and moving
/// leadership back to preferred replicas.
final class ClusterNode: Sendable {
    let nodeId: Int32
    let driver: QuorumDriver
    let peers: PeerDirectory
    private let metadata: MetadataManager
    private let config: BrokerConfig
    private let group: EventLoopGroup
    private let logger: Logger
    /// Runs controller operations (which wait for quorum commits) off the network threads.
    let controllerPool: NIOThreadPool
    /// This process's incarnation (BrokerRegistration): the image names it once the controller
    /// has registered this start of the broker.
    let incarnationId = KafkaUUID.random()
    private let state = Mutex(State())
    /// Run on the controller pool each time this broker (re-)registers.
    let afterRegistration = Mutex<(@Sendable () -> Void)?>(nil)

    private struct State {
        var brokerEpoch: Int64 = -1
        var registered = false
        var wasActiveController = false
        var lastRebalanceMs: Int64 = 0
        var timer: RepeatedTask?
        var endpoints: [ListenerEndpoint] = []
        var stopped = false
        var inFlight = false
        var lastHeartbeatMs: Int64 = 0
    }

    init(nodeId: Int32, driver: QuorumDriver, peers: PeerDirectory, metadata: MetadataManager, config: BrokerConfig,
         group: EventLoopGroup, logger: Logger) {
        self.nodeId = nodeId
        self.driver = driver
        self.peers = peers
        self.metadata = metadata
        self.config = config
        self.group = group
        self.logger = logger
        self.controllerPool = NIOThreadPool(numberOfThreads: 4)
        controllerPool.start()
    }

    var isActiveController: Bool { driver.status().isActiveController }
    var activeControllerId: Int32? { driver.status().leaderId }

    /// Starts the heartbeat loop (which registers first).
    func start(endpoints: [ListenerEndpoint]) {
        let task = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(Self.tickMs)) { [self] _ in
            tick()
        }
        state.withLock {
            $0.endpoints = endpoints
            $0.timer = task
        }
    }

    func shutdown() async {
        let task = state.withLock { s -> RepeatedTask? in
            s.stopped = true
            return s.timer
        }
        task?.cancel()
        await driver.shutdown()
        peers.closeAll()
        try? await controllerPool.shutdownGracefully()
    }

    /// How often the controller checks its brokers (the broker heartbeats at its own interval).
    static let tickMs: Int64 = 200

    /// One round: controller duties if active, then this broker's registration or heartbeat.
    private func tick() {
        let go = state.withLock { s -> Bool in
            guard !s.stopped, !s.inFlight else { return false }
            s.inFlight = true
            return true
        }
        guard go else { return }
        controllerPool.submit { [self] _ in
            defer { state.withLock { $0.inFlight = false } }
            controllerDuties()
            brokerDuties()
        }
    }

    private func controllerDuties() {
        let active = isActiveController
        let became = state.withLock { s -> Bool in
            defer { s.wasActiveController = active }
            return active && !s.wasActiveController
        }
        guard active else { return }
        if became {
            metadata.resetBrokerSessions()
            state.withLock { $0.lastRebalanceMs = MetadataManager.monotonicMs() }
            return
        }
        metadata.fenceExpiredBrokers(quorumSilenceMs: driver.voterSilenceMs(),
                                     quorumSilenceLimitMs: Int64(max(500, config.quorumFetchTimeoutMs / 2)), logger: logger)
        if config.autoLeaderRebalanceEnable {
            let now = MetadataManager.monotonicMs()
            let due = state.withLock { s -> Bool in
                guard now - s.lastRebalanceMs >= Int64(config.leaderImbalanceCheckIntervalSeconds) * 1000 else { return false }
                s.lastRebalanceMs = now
                return true
            }
            if due { _ = metadata.electPreferredLeaders(logger: logger) }
        }
    }

    private func brokerDuties() {
        let now = MetadataManager.monotonicMs()
        let (registered, epoch, endpoints, due) = state.withLock { s -> (Bool, Int64, [ListenerEndpoint], Bool) in
            let due = !s.registered || now - s.lastHeartbeatMs >= Int64(max(100, config.brokerHeartbeatIntervalMs))
            if due { s.lastHeartbeatMs = now }
            return (s.registered, s.brokerEpoch, s.endpoints, due)
        }
        guard due else { return }
        guard let leader = driver.status().leaderId else { return }
        if !registered {
            let result: KafkaErrorCode
            var brokerEpoch: Int64 = -1
            if leader == nodeId {
                guard isActiveController else { return }
                let r = metadata.registerBroker(id: nodeId, incarnationId: incarnationId, endpoints: endpoints, rack: nil, logger: logger)
                result = r.error
                brokerEpoch = r.brokerEpoch
            } else {
                var request = BrokerRegistrationRequest()
                request.brokerId = nodeId
                request.clusterId = ""
                request.incarnationId = incarnationId
                request.listeners = endpoints.map { .init(name: $0.name, host: $0.host, port: UInt16(clamping: $0.port), securityProtocol: 0) }
                request.rack = nil
                guard case .brokerRegistration(let response)? = try? controllerRequest(request, version: 2, to: leader).wait() else { return }
                result = KafkaErrorCode(rawValue: response.errorCode) ?? .unknownServerError
                brokerEpoch = response.brokerEpoch
            }
            if result == .none {
                state.withLock {
                    $0.registered = true
                    $0.brokerEpoch = brokerEpoch
                }
                logger.info("registered with the active controller (node \(leader)), broker epoch \(brokerEpoch)")
                if let hook = afterRegistration.withLock({ $0 }) { controllerPool.submit { _ in hook() } }
            } else if result != .notController {
                logger.warning("broker registration refused by node \(leader): \(result.name); retrying")
            }
            return
        }
        let outcome: KafkaErrorCode
        if leader == nodeId {
            guard isActiveController else { return }
            outcome = metadata.brokerHeartbeat(id: nodeId, brokerEpoch: epoch, logger: logger).error
        } else {
            var request = BrokerHeartbeatRequest()
            request.brokerId = nodeId
            request.brokerEpoch = epoch
            request.currentMetadataOffset = metadata.current().offset
            guard case .brokerHeartbeat(let response)? = try? controllerRequest(request, version: 1, to: leader).wait() else { return }
            outcome = KafkaErrorCode(rawValue: response.errorCode) ?? .unknownServerError
        }
        if outcome == .brokerIdNotRegistered || outcome == .staleBrokerEpoch {
            state.withLock { $0.registered = false }
            logger.info("the controller does not know this broker's registration (\(outcome.name)); registering again")
        }
    }

    /// Sends a controller RPC to node `leader`'s controller listener.
    func controllerRequest<M: KafkaRequestMessage>(_ request: M, version: Int16, to leader: Int32) -> EventLoopFuture<KafkaResponse> {
        guard let voter = driver.voters.first(where: { $0.id == leader }) else {
            return group.next().makeFailedFuture(NotControllerError(leaderId: nil))
        }
        let connection = peers.connection(to: leader, host: voter.host, port: voter.port, purpose: "controller")
        return connection.send(request, version: version, timeout: .milliseconds(Int64(config.quorumRequestTimeoutMs)))
    }

    /// Forwards a client's admin request to the active controller's broker listener and hands
    /// back its answer (a node that is not the controller forwards, as KRaft brokers do).
    func forwardToController<M: KafkaRequestMessage>(_ request: M, version: Int16, image: MetadataImage) -> EventLoopFuture<KafkaResponse>? {
        guard let leader = driver.status().leaderId, leader != nodeId, let broker = image.brokers[leader]?.through(config.interBrokerListenerName) else { return nil }
        let connection = peers.connection(to: leader, host: broker.host, port: Int(broker.port), purpose: "forward")
        return connection.send(request, version: version, timeout: .seconds(30))
    }

    /// Topic creations this node needs (auto-creation, `__consumer_offsets`) sent to the active
    /// controller; nil when this node is the active controller (it creates them itself).
    /// Blocks: called on the controller pool, never on a network thread.
    func forwardCreateTopics(_ topics: [TopicCreation], validateOnly: Bool) -> [TopicOperationResult]? {
        if isActiveController { return nil }
        func failed(_ code: KafkaErrorCode, _ message: String) -> [TopicOperationResult] {
            topics.map { TopicOperationResult(name: $0.name, error: code, message: message) }
        }
        if MultiThreadedEventLoopGroup.currentEventLoop != nil {
            return failed(.notController, "topic creation must go to the active controller; retry")
        }
        var request = CreateTopicsRequest()
        request.timeoutMs = 10_000
        request.validateOnly = validateOnly
        request.topics = topics.map { t in
            CreateTopicsRequest.CreatableTopic(
                name: t.name, numPartitions: t.assignments.isEmpty ? t.partitions : -1,
                replicationFactor: t.assignments.isEmpty ? t.replicationFactor : -1,
                assignments: t.assignments.keys.sorted().map { .init(partitionIndex: $0, brokerIds: t.assignments[$0]!) },
                configs: t.configs.keys.sorted().map { .init(name: $0, value: t.configs[$0]) })
        }
        guard let future = forwardToController(request, version: 7, image: metadata.current()) else {
            return failed(.notController, "no active controller is known yet; retry")
        }
        guard case .createTopics(let response)? = try? future.wait() else {
            return failed(.requestTimedOut, "the active controller did not answer CreateTopics")
        }
        return response.topics.map { r in
            TopicOperationResult(name: r.name, topicId: r.topicId, error: r.errorCode == 0 ? nil : KafkaErrorCode(rawValue: r.errorCode),
                                 message: r.errorMessage, partitions: r.numPartitions, replicationFactor: r.replicationFactor)
        }
    }

    /// AllocateProducerIds: a block of producer ids from the active controller (blocks; called on
    /// the controller pool).
    func allocateProducerIds(count: Int64) throws -> Int64 {
        guard let leader = driver.status().leaderId else { throw NotControllerError(leaderId: nil) }
        guard MultiThreadedEventLoopGroup.currentEventLoop == nil else { throw NotControllerError(leaderId: leader) }
        var request = AllocateProducerIdsRequest()
        request.brokerId = nodeId
        request.brokerEpoch = state.withLock { $0.brokerEpoch }
        guard case .allocateProducerIds(let r) = try controllerRequest(request, version: 0, to: leader).wait() else {
            throw PeerError("node \(leader) answered AllocateProducerIds with another response")
        }
        guard r.errorCode == 0 else { throw NotControllerError(leaderId: nil) }
        return r.producerIdStart
    }

    /// One partition's ISR change, as a leader asks for it.
    struct IsrChange: Sendable {
        var topic: String
        var topicId: KafkaUUID
        var partition: Int32
        var leaderEpoch: Int32
        var partitionEpoch: Int32
        var newIsr: [Int32]
    }

    /// AlterPartition for many partitions in one request to the active controller (or this
    /// node's controller code when it is active); one error code per change, in order.
    func alterPartitions(_ changes: [IsrChange]) -> EventLoopFuture<[KafkaErrorCode]> {
        let brokerEpoch = state.withLock { $0.brokerEpoch }
        guard let leader = driver.status().leaderId else {
            return group.next().makeSucceededFuture(changes.map { _ in .notController })
        }
        if leader == nodeId {
            return controllerPool.runIfActive(eventLoop: group.next()) { [self] in
                let items = changes.map {
                    MetadataManager.AlterPartitionItem(topicId: $0.topicId, topicName: $0.topic, partition: $0.partition,
                                                       leaderEpoch: $0.leaderEpoch, partitionEpoch: $0.partitionEpoch, newIsr: $0.newIsr)
                }
                return metadata.alterPartitions(items, leaderId: nodeId, logger: logger).map(\.error)
            }
        }
        var request = AlterPartitionRequest()
        request.brokerId = nodeId
        request.brokerEpoch = brokerEpoch
        var order = [String]()
        var byTopic = [String: AlterPartitionRequest.TopicData]()
        for c in changes {
            var p = AlterPartitionRequest.PartitionData()
            p.partitionIndex = c.partition
            p.leaderEpoch = c.leaderEpoch
            p.partitionEpoch = c.partitionEpoch
            p.newIsr = c.newIsr
            if byTopic[c.topic] == nil {
                order.append(c.topic)
                byTopic[c.topic] = .init(topicName: c.topic, topicId: c.topicId, partitions: [])
            }
            byTopic[c.topic]!.partitions.append(p)
        }
        request.topics = order.map { byTopic[$0]! }
        return controllerRequest(request, version: 2, to: leader).map { response in
            guard case .alterPartition(let r) = response else { return changes.map { _ in .unknownServerError } }
            if r.errorCode != 0 { return changes.map { _ in KafkaErrorCode(rawValue: r.errorCode) ?? .unknownServerError } }
            var codes = [String: [Int32: KafkaErrorCode]]()
            for t in r.topics {
                for p in t.partitions { codes[t.topicName, default: [:]][p.partitionIndex] = KafkaErrorCode(rawValue: p.errorCode) ?? .unknownServerError }
            }
            return changes.map { codes[$0.topic]?[$0.partition] ?? .unknownServerError }
        }
    }
}
