/// One replica of one partition, leader or follower, as a pure state machine: feed it events with
/// `handle(_:now:)`, carry out the returned actions in order, call `handle(.tick, now:)` again at
/// `nextWakeup`. After a restart, build it again from the durable log only (the role, ISR and
/// high watermark are volatile; the metadata image tells it its role again).
public struct PartitionReplica: Sendable {
    public let config: ReplicationConfig
    public internal(set) var role: ReplicaRole = .none
    public internal(set) var log: PartitionLog
    public internal(set) var leaderEpoch: Int32 = -1
    public internal(set) var leaderId: BrokerID?
    public internal(set) var highWatermark: Int64 = 0
    public internal(set) var now: Int64

    // Leader state.
    public internal(set) var isr: [BrokerID] = []
    public internal(set) var replicas: [BrokerID] = []
    public internal(set) var partitionEpoch: Int32 = -1
    /// The in-flight AlterPartition, if any.
    public internal(set) var pendingAlter: AlterPartitionRequest?
    var pendingAlterSentAt: Int64 = 0
    /// Log end offset when this epoch began: a follower joins the ISR only past it.
    public internal(set) var leaderEpochStartOffset: Int64 = 0
    public internal(set) var followers: [BrokerID: FollowerState] = [:]
    var pendingProduces: [PendingProduce] = []
    var nextLeaderCheck: Int64 = 0

    // Follower state.
    var fetchInFlight = false
    var nextFetchAt: Int64 = 0

    var pending: [ReplicationAction] = []

    public struct FollowerState: Sendable, Hashable {
        /// Fetch offset of the last valid fetch in this epoch; -1 unknown.
        public var logEndOffset: Int64 = -1
        public var lastCaughtUpTime: Int64
        var lastFetchTime: Int64 = -1
        var lastFetchLeaderLogEndOffset: Int64 = -1
    }

    struct PendingProduce: Sendable {
        var id: UInt64
        var baseOffset: Int64
        var lastOffset: Int64
        var deadline: Int64
    }

    public init(config: ReplicationConfig, log: PartitionLog = PartitionLog(), now: Int64) {
        self.config = config
        self.log = log
        self.now = now
    }

    /// ISR for the high watermark while an AlterPartition is in flight (Kafka's maximal ISR):
    /// the current ISR plus a member being added; a member being removed still counts.
    public var maximalIsr: [BrokerID] {
        guard let pendingAlter else { return isr }
        return Array(Set(isr).union(pendingAlter.newIsr)).sorted()
    }

    public var nextWakeup: Int64 {
        switch role {
        case .leader: return nextLeaderCheck
        case .follower: return nextFetchAt
        case .none: return Int64.max
        }
    }

    public mutating func handle(_ event: ReplicationEvent, now: Int64) -> [ReplicationAction] {
        self.now = max(self.now, now)
        pending = []
        switch event {
        case .tick: onTick()
        case .produce(let id, let payloads, let acks): produce(id: id, payloads: payloads, acks: acks)
        case .fetchRequest(let from, let request): handleFetch(from: from, request)
        case .fetchResponse(let from, let response): handleFetchResponse(from: from, response)
        case .becomeLeader(let state): becomeLeader(state)
        case .becomeFollower(let leader, let epoch): becomeFollower(leader: leader, epoch: epoch)
        case .alterPartitionAccepted(let state): alterPartitionAccepted(state)
        case .alterPartitionRejected(let state):
            guard role == .leader, let alter = pendingAlter else { break }
            if state.leaderEpoch != leaderEpoch {
                pendingAlter = nil  // fenced: the metadata image will say more
            } else if state.partitionEpoch > alter.partitionEpoch {
                pendingAlter = nil
                alterPartitionAccepted(state)
            }
        }
        defer { pending = [] }
        return pending
    }

    // MARK: transitions

    mutating func failPendingProduces() {
        for produce in pendingProduces { pending.append(.completeProduce(id: produce.id, .notLeaderOrFollower)) }
        pendingProduces = []
    }

    mutating func becomeLeader(_ state: LeaderAndIsr) {
        precondition(state.leader == config.brokerId)
        if role == .leader, state.leaderEpoch == leaderEpoch {
            alterPartitionAccepted(state)
            return
        }
        guard state.leaderEpoch > leaderEpoch else { return }
        failPendingProduces()
        role = .leader
        leaderId = config.brokerId
        leaderEpoch = state.leaderEpoch
        isr = state.isr
        replicas = state.replicas
        partitionEpoch = state.partitionEpoch
        pendingAlter = nil
        leaderEpochStartOffset = log.endOffset
        followers = [:]
        for replica in replicas where replica != config.brokerId {
            // ISR members are given a full lag period from now (Kafka resets lastCaughtUpTime).
            followers[replica] = FollowerState(lastCaughtUpTime: isr.contains(replica) ? now : 0)
        }
        fetchInFlight = false
        nextLeaderCheck = now
        // The high watermark stays what this replica learned as a follower: it proves nothing more.
        maybeIncrementHighWatermark()
    }

    mutating func becomeFollower(leader: BrokerID, epoch: Int32) {
        guard epoch > leaderEpoch || (epoch == leaderEpoch && role == .none) else { return }
        precondition(leader != config.brokerId)
        failPendingProduces()
        role = .follower
        leaderId = leader
        leaderEpoch = epoch
        followers = [:]
        pendingAlter = nil
        isr = []
        fetchInFlight = false
        // Truncation happens through the divergence check of the first fetch (KIP-320).
        sendFetch()
    }

    mutating func alterPartitionAccepted(_ state: LeaderAndIsr) {
        guard role == .leader, state.leaderEpoch == leaderEpoch, state.leader == config.brokerId,
              state.partitionEpoch > partitionEpoch else { return }
        isr = state.isr
        partitionEpoch = state.partitionEpoch
        replicas = state.replicas
        pendingAlter = nil
        maybeIncrementHighWatermark()
        completeProduces()
    }

    // MARK: leader

    mutating func produce(id: UInt64, payloads: [UInt64], acks: Acks) {
        guard role == .leader, !payloads.isEmpty else {
            pending.append(.completeProduce(id: id, .notLeaderOrFollower))
            return
        }
        if acks == .all, isr.count < config.minInSyncReplicas {
            pending.append(.completeProduce(id: id, .notEnoughReplicas))
            return
        }
        let base = log.endOffset
        var entries: [LogEntry] = []
        for (i, payload) in payloads.enumerated() {
            let entry = LogEntry(offset: base + Int64(i), leaderEpoch: leaderEpoch, payload: payload)
            log.append(entry)
            entries.append(entry)
        }
        pending.append(.appendToLog(entries))
        let last = log.endOffset - 1
        maybeIncrementHighWatermark()
        if acks == .all {
            pendingProduces.append(PendingProduce(id: id, baseOffset: base, lastOffset: last, deadline: now + config.produceTimeoutMs))
            completeProduces()
        } else {
            pending.append(.completeProduce(id: id, .success(baseOffset: base, lastOffset: last)))
        }
    }

    /// Kafka's `checkEnoughReplicasReachOffset`: done once the high watermark passes the batch.
    mutating func completeProduces() {
        let enough = maximalIsr.count >= config.minInSyncReplicas
        var waiting: [PendingProduce] = []
        for produce in pendingProduces {
            guard highWatermark > produce.lastOffset else { waiting.append(produce); continue }
            let result: ProduceResult = enough
                ? .success(baseOffset: produce.baseOffset, lastOffset: produce.lastOffset)
                : .notEnoughReplicasAfterAppend
            pending.append(.completeProduce(id: produce.id, result))
        }
        pendingProduces = waiting
    }

    mutating func maybeIncrementHighWatermark() {
        guard role == .leader else { return }
        var newHW = log.endOffset
        for member in maximalIsr where member != config.brokerId {
            newHW = min(newHW, followers[member]?.logEndOffset ?? -1)
        }
        if newHW > highWatermark {
            highWatermark = newHW
            pending.append(.hwChanged(newHW))
        }
    }

    mutating func handleFetch(from: BrokerID, _ request: FetchRequest) {
        func answer(_ response: FetchResponse) { pending.append(.send(to: from, .fetchResponse(response))) }
        var response = FetchResponse(leaderEpoch: leaderEpoch, fetchOffset: request.fetchOffset,
                                     lastFetchedEpoch: request.lastFetchedEpoch, highWatermark: highWatermark)
        guard role == .leader else {
            response.error = .notLeaderOrFollower
            return answer(response)
        }
        if request.currentLeaderEpoch != leaderEpoch {
            response.error = request.currentLeaderEpoch < leaderEpoch ? .fencedLeaderEpoch : .unknownLeaderEpoch
            return answer(response)
        }
        guard var follower = followers[from] else {
            response.error = .notLeaderOrFollower
            return answer(response)
        }
        // KIP-320: does the follower's log match ours up to the fetch offset?
        if let lastEpoch = request.lastFetchedEpoch {
            let end = log.endOffset(forEpoch: lastEpoch)
            if end.epoch < lastEpoch || end.endOffset < request.fetchOffset {
                response.divergingEpoch = end.epoch < 0 ? EpochEndOffset(epoch: -1, endOffset: 0) : end
                return answer(response)
            }
        } else if request.fetchOffset != 0 {
            response.divergingEpoch = EpochEndOffset(epoch: -1, endOffset: 0)
            return answer(response)
        }
        guard request.fetchOffset <= log.endOffset else {
            response.error = .unknownLeaderEpoch  // cannot happen after the check above
            return answer(response)
        }
        // The follower holds our log up to fetchOffset: record it (Kafka's updateFollowerFetchState).
        if request.fetchOffset >= log.endOffset {
            follower.lastCaughtUpTime = max(follower.lastCaughtUpTime, now)
        } else if follower.lastFetchTime >= 0, request.fetchOffset >= follower.lastFetchLeaderLogEndOffset {
            follower.lastCaughtUpTime = max(follower.lastCaughtUpTime, follower.lastFetchTime)
        }
        // Monotonic within the epoch: a validated fetch offset stays true (the log is durable and a
        // matching prefix is never truncated), so a delayed duplicate must not move it back.
        follower.logEndOffset = max(follower.logEndOffset, request.fetchOffset)
        follower.lastFetchTime = now
        follower.lastFetchLeaderLogEndOffset = log.endOffset
        followers[from] = follower
        maybeExpandIsr(from)
        maybeIncrementHighWatermark()
        completeProduces()
        let upper = min(log.endOffset, request.fetchOffset + Int64(config.maxFetchEntries))
        response.entries = Array(log.entries[Int(request.fetchOffset)..<Int(upper)])
        response.highWatermark = highWatermark
        answer(response)
    }

    mutating func maybeExpandIsr(_ id: BrokerID) {
        guard pendingAlter == nil, !isr.contains(id), replicas.contains(id), let follower = followers[id],
              follower.logEndOffset >= highWatermark, follower.logEndOffset >= leaderEpochStartOffset else { return }
        sendAlterPartition((isr + [id]).sorted())
    }

    mutating func maybeShrinkIsr() {
        guard pendingAlter == nil else { return }
        let lagging = isr.filter { id in
            guard id != config.brokerId, let follower = followers[id] else { return false }
            return now - follower.lastCaughtUpTime > config.replicaLagTimeMaxMs
        }
        if !lagging.isEmpty { sendAlterPartition(isr.filter { !lagging.contains($0) }) }
    }

    mutating func sendAlterPartition(_ newIsr: [BrokerID]) {
        let request = AlterPartitionRequest(leaderId: config.brokerId, leaderEpoch: leaderEpoch,
                                            partitionEpoch: partitionEpoch, newIsr: newIsr)
        pendingAlter = request
        pendingAlterSentAt = now
        pending.append(.alterPartition(request))
    }

    mutating func onTick() {
        switch role {
        case .leader:
            guard now >= nextLeaderCheck else { return }
            nextLeaderCheck = now + config.leaderCheckIntervalMs
            if let alter = pendingAlter, now - pendingAlterSentAt >= config.alterPartitionRetryMs {
                pendingAlterSentAt = now
                pending.append(.alterPartition(alter))
            }
            maybeShrinkIsr()
            for produce in pendingProduces where now >= produce.deadline {
                pending.append(.completeProduce(id: produce.id, .requestTimedOut))
            }
            pendingProduces.removeAll { now >= $0.deadline }
        case .follower:
            if now >= nextFetchAt { sendFetch() }
        case .none:
            break
        }
    }

    // MARK: follower

    mutating func sendFetch() {
        guard role == .follower, let leaderId else { return }
        fetchInFlight = true
        nextFetchAt = now + config.fetchTimeoutMs
        let request = FetchRequest(replicaId: config.brokerId, currentLeaderEpoch: leaderEpoch,
                                   fetchOffset: log.endOffset, lastFetchedEpoch: log.lastEpoch)
        pending.append(.send(to: leaderId, .fetch(request)))
    }

    mutating func setFollowerHighWatermark(_ hw: Int64) {
        if hw != highWatermark {
            highWatermark = hw
            pending.append(.hwChanged(hw))
        }
    }

    mutating func handleFetchResponse(from: BrokerID, _ response: FetchResponse) {
        guard role == .follower, from == leaderId, response.leaderEpoch == leaderEpoch,
              response.fetchOffset == log.endOffset, response.lastFetchedEpoch == log.lastEpoch else { return }
        fetchInFlight = false
        if response.error != nil {
            nextFetchAt = now + config.fetchBackoffMs
            return
        }
        if let diverging = response.divergingEpoch {
            let target = truncationOffset(diverging)
            if target < log.endOffset {
                log.truncate(toEndOffset: target)
                pending.append(.truncateLog(toEndOffset: target))
                setFollowerHighWatermark(min(highWatermark, log.endOffset))
            }
            sendFetch()
            return
        }
        if !response.entries.isEmpty {
            for entry in response.entries { log.append(entry) }
            pending.append(.appendToLog(response.entries))
        }
        setFollowerHighWatermark(max(min(response.highWatermark, log.endOffset), min(highWatermark, log.endOffset)))
        if response.entries.isEmpty {
            nextFetchAt = now + config.fetchBackoffMs
        } else {
            sendFetch()
        }
    }

    /// Kafka's `AbstractFetcherThread.getOffsetTruncationState`.
    func truncationOffset(_ leader: EpochEndOffset) -> Int64 {
        let leo = log.endOffset
        if leader.epoch < 0 { return min(max(leader.endOffset, 0), leo) }
        let mine = log.endOffset(forEpoch: leader.epoch)
        if mine.epoch < 0 { return min(leader.endOffset, leo) }
        if mine.epoch != leader.epoch {
            // We never had the leader's epoch: cut back to the end of our largest older one and ask again.
            return min(mine.endOffset, leo)
        }
        return min(mine.endOffset, leader.endOffset, leo)
    }
}
