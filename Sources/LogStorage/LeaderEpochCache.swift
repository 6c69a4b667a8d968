/// Kafka's `LeaderEpochFileCache` as a value: the start offset of each leader epoch, in order.
///
/// The leader records its epoch on every batch it appends (`partitionLeaderEpoch`); the log feeds
/// every appended batch's epoch here. A returning replica asks the leader where its last epoch ended
/// (OffsetForLeaderEpoch, answered by ``endOffset(for:logEndOffset:)``) and truncates there, so
/// divergent tails are cut. Persisted by `PartitionLog` to `leader-epoch-checkpoint` on every change.
public struct LeaderEpochCache: Hashable, Sendable {
    /// Kafka's `UNDEFINED_EPOCH` / `UNDEFINED_EPOCH_OFFSET`.
    public static let undefinedEpoch: Int32 = -1
    public static let undefinedEpochOffset: Int64 = -1

    public private(set) var entries: [EpochEntry]

    public init(entries: [EpochEntry] = []) {
        self.entries = entries
    }

    public var latestEntry: EpochEntry? { entries.last }
    public var latestEpoch: Int32? { entries.last?.epoch }
    public var earliestEntry: EpochEntry? { entries.first }

    /// Records that `epoch` starts at `startOffset`, if that is news: a different epoch than the
    /// latest, or the latest with an earlier start. Entries that conflict (an epoch at or above
    /// `epoch`, or a start at or above `startOffset`) are removed first, as Kafka does. Returns
    /// whether the cache changed.
    @discardableResult
    public mutating func assign(epoch: Int32, startOffset: Int64) -> Bool {
        guard epoch >= 0, startOffset >= 0 else { return false }
        if let latest = entries.last, latest.epoch == epoch, latest.startOffset <= startOffset {
            return false
        }
        entries.removeAll { $0.epoch >= epoch || $0.startOffset >= startOffset }
        entries.append(EpochEntry(epoch: epoch, startOffset: startOffset))
        return true
    }

    /// Removes the entries starting at or after `endOffset` (the log was truncated there).
    @discardableResult
    public mutating func truncateFromEnd(endOffset: Int64) -> Bool {
        guard endOffset >= 0, let latest = entries.last, latest.startOffset >= endOffset else { return false }
        entries.removeAll { $0.startOffset >= endOffset }
        return true
    }

    /// Drops the entries wholly before `startOffset` (the log start moved there); the entry that
    /// covers `startOffset` now starts there.
    @discardableResult
    public mutating func truncateFromStart(startOffset: Int64) -> Bool {
        guard let index = entries.lastIndex(where: { $0.startOffset <= startOffset }) else { return false }
        let covering = entries[index]
        if index == 0 && covering.startOffset == startOffset { return false }
        entries.removeSubrange(0...index)
        entries.insert(EpochEntry(epoch: covering.epoch, startOffset: startOffset), at: 0)
        return true
    }

    public mutating func clear() {
        entries.removeAll()
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `requestedEpoch` and the offset where
    /// it ended (the start of the next epoch, or the log end offset for the latest epoch).
    /// `(-1, -1)` when the requested epoch is undefined or above every known epoch.
    public func endOffset(for requestedEpoch: Int32, logEndOffset: Int64) -> (epoch: Int32, endOffset: Int64) {
        let undefined = (Self.undefinedEpoch, Self.undefinedEpochOffset)
        guard requestedEpoch != Self.undefinedEpoch, let latest = entries.last else { return undefined }
        if latest.epoch == requestedEpoch { return (requestedEpoch, logEndOffset) }
        guard let higher = entries.first(where: { $0.epoch > requestedEpoch }) else { return undefined }
        guard let floor = entries.last(where: { $0.epoch <= requestedEpoch }) else {
            return (requestedEpoch, higher.startOffset)
        }
        return (floor.epoch, higher.startOffset)
    }

    /// The epoch of the leader that wrote `offset` (the entry with the greatest start at or below
    /// it), or nil if the offset is before every entry.
    public func epoch(forOffset offset: Int64) -> Int32? {
        entries.last(where: { $0.startOffset <= offset })?.epoch
    }
}
