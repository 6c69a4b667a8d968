import NIOCore

/// Walks the record batches concatenated in a Produce or Fetch `records` field, yielding each as
/// a ``RecordBatch`` slice that shares the input's storage.
///
/// A Fetch response may end in a partial batch (the broker cuts at `max.bytes`); the iterator
/// stops there and reports ``partialTrailingBytes`` instead of throwing, unless built with
/// `allowPartialTrailingBatch: false` (what a broker wants for Produce). Garbage — a negative or
/// too small length, a wrong magic byte — throws.
///
/// ```swift
/// var batches = RecordBatchIterator(records)
/// while let batch = try batches.next() { ... }
/// ```
public struct RecordBatchIterator: Sendable {
    /// The bytes not yet iterated; indices are those of the original buffer.
    public private(set) var remaining: ByteBuffer
    /// Whether an incomplete batch at the end ends iteration quietly (true) or throws (false).
    public let allowsPartialTrailingBatch: Bool
    /// The index, in the original buffer, at which the batch last returned by ``next()`` starts.
    /// Pass it with the original buffer to ``RecordBatch/assign(baseOffset:partitionLeaderEpoch:inBatchAt:of:)``.
    public private(set) var lastBatchIndex: Int?

    public init(_ records: ByteBuffer, allowPartialTrailingBatch: Bool = true) {
        self.remaining = records
        self.allowsPartialTrailingBatch = allowPartialTrailingBatch
    }

    /// Bytes left when iteration stopped at an incomplete trailing batch; 0 before the end or when
    /// the input ended exactly at a batch boundary.
    public var partialTrailingBytes: Int { remaining.readableBytes }

    /// The next complete batch, or nil at the end of the input or at an incomplete trailing batch.
    public mutating func next() throws(KafkaProtocolError) -> RecordBatch? {
        let start = remaining.readerIndex
        let available = remaining.readableBytes
        if available == 0 { return nil }
        guard available >= RecordBatch.logOverhead,
            let length = remaining.getInteger(at: start + RecordBatch.Offset.batchLength, as: Int32.self)
        else {
            return try partial(needed: RecordBatch.logOverhead, available: available)
        }
        guard length >= 0 else {
            throw .corruptRecordBatch("negative batchLength \(length)")
        }
        if available > RecordBatch.Offset.magic,
            let magic = remaining.getInteger(at: start + RecordBatch.Offset.magic, as: Int8.self)
        {
            try RecordBatch.checkMagic(magic)
        }
        try RecordBatch.checkBatchLength(length)
        let size = RecordBatch.logOverhead + Int(length)
        guard available >= size, let slice = remaining.readSlice(length: size) else {
            return try partial(needed: size, available: available)
        }
        lastBatchIndex = start
        return RecordBatch(unchecked: slice)
    }

    private func partial(needed: Int, available: Int) throws(KafkaProtocolError) -> RecordBatch? {
        if allowsPartialTrailingBatch { return nil }
        throw .truncated(what: "record batch", needed: needed, available: available)
    }
}

extension RecordBatch {
    /// All complete batches in `records` (see ``RecordBatchIterator``).
    public static func batches(
        in records: ByteBuffer, allowPartialTrailingBatch: Bool = true
    ) throws(KafkaProtocolError) -> [RecordBatch] {
        var iterator = RecordBatchIterator(records, allowPartialTrailingBatch: allowPartialTrailingBatch)
        var result: [RecordBatch] = []
        while let batch = try iterator.next() { result.append(batch) }
        return result
    }
}

/// What ``RecordBatch/assignOffsets(in:firstOffset:partitionLeaderEpoch:)`` assigned.
public struct OffsetAssignment: Hashable, Sendable {
    /// The base offset of the first batch.
    public var firstOffset: Int64
    /// The last offset of the last batch.
    public var lastOffset: Int64
    public var batchCount: Int
    /// The sum of the batches' declared record counts.
    public var recordCount: Int
    /// The largest `maxTimestamp` of the batches (-1 if none has a timestamp).
    public var maxTimestamp: Int64

    public init(firstOffset: Int64, lastOffset: Int64, batchCount: Int, recordCount: Int, maxTimestamp: Int64) {
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.batchCount = batchCount
        self.recordCount = recordCount
        self.maxTimestamp = maxTimestamp
    }
}

extension RecordBatch {
    /// The broker's append step for a Produce request's `records`: checks every batch (complete,
    /// magic 2, CRC, known codec, offset range consistent with the record count) and assigns
    /// consecutive offsets from `firstOffset` and the leader epoch, in place: the bytes are then
    /// ready to store and serve as they are. Decodes no record, so it works on batches of every
    /// codec, including those Petrel cannot decompress.
    public static func assignOffsets(
        in records: inout ByteBuffer, firstOffset: Int64, partitionLeaderEpoch: Int32
    ) throws(KafkaProtocolError) -> OffsetAssignment {
        // First pass checks everything and keeps only positions, so that no slice of `records`
        // is alive while the second pass writes: the writes then happen in place, without a
        // copy-on-write of the whole buffer.
        let batches = try checkedBatchPositions(records)
        var next = firstOffset
        var assignment = OffsetAssignment(
            firstOffset: firstOffset, lastOffset: firstOffset - 1, batchCount: 0, recordCount: 0, maxTimestamp: -1)
        for batch in batches {
            try RecordBatch.assign(
                baseOffset: next, partitionLeaderEpoch: partitionLeaderEpoch, inBatchAt: batch.index, of: &records)
            assignment.batchCount += 1
            assignment.recordCount += Int(batch.count)
            assignment.maxTimestamp = max(assignment.maxTimestamp, batch.maxTimestamp)
            next += Int64(batch.count)
            assignment.lastOffset = next - 1
        }
        return assignment
    }

    private static func checkedBatchPositions(
        _ records: ByteBuffer
    ) throws(KafkaProtocolError) -> [(index: Int, count: Int32, maxTimestamp: Int64)] {
        var iterator = RecordBatchIterator(records, allowPartialTrailingBatch: false)
        var positions: [(index: Int, count: Int32, maxTimestamp: Int64)] = []
        while let batch = try iterator.next() {
            try batch.validate()
            let count = batch.recordCount
            guard count > 0 else {
                throw .corruptRecordBatch("batch declares \(count) records")
            }
            guard Int64(batch.lastOffsetDelta) + 1 == Int64(count) else {
                throw .corruptRecordBatch(
                    "lastOffsetDelta \(batch.lastOffsetDelta) is inconsistent with the record count \(count)")
            }
            guard let index = iterator.lastBatchIndex else { break }
            positions.append((index, count, batch.maxTimestamp))
        }
        guard !positions.isEmpty else {
            throw .corruptRecordBatch("no record batch in the records")
        }
        return positions
    }
}
