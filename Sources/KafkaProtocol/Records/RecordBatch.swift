import NIOCore

/// The compression codec of a record batch (attribute bits 0-2).
public enum CompressionCodec: Int8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4

    public var description: String {
        switch self {
        case .none: return "none"
        case .gzip: return "gzip"
        case .snappy: return "snappy"
        case .lz4: return "lz4"
        case .zstd: return "zstd"
        }
    }

    /// Whether Petrel can compress and decompress records with this codec.
    public var isSupported: Bool { self == .none || self == .gzip }
}

/// Attribute bit 3: whose clock the batch's timestamps come from.
public enum TimestampType: Sendable, Hashable {
    case createTime
    case logAppendTime
}

/// The `attributes` int16 of a record batch.
public struct RecordBatchAttributes: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int16

    public init(rawValue: Int16) { self.rawValue = rawValue }

    public init(
        compression: CompressionCodec = .none,
        timestampType: TimestampType = .createTime,
        isTransactional: Bool = false,
        isControl: Bool = false,
        hasDeleteHorizon: Bool = false
    ) {
        self.rawValue = 0
        self.compressionID = compression.rawValue
        self.timestampType = timestampType
        self.isTransactional = isTransactional
        self.isControl = isControl
        self.hasDeleteHorizon = hasDeleteHorizon
    }

    static let compressionMask: Int16 = 0x07
    static let timestampTypeBit: Int16 = 0x08
    static let transactionalBit: Int16 = 0x10
    static let controlBit: Int16 = 0x20
    static let deleteHorizonBit: Int16 = 0x40

    /// The raw codec id (0-7); ids 5-7 are not assigned by Kafka.
    public var compressionID: Int8 {
        get { Int8(truncatingIfNeeded: rawValue & Self.compressionMask) }
        set { rawValue = (rawValue & ~Self.compressionMask) | (Int16(newValue) & Self.compressionMask) }
    }

    /// The codec, or nil for an id Kafka does not assign (5-7).
    public var compression: CompressionCodec? {
        get { CompressionCodec(rawValue: compressionID) }
        set { compressionID = newValue?.rawValue ?? 0 }
    }

    public var timestampType: TimestampType {
        get { rawValue & Self.timestampTypeBit != 0 ? .logAppendTime : .createTime }
        set { setBit(Self.timestampTypeBit, newValue == .logAppendTime) }
    }

    public var isTransactional: Bool {
        get { rawValue & Self.transactionalBit != 0 }
        set { setBit(Self.transactionalBit, newValue) }
    }

    public var isControl: Bool {
        get { rawValue & Self.controlBit != 0 }
        set { setBit(Self.controlBit, newValue) }
    }

    /// Set by compaction: `baseTimestamp` is then the delete horizon.
    public var hasDeleteHorizon: Bool {
        get { rawValue & Self.deleteHorizonBit != 0 }
        set { setBit(Self.deleteHorizonBit, newValue) }
    }

    private mutating func setBit(_ bit: Int16, _ on: Bool) {
        if on { rawValue |= bit } else { rawValue &= ~bit }
    }

    public var description: String {
        var parts = ["compression=\(compression.map(String.init(describing:)) ?? "unknown(\(compressionID))")"]
        if timestampType == .logAppendTime { parts.append("logAppendTime") }
        if isTransactional { parts.append("transactional") }
        if isControl { parts.append("control") }
        if hasDeleteHorizon { parts.append("deleteHorizon") }
        return parts.joined(separator: ",")
    }
}

/// A record batch (magic v2), as a view over the exact bytes of one batch.
///
/// Header fields are read lazily at fixed offsets; nothing is decoded or copied until asked for.
/// The broker can validate a batch (``validate()``) and assign its offset and leader epoch in
/// place (``baseOffset``, ``partitionLeaderEpoch`` are settable; neither is covered by the CRC)
/// and then store or send the very bytes it received.
///
/// Layout (Kafka's implementation docs, section 5.3.1), all big-endian:
///
/// | offset | field |
/// |---|---|
/// | 0 | baseOffset int64 |
/// | 8 | batchLength int32 (bytes after this field) |
/// | 12 | partitionLeaderEpoch int32 |
/// | 16 | magic int8 = 2 |
/// | 17 | crc uint32 (CRC-32C of bytes 21..<end) |
/// | 21 | attributes int16 |
/// | 23 | lastOffsetDelta int32 |
/// | 27 | baseTimestamp int64 |
/// | 35 | maxTimestamp int64 |
/// | 43 | producerId int64 |
/// | 51 | producerEpoch int16 |
/// | 53 | baseSequence int32 |
/// | 57 | recordsCount int32 |
/// | 61 | records (compressed as a whole when the codec is not none) |
public struct RecordBatch: Hashable, Sendable {
    /// Byte offsets of the header fields from the start of a batch.
    public enum Offset {
        public static let baseOffset = 0
        public static let batchLength = 8
        public static let partitionLeaderEpoch = 12
        public static let magic = 16
        public static let crc = 17
        public static let attributes = 21
        public static let lastOffsetDelta = 23
        public static let baseTimestamp = 27
        public static let maxTimestamp = 35
        public static let producerId = 43
        public static let producerEpoch = 51
        public static let baseSequence = 53
        public static let recordsCount = 57
        public static let records = 61
    }

    /// baseOffset + batchLength: the bytes before the length-counted part (Kafka's LOG_OVERHEAD).
    public static let logOverhead = 12
    /// The size of a batch with no records.
    public static let headerSize = 61
    /// The magic byte of record batches v2.
    public static let currentMagic: Int8 = 2
    /// Default cap on the decompressed size of a batch's records (a zip-bomb guard).
    public static let defaultMaxDecompressedSize = 64 * 1024 * 1024
    /// Kafka's "no timestamp" value.
    public static let noTimestamp: Int64 = -1
    /// Kafka's "no producer id / epoch / sequence" value.
    public static let noProducerID: Int64 = -1

    /// Exactly the bytes of this batch, from `baseOffset` to the end of its records.
    public private(set) var buffer: ByteBuffer

    /// Wraps one complete batch. Checks the magic byte and that `batchLength` matches the size of
    /// `buffer` exactly; does not check the CRC (see ``validate()``).
    public init(_ buffer: ByteBuffer) throws(KafkaProtocolError) {
        let available = buffer.readableBytes
        guard available >= Self.logOverhead,
            let length = buffer.getInteger(at: buffer.readerIndex + Offset.batchLength, as: Int32.self)
        else {
            throw .truncated(what: "record batch header", needed: Self.logOverhead, available: available)
        }
        if available > Offset.magic, let magic = buffer.getInteger(at: buffer.readerIndex + Offset.magic, as: Int8.self) {
            try Self.checkMagic(magic)
        }
        try Self.checkBatchLength(length)
        let size = Self.logOverhead + Int(length)
        guard available >= size else {
            throw .truncated(what: "record batch", needed: size, available: available)
        }
        guard available == size else {
            throw .corruptRecordBatch("batchLength \(length) says \(size) bytes but the buffer holds \(available)")
        }
        self.buffer = buffer
    }

    /// Wraps bytes already checked by the batch iterator or the builder.
    init(unchecked buffer: ByteBuffer) {
        self.buffer = buffer
    }

    static func checkMagic(_ magic: Int8) throws(KafkaProtocolError) {
        switch magic {
        case 2:
            return
        case 0, 1:
            throw .corruptRecordBatch(
                "legacy message set (magic \(magic), Kafka before 0.11) is not supported; Petrel reads record batches v2 only"
            )
        default:
            throw .corruptRecordBatch("unknown magic byte \(magic)")
        }
    }

    static func checkBatchLength(_ length: Int32) throws(KafkaProtocolError) {
        guard Int(length) >= Self.headerSize - Self.logOverhead else {
            throw .corruptRecordBatch(
                "batchLength \(length) is smaller than the \(Self.headerSize - Self.logOverhead) bytes of a batch header"
            )
        }
    }

    // The initialiser guarantees at least `headerSize` readable bytes, so these reads cannot
    // fail; the fallback to zero is never taken and only avoids a trap.
    @inline(__always)
    private func field<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        return buffer.getInteger(at: buffer.readerIndex + offset, as: T.self) ?? 0
    }

    @inline(__always)
    private mutating func setField<T: FixedWidthInteger>(_ offset: Int, _ value: T) {
        buffer.setInteger(value, at: buffer.readerIndex + offset)
    }

    /// The offset of the first record. Not covered by the CRC: the broker assigns it in place.
    public var baseOffset: Int64 {
        get { field(Offset.baseOffset) }
        set { setField(Offset.baseOffset, newValue) }
    }

    /// The number of bytes after the `batchLength` field.
    public var batchLength: Int32 { field(Offset.batchLength) }

    /// Not covered by the CRC: the leader stamps its epoch in place.
    public var partitionLeaderEpoch: Int32 {
        get { field(Offset.partitionLeaderEpoch) }
        set { setField(Offset.partitionLeaderEpoch, newValue) }
    }

    public var magic: Int8 { field(Offset.magic) }

    /// The CRC stored in the batch.
    public var crc: UInt32 { field(Offset.crc) }

    public var attributes: RecordBatchAttributes { RecordBatchAttributes(rawValue: field(Offset.attributes)) }

    public var compression: CompressionCodec? { attributes.compression }
    public var timestampType: TimestampType { attributes.timestampType }
    public var isTransactional: Bool { attributes.isTransactional }
    public var isControl: Bool { attributes.isControl }

    public var lastOffsetDelta: Int32 { field(Offset.lastOffsetDelta) }
    public var baseTimestamp: Int64 { field(Offset.baseTimestamp) }
    public var maxTimestamp: Int64 { field(Offset.maxTimestamp) }
    public var producerId: Int64 { field(Offset.producerId) }
    public var producerEpoch: Int16 { field(Offset.producerEpoch) }
    public var baseSequence: Int32 { field(Offset.baseSequence) }
    /// The declared number of records.
    public var recordCount: Int32 { field(Offset.recordsCount) }

    /// The offset of the last record: `baseOffset + lastOffsetDelta`.
    public var lastOffset: Int64 { baseOffset &+ Int64(lastOffsetDelta) }
    /// The offset after this batch.
    public var nextOffset: Int64 { lastOffset &+ 1 }
    /// The sequence number of the last record, wrapping as Kafka does; -1 without idempotence.
    public var lastSequence: Int32 {
        let base = baseSequence
        guard base >= 0 else { return -1 }
        let last = Int64(base) + Int64(lastOffsetDelta)
        return last > Int64(Int32.max) ? Int32(last - Int64(Int32.max) - 1) : Int32(last)
    }

    /// Size of the whole batch in bytes.
    public var sizeInBytes: Int { buffer.readableBytes }

    /// The records section (compressed bytes when the batch is compressed), sharing storage.
    public var recordsBytes: ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + Offset.records, length: buffer.readableBytes - Offset.records)
            ?? ByteBuffer()
    }

    /// The CRC-32C of the bytes the CRC covers (attributes to the end).
    public var computedCRC: UInt32 {
        let start = buffer.readerIndex + Offset.attributes
        return CRC32C.checksum(buffer, at: start, length: buffer.writerIndex - start) ?? 0
    }

    public var isCRCValid: Bool { computedCRC == crc }

    /// Checks the CRC, the codec id and the record count, without decoding any record.
    public func validate() throws(KafkaProtocolError) {
        let computed = computedCRC
        let stored = crc
        guard computed == stored else {
            throw .corruptRecordBatch(
                "CRC mismatch: stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16))"
            )
        }
        try validateStructure()
    }

    /// The checks of ``validate()`` other than the CRC.
    func validateStructure() throws(KafkaProtocolError) {
        guard compression != nil else {
            throw .corruptRecordBatch("unknown compression codec id \(attributes.compressionID)")
        }
        guard recordCount >= 0 else {
            throw .corruptRecordBatch("negative record count \(recordCount)")
        }
        guard lastOffsetDelta >= -1 else {
            throw .corruptRecordBatch("negative lastOffsetDelta \(lastOffsetDelta)")
        }
    }

    /// Recomputes and stores the CRC, after changing fields it covers.
    public mutating func updateCRC() {
        setField(Offset.crc, computedCRC)
    }

    /// Marks the batch as log-append-time with the broker's timestamp, as Kafka's broker does for
    /// topics with `message.timestamp.type=LogAppendTime`, and updates the CRC.
    public mutating func setLogAppendTime(_ timestamp: Int64) {
        var attributes = self.attributes
        attributes.timestampType = .logAppendTime
        setField(Offset.attributes, attributes.rawValue)
        setField(Offset.maxTimestamp, timestamp)
        updateCRC()
    }

    /// Sets the base offset and the partition leader epoch of the batch that starts at `index` in
    /// `records`, in place (no copy when `records` is uniquely referenced). Neither field is
    /// covered by the CRC.
    public static func assign(
        baseOffset: Int64, partitionLeaderEpoch: Int32, inBatchAt index: Int, of records: inout ByteBuffer
    ) throws(KafkaProtocolError) {
        guard index >= records.readerIndex, index <= records.writerIndex - Offset.magic else {
            throw .truncated(
                what: "record batch header", needed: Offset.magic, available: max(0, records.writerIndex - index))
        }
        records.setInteger(baseOffset, at: index + Offset.baseOffset)
        records.setInteger(partitionLeaderEpoch, at: index + Offset.partitionLeaderEpoch)
    }
}

extension RecordBatch: CustomStringConvertible {
    public var description: String {
        "RecordBatch(baseOffset: \(baseOffset), lastOffsetDelta: \(lastOffsetDelta), records: \(recordCount), "
            + "size: \(sizeInBytes), epoch: \(partitionLeaderEpoch), attributes: \(attributes), "
            + "producer: \(producerId)/\(producerEpoch)/\(baseSequence))"
    }
}
