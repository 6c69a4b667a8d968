/// Kafka-style partition replication (issue 4, point 2) as a pure state machine: ISR, high
/// watermark, leader epochs, KIP-320 divergence. No I/O, clocks or threads inside; times are
/// milliseconds of whatever clock the driver uses (virtual in the simulation).
public typealias BrokerID = Int32

/// One record batch of the in-memory model: its offset, the epoch of the leader that appended
/// it (Kafka's `partitionLeaderEpoch` in the batch header) and an opaque payload id.
public struct LogEntry: Sendable, Hashable {
    public var offset: Int64
    public var leaderEpoch: Int32
    public var payload: UInt64
    public init(offset: Int64, leaderEpoch: Int32, payload: UInt64) {
        self.offset = offset
        self.leaderEpoch = leaderEpoch
        self.payload = payload
    }
}

/// Kafka's `EpochEndOffset`: the end offset (exclusive) of `epoch`, the largest epoch the
/// answering log holds that is <= the requested one; `epoch == -1` when it has none.
public struct EpochEndOffset: Sendable, Hashable {
    public var epoch: Int32
    public var endOffset: Int64
    public init(epoch: Int32, endOffset: Int64) {
        self.epoch = epoch
        self.endOffset = endOffset
    }
}

/// A replica's log as the durable model sees it, with its leader-epoch cache (Kafka's
/// `leader-epoch-checkpoint`: epoch -> first offset), kept in step with appends and truncations.
public struct PartitionLog: Sendable, Hashable {
    public private(set) var entries: [LogEntry] = []
    /// (epoch, start offset), ascending in both.
    public private(set) var epochCache: [EpochEndOffset] = []  // endOffset field holds the start offset

    public init(entries: [LogEntry] = []) {
        for entry in entries { append(entry) }
    }

    public var endOffset: Int64 { Int64(entries.count) }
    public var lastEpoch: Int32? { entries.last?.leaderEpoch }

    public func entry(at offset: Int64) -> LogEntry? {
        offset >= 0 && offset < endOffset ? entries[Int(offset)] : nil
    }

    public mutating func append(_ entry: LogEntry) {
        precondition(entry.offset == endOffset, "append at \(entry.offset), log end \(endOffset)")
        if let last = epochCache.last {
            precondition(entry.leaderEpoch >= last.epoch, "epoch goes back")
            if entry.leaderEpoch > last.epoch {
                epochCache.append(EpochEndOffset(epoch: entry.leaderEpoch, endOffset: entry.offset))
            }
        } else {
            epochCache.append(EpochEndOffset(epoch: entry.leaderEpoch, endOffset: entry.offset))
        }
        entries.append(entry)
    }

    public mutating func truncate(toEndOffset end: Int64) {
        guard end < endOffset else { return }
        entries.removeSubrange(Int(max(0, end))...)
        epochCache.removeAll { $0.endOffset >= end }
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor`: for the latest epoch, the log end; for an
    /// older one, the start of the next epoch; the epoch answered is the largest <= `requested`,
    /// or `requested` itself (ending where the first epoch starts) when every epoch is newer;
    /// `(-1, -1)` for an empty log.
    public func endOffset(forEpoch requested: Int32) -> EpochEndOffset {
        guard let first = epochCache.first else { return EpochEndOffset(epoch: -1, endOffset: -1) }
        guard let index = epochCache.lastIndex(where: { $0.epoch <= requested }) else {
            return EpochEndOffset(epoch: requested, endOffset: first.endOffset)
        }
        let end = index + 1 < epochCache.count ? epochCache[index + 1].endOffset : endOffset
        return EpochEndOffset(epoch: epochCache[index].epoch, endOffset: end)
    }
}

public struct ReplicationConfig: Sendable, Hashable {
    public var brokerId: BrokerID
    /// `min.insync.replicas`.
    public var minInSyncReplicas: Int = 2
    /// `replica.lag.time.max.ms`.
    public var replicaLagTimeMaxMs: Int64 = 30_000
    /// How often the leader checks for lagging followers and timed-out produces.
    public var leaderCheckIntervalMs: Int64 = 100
    /// A follower re-sends a Fetch after this long without an answer.
    public var fetchTimeoutMs: Int64 = 500
    /// A follower waits this long after an empty fetch (the leader's long poll, simplified).
    public var fetchBackoffMs: Int64 = 50
    /// An in-flight AlterPartition is re-sent after this long without an answer.
    public var alterPartitionRetryMs: Int64 = 500
    /// An acks=-1 produce not satisfied after this long fails (`request.timeout.ms`).
    public var produceTimeoutMs: Int64 = 30_000
    /// Maximum entries in one fetch response.
    public var maxFetchEntries: Int = 32

    public init(brokerId: BrokerID) { self.brokerId = brokerId }
}

public enum Acks: Int8, Sendable, Hashable {
    case none = 0
    case leader = 1
    case all = -1
}

public enum ProduceResult: Sendable, Hashable {
    /// The batch is at `baseOffset...lastOffset` (acks=0: appended; a broker sends no response).
    case success(baseOffset: Int64, lastOffset: Int64)
    case notLeaderOrFollower
    /// ISR below `min.insync.replicas` before the append: nothing appended.
    case notEnoughReplicas
    /// The high watermark passed the batch while the ISR was below `min.insync.replicas`.
    case notEnoughReplicasAfterAppend
    case requestTimedOut
}

/// Replica Fetch (the follower's `replica_id`/`ReplicaState`, `CurrentLeaderEpoch`,
/// `FetchOffset`, `LastFetchedEpoch`).
public struct FetchRequest: Sendable, Hashable {
    public var replicaId: BrokerID
    public var currentLeaderEpoch: Int32
    public var fetchOffset: Int64
    public var lastFetchedEpoch: Int32?
    public init(replicaId: BrokerID, currentLeaderEpoch: Int32, fetchOffset: Int64, lastFetchedEpoch: Int32?) {
        self.replicaId = replicaId
        self.currentLeaderEpoch = currentLeaderEpoch
        self.fetchOffset = fetchOffset
        self.lastFetchedEpoch = lastFetchedEpoch
    }
}

public enum FetchError: Sendable, Hashable {
    /// The receiver is not the leader (NOT_LEADER_OR_FOLLOWER).
    case notLeaderOrFollower
    /// The request's epoch is older than the leader's (FENCED_LEADER_EPOCH).
    case fencedLeaderEpoch
    /// The request's epoch is newer than the leader's (UNKNOWN_LEADER_EPOCH).
    case unknownLeaderEpoch
}

public struct FetchResponse: Sendable, Hashable {
    public var leaderEpoch: Int32
    /// Echo of the request, so a follower drops stale or duplicated answers.
    public var fetchOffset: Int64
    public var lastFetchedEpoch: Int32?
    public var error: FetchError?
    public var highWatermark: Int64
    public var entries: [LogEntry]
    /// KIP-320 `DivergingEpoch`: the follower's log diverges; truncate, then fetch again.
    public var divergingEpoch: EpochEndOffset?
    public init(leaderEpoch: Int32, fetchOffset: Int64, lastFetchedEpoch: Int32?, error: FetchError? = nil,
                highWatermark: Int64, entries: [LogEntry] = [], divergingEpoch: EpochEndOffset? = nil) {
        self.leaderEpoch = leaderEpoch
        self.fetchOffset = fetchOffset
        self.lastFetchedEpoch = lastFetchedEpoch
        self.error = error
        self.highWatermark = highWatermark
        self.entries = entries
        self.divergingEpoch = divergingEpoch
    }
}

public enum ReplicationMessage: Sendable, Hashable {
    case fetch(FetchRequest)
    case fetchResponse(FetchResponse)
}

/// AlterPartition (KIP-497) from the leader to the controller.
public struct AlterPartitionRequest: Sendable, Hashable {
    public var leaderId: BrokerID
    public var leaderEpoch: Int32
    public var partitionEpoch: Int32
    public var newIsr: [BrokerID]
    public init(leaderId: BrokerID, leaderEpoch: Int32, partitionEpoch: Int32, newIsr: [BrokerID]) {
        self.leaderId = leaderId
        self.leaderEpoch = leaderEpoch
        self.partitionEpoch = partitionEpoch
        self.newIsr = newIsr
    }
}

/// The controller's view of a partition (a PartitionRecord/PartitionChangeRecord in the image).
public struct LeaderAndIsr: Sendable, Hashable {
    public var leader: BrokerID
    public var leaderEpoch: Int32
    public var isr: [BrokerID]
    public var replicas: [BrokerID]
    public var partitionEpoch: Int32
    public init(leader: BrokerID, leaderEpoch: Int32, isr: [BrokerID], replicas: [BrokerID], partitionEpoch: Int32) {
        self.leader = leader
        self.leaderEpoch = leaderEpoch
        self.isr = isr.sorted()
        self.replicas = replicas
        self.partitionEpoch = partitionEpoch
    }
}

public enum ReplicationEvent: Sendable, Hashable {
    /// The clock moved; fire due timers. Call it at `nextWakeup` (more often is fine).
    case tick
    case produce(id: UInt64, payloads: [UInt64], acks: Acks)
    case fetchRequest(from: BrokerID, FetchRequest)
    case fetchResponse(from: BrokerID, FetchResponse)
    /// From the metadata image: this broker leads `state.leaderEpoch`. Also how a leader learns
    /// a newer partition epoch of its own epoch (an ISR change the controller made).
    case becomeLeader(LeaderAndIsr)
    case becomeFollower(leader: BrokerID, leaderEpoch: Int32)
    /// The controller's answer to AlterPartition: the partition's state now. Applied when it is
    /// for this leader epoch and newer than the partition epoch the leader knows.
    case alterPartitionAccepted(LeaderAndIsr)
    /// INVALID_UPDATE_VERSION, FENCED_LEADER_EPOCH, INELIGIBLE_REPLICA...: drop the in-flight
    /// change and adopt the partition's current state if it is newer. The controller bumps the
    /// partition epoch when it rejects a request of the current leader epoch, so a delayed copy
    /// of the rejected request can never be accepted later (after the leader moved its high
    /// watermark without the member it wanted to add).
    case alterPartitionRejected(LeaderAndIsr)
}

/// Actions, to be carried out in order. `appendToLog` and `truncateLog` must be durable before
/// any later action of the same list (a fetch offset or an acks=1 answer never claims entries
/// that are not on disk).
public enum ReplicationAction: Sendable, Hashable {
    case send(to: BrokerID, ReplicationMessage)
    case appendToLog([LogEntry])
    case truncateLog(toEndOffset: Int64)
    case completeProduce(id: UInt64, ProduceResult)
    /// Send to the controller; the answer comes back as `alterPartitionAccepted/Rejected`.
    case alterPartition(AlterPartitionRequest)
    case hwChanged(Int64)
}

public enum ReplicaRole: Sendable, Hashable {
    case none
    case leader
    case follower
}
