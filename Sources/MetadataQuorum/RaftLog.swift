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
/// Offsets start at 0; `endOffset` is exclusive (Kafka's log end offset).
public struct RaftLog: Sendable, Equatable {
    public private(set) var entries: [LogEntry] = []
    /// Kafka's leader-epoch checkpoint: (epoch, start offset), ascending.
    private var epochStarts: [EpochEndOffset] = []

    public init(_ entries: [LogEntry] = []) {
        for entry in entries { append(entry) }
    }

    public var endOffset: Int64 { Int64(entries.count) }
    public var lastEpoch: Int32 { entries.last?.epoch ?? 0 }

    public func entry(at offset: Int64) -> LogEntry? {
        offset >= 0 && offset < endOffset ? entries[Int(offset)] : nil
    }

    public mutating func append(_ entry: LogEntry) {
        precondition(entry.offset == endOffset, "log append out of order")
        precondition(entry.epoch >= lastEpoch, "log epochs must not decrease")
        if entry.epoch != lastEpoch || entries.isEmpty {
            epochStarts.append(EpochEndOffset(epoch: entry.epoch, endOffset: entry.offset))
        }
        entries.append(entry)
    }

    /// Removes every entry at or above `newEnd`.
    public mutating func truncate(toEndOffset newEnd: Int64) {
        guard newEnd < endOffset else { return }
        entries.removeSubrange(Int(max(0, newEnd))...)
        while let last = epochStarts.last, last.endOffset >= newEnd { epochStarts.removeLast() }
    }

    /// The largest epoch `<= epoch` present in the log and the offset where it ends (the start
    /// of the next epoch, or the log end). `(0, 0)` when no such epoch exists.
    public func endOffsetForEpoch(_ epoch: Int32) -> EpochEndOffset {
        guard let index = epochStarts.lastIndex(where: { $0.epoch <= epoch }) else {
            return EpochEndOffset(epoch: 0, endOffset: 0)
        }
        let end = index + 1 < epochStarts.count ? epochStarts[index + 1].endOffset : endOffset
        return EpochEndOffset(epoch: epochStarts[index].epoch, endOffset: end)
    }

    public func entries(from offset: Int64, maxCount: Int) -> [LogEntry] {
        guard offset >= 0, offset < endOffset else { return [] }
        let upper = min(entries.count, Int(offset) + maxCount)
        return Array(entries[Int(offset)..<upper])
    }

    /// Raft's "at least as up to date" order on (last epoch, end offset).
    public func isAtMostAsUpToDate(asLastEpoch lastEpoch: Int32, endOffset: Int64) -> Bool {
        (lastEpoch, endOffset) >= (self.lastEpoch, self.endOffset)
    }
}
