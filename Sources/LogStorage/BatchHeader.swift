import KafkaProtocol
import NIOCore

/// The fixed 61-byte header of a record batch v2, parsed from an append's buffer or from a
/// segment file. Everything the log needs (offsets, sizes, timestamps, producer fields, leader
/// epoch) is here, so the log never looks at individual records.
struct BatchHeader: Hashable, Sendable {
    var baseOffset: Int64
    /// Bytes after the length field (Kafka's `batchLength`).
    var batchLength: Int32
    var partitionLeaderEpoch: Int32
    var magic: Int8
    var attributes: Int16
    var lastOffsetDelta: Int32
    var baseTimestamp: Int64
    var maxTimestamp: Int64
    var producerId: Int64
    var producerEpoch: Int16
    var baseSequence: Int32
    var recordCount: Int32

    static let size = RecordBatch.headerSize
    /// The smallest valid `batchLength`.
    static let minimumBatchLength = Int32(RecordBatch.headerSize - RecordBatch.logOverhead)

    /// The size of the whole batch in bytes.
    var sizeInBytes: Int { RecordBatch.logOverhead + Int(batchLength) }
    var lastOffset: Int64 { baseOffset &+ Int64(lastOffsetDelta) }
    var nextOffset: Int64 { lastOffset &+ 1 }
    var isTransactional: Bool { RecordBatchAttributes(rawValue: attributes).isTransactional }
    var isControl: Bool { RecordBatchAttributes(rawValue: attributes).isControl }
    var hasProducerId: Bool { producerId >= 0 }

    /// The sequence of the last record, wrapping at Int32.max as Kafka does; -1 without one.
    var lastSequence: Int32 { ProducerStateManager.lastSequence(baseSequence: baseSequence, offsetDelta: lastOffsetDelta) }

    /// Parses the header at `index` of `buffer`; nil when fewer than 61 bytes are there.
    init?(_ buffer: ByteBuffer, at index: Int) {
        guard index >= buffer.readerIndex, index + Self.size <= buffer.writerIndex else { return nil }
        typealias O = RecordBatch.Offset
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type = T.self) -> T {
            buffer.getInteger(at: index + offset, as: T.self)!
        }
        baseOffset = get(O.baseOffset)
        batchLength = get(O.batchLength)
        partitionLeaderEpoch = get(O.partitionLeaderEpoch)
        magic = get(O.magic)
        attributes = get(O.attributes)
        lastOffsetDelta = get(O.lastOffsetDelta)
        baseTimestamp = get(O.baseTimestamp)
        maxTimestamp = get(O.maxTimestamp)
        producerId = get(O.producerId)
        producerEpoch = get(O.producerEpoch)
        baseSequence = get(O.baseSequence)
        recordCount = get(O.recordsCount)
    }

    /// Why this header cannot start a valid batch ending at or before `limit` bytes from its start,
    /// or nil if it can.
    func structuralProblem(available: Int64) -> String? {
        if magic != RecordBatch.currentMagic {
            return "magic byte \(magic) (expected 2)"
        }
        if batchLength < Self.minimumBatchLength {
            return "batch length \(batchLength) is smaller than a batch header"
        }
        if Int64(sizeInBytes) > available {
            return "batch of \(sizeInBytes) bytes runs past the end of the data (\(available) bytes left): torn write"
        }
        if lastOffsetDelta < 0 {
            return "negative lastOffsetDelta \(lastOffsetDelta)"
        }
        if baseOffset < 0 {
            return "negative base offset \(baseOffset)"
        }
        return nil
    }
}

/// A batch of an append: its position in the append's buffer (from the reader index) and header.
struct AppendBatch: Sendable {
    var position: Int
    var header: BatchHeader
}

/// Reads batch headers from a segment file through a small window, so that walking a few small
/// batches costs one `pread`, and walking large ones one small `pread` each.
struct BatchHeaderReader {
    let file: FileDescriptor
    /// The end of the data that may be read (the segment size captured under the lock).
    let limit: Int64
    private var window: ByteBuffer
    private var windowStart: Int64 = 0
    private let windowSize: Int

    init(file: FileDescriptor, limit: Int64, windowSize: Int = 16 * 1024) {
        self.file = file
        self.limit = limit
        self.windowSize = max(windowSize, BatchHeader.size)
        self.window = ByteBuffer()
    }

    /// `count` bytes at `position` if the last window read holds them all (a slice sharing its
    /// storage, no copy), so that a small fetch costs the one `pread` of the header scan.
    func bytesInWindow(at position: Int64, count: Int) -> ByteBuffer? {
        guard position >= windowStart, position + Int64(count) <= windowStart + Int64(window.readableBytes) else {
            return nil
        }
        return window.getSlice(at: window.readerIndex + Int(position - windowStart), length: count)
    }

    /// The header at `position`, or nil at the end of the data. Throws `corruptSegment` when the
    /// bytes there cannot start a batch.
    mutating func header(at position: Int64) throws(LogStorageError) -> BatchHeader? {
        guard position < limit else { return nil }
        let available = limit - position
        guard available >= Int64(BatchHeader.size) else {
            throw .corruptSegment(
                path: file.path, position: position,
                reason: "\(available) bytes at the end are too few for a batch header")
        }
        let inWindow = position >= windowStart && position + Int64(BatchHeader.size) <= windowStart + Int64(window.readableBytes)
        if !inWindow {
            window.clear()
            let count = Int(min(Int64(windowSize), available))
            try file.read(into: &window, count: count, at: position)
            windowStart = position
            guard window.readableBytes >= BatchHeader.size else {
                throw .corruptSegment(
                    path: file.path, position: position,
                    reason: "file ends \(window.readableBytes) bytes after this position, inside a batch header")
            }
        }
        guard let header = BatchHeader(window, at: window.readerIndex + Int(position - windowStart)) else {
            return nil
        }
        if let problem = header.structuralProblem(available: available) {
            throw .corruptSegment(path: file.path, position: position, reason: problem)
        }
        return header
    }
}
