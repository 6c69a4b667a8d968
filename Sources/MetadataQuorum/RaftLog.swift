/// Replica id, as in Kafka's `replica.id` / `node.id` (int32 on the wire).
public typealias NodeID = Int32

/// One record of the replicated metadata log.
public struct LogEntry: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A record proposed by the state machine above the quorum (metadata records).
        case data
        /// The first record a new leader writes in its epoch (Kafka's LeaderChangeMessage). The
        /// leader commits through it: only entries of its own epoch advance the high watermark.
        case leaderChange
    }

    public var epoch: Int32
    public var offset: Int64
    public var kind: Kind
    public var payload: [UInt8]

    public init(epoch: Int32, offset: Int64, kind: Kind = .data, payload: [UInt8]) {
        self.epoch = epoch
        self.offset = offset
        self.kind = kind
        self.payload = payload
    }
}

/// (epoch, end offset): the answer to "where does epoch E end in this log", as in KIP-595's
/// DivergingEpoch and OffsetForLeaderEpoch.
public struct EpochEndOffset: Sendable, Hashable {
    public var epoch: Int32
    public var endOffset: Int64
    public init(epoch: Int32, endOffset: Int64) {
        self.epoch = epoch
        self.endOffset = endOffset
    }
}

/// In-memory model of the durable log, with a leader-epoch cache (first offset of every epoch).
/// Offsets start at 0; `endOffset` is exclusive (Kafka's log end offset). Entries below
/// `startOffset` live only in the snapshot that ends there (KRaft's snapshot id: end offset and
/// the epoch of the last entry it covers); everything below it is committed.
public struct RaftLog: Sendable, Equatable {
    /// The entries from `startOffset` on.
    public private(set) var entries: [LogEntry] = []
    /// Kafka's leader-epoch checkpoint: (epoch, start offset), ascending.
    private var epochStarts: [EpochEndOffset] = []
    /// The first offset held as an entry; the snapshot covers everything below it.
    public private(set) var startOffset: Int64 = 0
    /// The epoch of the last entry the snapshot covers (0 without a snapshot).
    public private(set) var snapshotEpoch: Int32 = 0

    public init(_ entries: [LogEntry] = [], snapshot: EpochEndOffset? = nil) {
        if let snapshot {
            startOffset = snapshot.endOffset
            snapshotEpoch = snapshot.epoch
        }
        for entry in entries { append(entry) }
    }

    public var endOffset: Int64 { startOffset + Int64(entries.count) }
    public var lastEpoch: Int32 { entries.last?.epoch ?? snapshotEpoch }
    /// The snapshot the log starts from, if any.
    public var snapshotId: EpochEndOffset? {
        startOffset > 0 ? EpochEndOffset(epoch: snapshotEpoch, endOffset: startOffset) : nil
    }

    public func entry(at offset: Int64) -> LogEntry? {
        offset >= startOffset && offset < endOffset ? entries[Int(offset - startOffset)] : nil
    }

    public mutating func append(_ entry: LogEntry) {
        precondition(entry.offset == endOffset, "log append out of order")
        precondition(entry.epoch >= lastEpoch, "log epochs must not decrease")
        if epochStarts.last?.epoch != entry.epoch {
            epochStarts.append(EpochEndOffset(epoch: entry.epoch, endOffset: entry.offset))
        }
        entries.append(entry)
    }

    /// Removes every entry at or above `newEnd` (never below the snapshot: that is committed).
    public mutating func truncate(toEndOffset newEnd: Int64) {
        let newEnd = max(newEnd, startOffset)
        guard newEnd < endOffset else { return }
        entries.removeSubrange(Int(newEnd - startOffset)...)
        while let last = epochStarts.last, last.endOffset >= newEnd { epochStarts.removeLast() }
    }

    /// Drops the entries below `offset`: a snapshot now covers them (they must be committed).
    public mutating func compact(upTo offset: Int64) {
        guard offset > startOffset else { return }
        precondition(offset <= endOffset, "cannot compact beyond the log end")
        snapshotEpoch = entries[Int(offset - startOffset) - 1].epoch
        entries.removeFirst(Int(offset - startOffset))
        startOffset = offset
        // Epochs wholly below the new start are forgotten; the one spanning it stays.
        while epochStarts.count > 1, epochStarts[1].endOffset <= offset { epochStarts.removeFirst() }
    }

    /// Replaces the whole log by a snapshot ending at `snapshot.endOffset` (a follower that was
    /// too far behind, or whose log diverged below the leader's log start).
    public mutating func reset(toSnapshot snapshot: EpochEndOffset) {
        entries = []
        epochStarts = []
        startOffset = snapshot.endOffset
        snapshotEpoch = snapshot.epoch
    }

    /// The largest epoch `<= epoch` present in the log and the offset where it ends (the start
    /// of the next epoch, or the log end). `(0, 0)` when no such epoch is known (older than
    /// the snapshot's epoch, or an empty log).
    public func endOffsetForEpoch(_ epoch: Int32) -> EpochEndOffset {
        if let index = epochStarts.lastIndex(where: { $0.epoch <= epoch }) {
            let end = index + 1 < epochStarts.count ? epochStarts[index + 1].endOffset : endOffset
            return EpochEndOffset(epoch: epochStarts[index].epoch, endOffset: end)
        }
        if startOffset > 0, epoch >= snapshotEpoch {
            return EpochEndOffset(epoch: snapshotEpoch, endOffset: epochStarts.first?.endOffset ?? endOffset)
        }
        return EpochEndOffset(epoch: 0, endOffset: 0)
    }

    public func entries(from offset: Int64, maxCount: Int) -> [LogEntry] {
        guard offset >= startOffset, offset < endOffset else { return [] }
        let lower = Int(offset - startOffset)
        let upper = min(entries.count, lower + maxCount)
        return Array(entries[lower..<upper])
    }

    /// Raft's "at least as up to date" order on (last epoch, end offset).
    public func isAtMostAsUpToDate(asLastEpoch lastEpoch: Int32, endOffset: Int64) -> Bool {
        (lastEpoch, endOffset) >= (self.lastEpoch, self.endOffset)
    }
}
