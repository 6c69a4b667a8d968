/// One member of the metadata quorum, as a pure state machine (KRaft, KIP-595): feed it events
/// with `handle(_:now:)` and `propose(_:now:)`, carry out the actions it returns in order, and
/// call `handle(.tick, now:)` again at `nextWakeup`. No I/O, clocks or threads inside.
///
/// After a restart, build it again with `init(config:persisted:log:now:)` from what the earlier
/// actions made durable: the last `persistState` and the log as appended and truncated.
public struct RaftNode: Sendable {
    public let config: RaftConfig
    public internal(set) var epoch: Int32
    public internal(set) var votedFor: NodeID?
    public internal(set) var role: RaftRole = .unattached
    public internal(set) var leaderId: NodeID?
    public internal(set) var log: RaftLog
    /// Entries below it are committed. Volatile: 0 after a restart until a leader says more.
    public internal(set) var highWatermark: Int64 = 0
    public internal(set) var now: Int64

    var rng: SplitMix64
    /// Unattached, candidate and resigned: when to stand for election.
    var electionDeadline: Int64 = 0
    /// Follower: when to give up on the leader; when to fetch next.
    var fetchDeadline: Int64 = 0
    var nextFetchAt: Int64 = 0
    /// Candidate: voters that granted their vote in this epoch.
    var votesGranted: Set<NodeID> = []
    var votesRejected: Set<NodeID> = []
    /// When this node last heard from a leader of its epoch (follower); a voter that has heard
    /// from one within the fetch timeout refuses pre-votes (KIP-996).
    var lastLeaderContactMs: Int64?
    /// Prospective: the leader whose fetch timeout made it stand; hearsay about that leader
    /// (from other voters) does not send it back to following it.
    var lostLeaderId: NodeID?
    /// Leader: what it knows about each voter, and its timers.
    var replicas: [NodeID: ReplicaState] = [:]
    var leaderSince: Int64 = 0
    var nextLeaderTick: Int64 = 0

    /// Follower: the leader's snapshot it waits for (see `RaftAction.fetchSnapshot`).
    var pendingSnapshot: EpochEndOffset?

    /// Actions of the event being handled.
    var pending: [RaftAction] = []

    struct ReplicaState: Sendable {
        /// Fetch offset of the last valid Fetch in this epoch: the replica holds the leader's log up to it.
        var endOffset: Int64 = 0
        var lastFetchMs: Int64?
        var lastBeginQuorumSentMs: Int64?
    }

    public init(config: RaftConfig, persisted: PersistentState = PersistentState(), log: RaftLog = RaftLog(), now: Int64) {
        self.config = config
        self.epoch = persisted.epoch
        self.votedFor = persisted.votedFor
        self.log = log
        // A snapshot holds committed entries only.
        self.highWatermark = log.startOffset
        self.now = now
        self.rng = SplitMix64(seed: config.randomSeed)
        self.electionDeadline = now + randomElectionTimeout()
    }

    public var isVoter: Bool { config.voters.contains(config.nodeId) }
    public var persistentState: PersistentState { PersistentState(epoch: epoch, votedFor: votedFor) }

    /// The next time `handle(.tick, now:)` has work to do.
    public var nextWakeup: Int64 {
        switch role {
        case .leader: return nextLeaderTick
        case .follower: return min(fetchDeadline, nextFetchAt)
        case .unattached, .prospective, .candidate, .resigned: return electionDeadline
        }
    }

    public mutating func handle(_ event: RaftEvent, now: Int64) -> [RaftAction] {
        self.now = max(self.now, now)
        pending = []
        switch event {
        case .tick: onTick()
        case .resign: resign()
        case .received(let from, let message):
            switch message {
            case .vote(let request): handleVote(from: from, request)
            case .voteResponse(let response): handleVoteResponse(from: from, response)
            case .beginQuorumEpoch(let request): handleBeginQuorumEpoch(from: from, request)
            case .beginQuorumEpochResponse(let response): handleBeginQuorumEpochResponse(from: from, response)
            case .endQuorumEpoch(let request): handleEndQuorumEpoch(from: from, request)
            case .fetch(let request): handleFetch(from: from, request)
            case .fetchResponse(let response): handleFetchResponse(from: from, response)
            }
        }
        return takePending()
    }

    mutating func takePending() -> [RaftAction] {
        defer { pending = [] }
        return pending
    }

    // MARK: timers

    mutating func onTick() {
        switch role {
        case .leader:
            if now >= nextLeaderTick { leaderTick() }
        case .follower:
            if now >= fetchDeadline, isVoter {
                becomeProspective()
            } else if now >= nextFetchAt {
                pendingSnapshot = nil
                sendFetch()
            }
        case .unattached, .prospective, .candidate, .resigned:
            if now >= electionDeadline {
                if isVoter { becomeProspective() } else { electionDeadline = now + randomElectionTimeout() }
            }
        }
    }

    mutating func randomElectionTimeout() -> Int64 {
        config.electionTimeoutMs + jitter()
    }

    mutating func randomFetchTimeout() -> Int64 {
        config.fetchTimeoutMs + jitter()
    }

    mutating func jitter() -> Int64 {
        config.electionJitterMs > 0 ? Int64(rng.next() % UInt64(config.electionJitterMs)) : 0
    }

    // MARK: transitions

    mutating func persist() {
        pending.append(.persistState(persistentState))
    }

    mutating func send(_ message: RaftMessage, to node: NodeID) {
        pending.append(.send(to: node, message))
    }

    var otherVoters: [NodeID] { config.voters.filter { $0 != config.nodeId } }

    /// A newer epoch with no known leader (a vote request, or a leader that resigned).
    mutating func transitionToUnattached(epoch newEpoch: Int32) {
        precondition(newEpoch > epoch)
        // A vote request from a newer epoch must not postpone our own candidacy (a candidate
        // with a stale log could otherwise keep every up-to-date voter from ever standing).
        let pendingDeadline: Int64? = switch role {
        case .follower: fetchDeadline
        case .unattached, .prospective, .candidate, .resigned: electionDeadline
        case .leader: nil
        }
        epoch = newEpoch
        votedFor = nil
        persist()
        role = .unattached
        leaderId = nil
        replicas = [:]
        votesGranted = []
        votesRejected = []
        lastLeaderContactMs = nil
        electionDeadline = min(pendingDeadline ?? Int64.max, now + randomElectionTimeout())
    }

    mutating func transitionToFollower(leader: NodeID, epoch newEpoch: Int32) {
        precondition(newEpoch >= epoch && leader != config.nodeId)
        if newEpoch > epoch {
            epoch = newEpoch
            votedFor = nil
            persist()
        }
        role = .follower
        leaderId = leader
        pendingSnapshot = nil
        replicas = [:]
        votesGranted = []
        votesRejected = []
        lastLeaderContactMs = now
        fetchDeadline = now + randomFetchTimeout()
        pending.append(.becameFollower(leader: leader, epoch: epoch))
        sendFetch()
    }

    /// Reacts to the epoch and leader another node reports: a newer epoch moves this node to it;
    /// a leader for the current epoch makes an unattached node or a candidate its follower.
    mutating func observe(epoch seen: Int32, leader: NodeID?) {
        if seen > epoch {
            if let leader, leader != config.nodeId {
                transitionToFollower(leader: leader, epoch: seen)
            } else {
                transitionToUnattached(epoch: seen)
            }
        } else if seen == epoch, let leader, leader != config.nodeId,
            role == .unattached || role == .candidate || (role == .prospective && leader != lostLeaderId)
        {
            transitionToFollower(leader: leader, epoch: seen)
        }
    }
}
