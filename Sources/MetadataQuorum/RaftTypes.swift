/// Timing and identity of one quorum member. All times are milliseconds of whatever clock the
/// driver uses (virtual in the simulation).
public struct RaftConfig: Sendable, Hashable {
    public var nodeId: NodeID
    /// `controller.quorum.voters`.
    public var voters: [NodeID]
    /// How long a candidate waits for votes before a new election (`controller.quorum.election.timeout.ms`).
    public var electionTimeoutMs: Int64 = 1000
    /// A follower that has not heard from its leader for this long stands for election
    /// (`controller.quorum.fetch.timeout.ms`).
    public var fetchTimeoutMs: Int64 = 1000
    /// Random extra time added to each election and fetch timeout, in `[0, jitter)`.
    public var electionJitterMs: Int64 = 500
    /// A follower re-sends a Fetch after this long without an answer, or after an empty answer.
    public var fetchIntervalMs: Int64 = 100
    /// The leader re-announces itself (BeginQuorumEpoch) to voters silent for this long.
    public var beginQuorumRetryMs: Int64 = 300
    /// Step between successive preferred successors after an EndQuorumEpoch.
    public var electionBackoffStepMs: Int64 = 100
    /// Maximum entries in one fetch response.
    public var maxFetchEntries: Int = 64
    /// Seed of the node's random timeouts (the simulation supplies it; a broker uses a random one).
    public var randomSeed: UInt64 = 0

    public init(nodeId: NodeID, voters: [NodeID]) {
        self.nodeId = nodeId
        self.voters = voters.sorted()
    }

    /// A leader that has not been fetched from by a majority for this long resigns (check quorum).
    public var checkQuorumTimeoutMs: Int64 { fetchTimeoutMs + electionJitterMs }
    public var majority: Int { voters.count / 2 + 1 }
}

/// What survives a restart besides the log: Kafka's `quorum-state` file.
public struct PersistentState: Sendable, Hashable {
    public var epoch: Int32
    public var votedFor: NodeID?
    public init(epoch: Int32 = 0, votedFor: NodeID? = nil) {
        self.epoch = epoch
        self.votedFor = votedFor
    }
}

public enum RaftRole: Sendable, Hashable {
    /// Knows an epoch but no leader; may have voted in it.
    case unattached
    /// KIP-996: asks the voters whether they would elect it in `epoch + 1` (pre-vote) before
    /// becoming a candidate; its epoch and vote are unchanged and nothing is persisted.
    case prospective
    case candidate
    case leader
    case follower
    /// A leader that resigned gracefully and waits for a successor.
    case resigned
}

public enum RaftEvent: Sendable, Hashable {
    /// The clock moved; fire due timers. Call it at `nextWakeup` (calling it more often is fine).
    case tick
    case received(from: NodeID, RaftMessage)
    /// Graceful shutdown of a leader: send EndQuorumEpoch so a follower takes over quickly.
    case resign
}

/// Actions, to be carried out in order. `persistState`, `appendToLog` and `truncateLog` must be
/// durable before any later action in the same list runs (a vote is never sent before the vote
/// is on disk; a fetch offset never claims entries that are not on disk).
public enum RaftAction: Sendable, Hashable {
    case persistState(PersistentState)
    case appendToLog([LogEntry])
    case truncateLog(toEndOffset: Int64)
    case send(to: NodeID, RaftMessage)
    /// The high watermark moved: entries below `upTo` are committed and may be applied.
    case committed(upTo: Int64)
    case becameLeader(epoch: Int32)
    case becameFollower(leader: NodeID, epoch: Int32)
    case becameCandidate(epoch: Int32)
    /// The leader's log starts after this follower's end (or diverges below the leader's log
    /// start): download that snapshot from `leader` (FetchSnapshot), make it and an empty log
    /// starting at its end durable, then call `installSnapshot(_:now:)`. Until then the follower
    /// does not fetch; if nothing is installed within a while it fetches again (and learns the
    /// leader's current snapshot).
    case fetchSnapshot(from: NodeID, snapshot: EpochEndOffset)
}

public enum ProposeResult: Sendable, Hashable {
    /// Appended at this position; it is acknowledged once `committed(upTo:)` passes `offset`
    /// while the entry at `offset` still has `epoch`.
    case appended(epoch: Int32, offset: Int64)
    case notLeader(leaderId: NodeID?, epoch: Int32)
}

/// SplitMix64: a tiny seeded generator, deterministic across platforms.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
