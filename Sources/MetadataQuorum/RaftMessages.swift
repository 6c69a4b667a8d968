/// The quorum's messages. Each maps onto one KRaft RPC (KIP-595) so the broker can translate
/// them to and from the generated Kafka message types; the field names follow the Kafka schemas.
public enum RaftMessage: Sendable, Hashable {
    /// VoteRequest (api key 52).
    case vote(VoteRequest)
    /// VoteResponse.
    case voteResponse(VoteResponse)
    /// BeginQuorumEpochRequest (api key 53): a new leader announces itself.
    case beginQuorumEpoch(BeginQuorumEpochRequest)
    /// BeginQuorumEpochResponse.
    case beginQuorumEpochResponse(QuorumResponse)
    /// EndQuorumEpochRequest (api key 54): a leader resigns gracefully.
    case endQuorumEpoch(EndQuorumEpochRequest)
    /// FetchRequest (api key 1) on the metadata partition, with `ReplicaId` set.
    case fetch(FetchRequest)
    /// FetchResponse on the metadata partition.
    case fetchResponse(FetchResponse)
}

/// Partition-level error codes the quorum uses (Kafka's numeric codes).
public enum QuorumError: Int16, Sendable, Hashable {
    case none = 0
    /// NOT_LEADER_OR_FOLLOWER: the receiver is not the leader of the request's epoch.
    case notLeaderOrFollower = 6
    /// FENCED_LEADER_EPOCH: the request's epoch is older than the receiver's.
    case fencedLeaderEpoch = 74
    /// UNKNOWN_LEADER_EPOCH: the request's epoch is newer than the receiver's.
    case unknownLeaderEpoch = 75
}

public struct VoteRequest: Sendable, Hashable {
    public var candidateEpoch: Int32
    public var candidateId: NodeID
    public var lastOffsetEpoch: Int32
    /// The candidate's log end offset (Kafka's `LastOffset`).
    public var lastOffset: Int64
    /// KIP-996 `PreVote`: "would you vote for me in `candidateEpoch`?" The receiver answers
    /// without changing (or persisting) any state, and the sender has not bumped its epoch.
    public var preVote: Bool
    public init(candidateEpoch: Int32, candidateId: NodeID, lastOffsetEpoch: Int32, lastOffset: Int64, preVote: Bool = false) {
        self.candidateEpoch = candidateEpoch
        self.candidateId = candidateId
        self.lastOffsetEpoch = lastOffsetEpoch
        self.lastOffset = lastOffset
        self.preVote = preVote
    }
}

public struct VoteResponse: Sendable, Hashable {
    public var errorCode: QuorumError
    /// The responder's epoch and known leader (`LeaderEpoch`, `LeaderId`).
    public var leaderEpoch: Int32
    public var leaderId: NodeID?
    public var voteGranted: Bool
    /// Answers a pre-vote (KIP-996); a granted pre-vote binds the responder to nothing.
    public var preVote: Bool
    public init(errorCode: QuorumError = .none, leaderEpoch: Int32, leaderId: NodeID?, voteGranted: Bool, preVote: Bool = false) {
        self.errorCode = errorCode
        self.leaderEpoch = leaderEpoch
        self.leaderId = leaderId
        self.voteGranted = voteGranted
        self.preVote = preVote
    }
}

public struct BeginQuorumEpochRequest: Sendable, Hashable {
    public var leaderEpoch: Int32
    public var leaderId: NodeID
    public init(leaderEpoch: Int32, leaderId: NodeID) {
        self.leaderEpoch = leaderEpoch
        self.leaderId = leaderId
    }
}

/// BeginQuorumEpochResponse / EndQuorumEpochResponse: the responder's view of the quorum.
public struct QuorumResponse: Sendable, Hashable {
    public var errorCode: QuorumError
    public var leaderEpoch: Int32
    public var leaderId: NodeID?
    public init(errorCode: QuorumError = .none, leaderEpoch: Int32, leaderId: NodeID?) {
        self.errorCode = errorCode
        self.leaderEpoch = leaderEpoch
        self.leaderId = leaderId
    }
}

public struct EndQuorumEpochRequest: Sendable, Hashable {
    public var leaderEpoch: Int32
    public var leaderId: NodeID
    /// Voters ordered by how far their logs reach; the first should stand for election first.
    public var preferredSuccessors: [NodeID]
    public init(leaderEpoch: Int32, leaderId: NodeID, preferredSuccessors: [NodeID]) {
        self.leaderEpoch = leaderEpoch
        self.leaderId = leaderId
        self.preferredSuccessors = preferredSuccessors
    }
}

public struct FetchRequest: Sendable, Hashable {
    /// The fetcher's epoch (`CurrentLeaderEpoch`).
    public var currentLeaderEpoch: Int32
    public var replicaId: NodeID
    /// The fetcher's log end offset (`FetchOffset`).
    public var fetchOffset: Int64
    /// The epoch of the fetcher's last entry (`LastFetchedEpoch`).
    public var lastFetchedEpoch: Int32
    public init(currentLeaderEpoch: Int32, replicaId: NodeID, fetchOffset: Int64, lastFetchedEpoch: Int32) {
        self.currentLeaderEpoch = currentLeaderEpoch
        self.replicaId = replicaId
        self.fetchOffset = fetchOffset
        self.lastFetchedEpoch = lastFetchedEpoch
    }
}

public struct FetchResponse: Sendable, Hashable {
    public var errorCode: QuorumError
    /// The responder's epoch and known leader (`CurrentLeader`).
    public var leaderEpoch: Int32
    public var leaderId: NodeID?
    /// The request this answers (stands for Kafka's correlation id): a fetcher applies a
    /// response only if its log still ends where the request said.
    public var fetchOffset: Int64
    public var lastFetchedEpoch: Int32
    /// The leader's high watermark, or nil while a new leader has not committed in its epoch.
    public var highWatermark: Int64?
    /// Set when the fetcher's log diverges (`DivergingEpoch`): truncate, then fetch again.
    public var divergingEpoch: EpochEndOffset?
    /// Entries starting at `fetchOffset` (the `Records`).
    public var entries: [LogEntry]
    /// Set when the fetcher must load the leader's snapshot first (`SnapshotId`): its fetch
    /// offset is below the leader's log start.
    public var snapshotId: EpochEndOffset?
    public init(
        errorCode: QuorumError = .none, leaderEpoch: Int32, leaderId: NodeID?, fetchOffset: Int64,
        lastFetchedEpoch: Int32, highWatermark: Int64? = nil, divergingEpoch: EpochEndOffset? = nil,
        entries: [LogEntry] = [], snapshotId: EpochEndOffset? = nil
    ) {
        self.snapshotId = snapshotId
        self.errorCode = errorCode
        self.leaderEpoch = leaderEpoch
        self.leaderId = leaderId
        self.fetchOffset = fetchOffset
        self.lastFetchedEpoch = lastFetchedEpoch
        self.highWatermark = highWatermark
        self.divergingEpoch = divergingEpoch
        self.entries = entries
    }
}
