import NIOCore

/// Encodes records into one record batch v2, with the CRC and optional gzip compression.
///
/// Records are encoded as they are appended, straight after room left for the header, so an
/// uncompressed batch is built in a single buffer without copying. ``build()`` leaves the builder
/// empty with the same settings, ready for the next batch.
///
/// ```swift
/// var builder = RecordBatchBuilder(compression: .gzip)
/// try builder.append(key: nil, value: ByteBuffer(string: "hello"), timestamp: now)
/// let batch = try builder.build()     // batch.buffer is ready for a Produce request
/// ```
public struct RecordBatchBuilder: Sendable {
    public var baseOffset: Int64
    public var partitionLeaderEpoch: Int32
    /// none or gzip; the other codecs throw at ``build()``.
    public var compression: CompressionCodec
    /// zlib level for gzip, -1 for zlib's default.
    public var compressionLevel: Int
    public var timestampType: TimestampType
    public var isTransactional: Bool
    public var isControl: Bool
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32

    /// The number of records appended so far.
    public private(set) var recordCount: Int = 0
    /// The timestamp of the first record (Kafka's choice of base timestamp), -1 before any.
    public private(set) var baseTimestamp: Int64 = RecordBatch.noTimestamp
    /// The largest record timestamp so far, -1 before any.
    public private(set) var maxTimestamp: Int64 = RecordBatch.noTimestamp

    private var allocator: ByteBufferAllocator
    /// `RecordBatch.headerSize` bytes reserved for the header, then the encoded records.
    private var buffer: ByteBuffer

    public init(
        baseOffset: Int64 = 0,
        partitionLeaderEpoch: Int32 = -1,
        compression: CompressionCodec = .none,
        compressionLevel: Int = GzipCodec.defaultLevel,
        timestampType: TimestampType = .createTime,
        isTransactional: Bool = false,
        isControl: Bool = false,
        producerId: Int64 = RecordBatch.noProducerID,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        initialCapacity: Int = 1024,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) {
        self.baseOffset = baseOffset
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.compression = compression
        self.compressionLevel = compressionLevel
        self.timestampType = timestampType
        self.isTransactional = isTransactional
        self.isControl = isControl
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.allocator = allocator
        self.buffer = allocator.buffer(capacity: max(initialCapacity, RecordBatch.headerSize))
        self.buffer.writeRepeatingByte(0, count: RecordBatch.headerSize)
    }

    /// The size of the batch so far, uncompressed.
    public var uncompressedSizeInBytes: Int { max(buffer.readableBytes, RecordBatch.headerSize) }

    /// Whether no record was appended.
    public var isEmpty: Bool { recordCount == 0 }

    /// Appends a record; its offset delta is its position in the batch.
    public mutating func append(
        key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = [], timestamp: Int64, attributes: Int8 = 0
    ) throws(KafkaProtocolError) {
        guard recordCount < Int(Int32.max) else {
            throw .invalidLength(what: "record count", length: recordCount + 1)
        }
        if recordCount == 0 {
            baseTimestamp = timestamp
            if buffer.readableBytes < RecordBatch.headerSize {
                buffer.writeRepeatingByte(0, count: RecordBatch.headerSize - buffer.readableBytes)
            }
        }
        let offsetDelta = Int32(recordCount)
        let timestampDelta = timestamp &- baseTimestamp

        var bodySize = 1 + VarintSize.signed(timestampDelta) + VarintSize.signed(Int64(offsetDelta))
        bodySize += Self.encodedSize(key) + Self.encodedSize(value)
        bodySize += VarintSize.signed(Int64(headers.count))
        for header in headers {
            let keyLength = header.key.utf8.count
            bodySize += VarintSize.signed(Int64(keyLength)) + keyLength + Self.encodedSize(header.value)
        }
        guard bodySize <= Int(Int32.max) else {
            throw .invalidLength(what: "record", length: bodySize)
        }

        buffer.reserveCapacity(minimumWritableBytes: bodySize + 5)
        buffer.writeVarint(Int32(bodySize))
        buffer.writeInteger(attributes)
        buffer.writeVarlong(timestampDelta)
        buffer.writeVarint(offsetDelta)
        Self.write(key, to: &buffer)
        Self.write(value, to: &buffer)
        buffer.writeVarint(Int32(headers.count))
        for header in headers {
            buffer.writeVarint(Int32(header.key.utf8.count))
            buffer.writeString(header.key)
            Self.write(header.value, to: &buffer)
        }

        recordCount += 1
        if recordCount == 1 || timestamp > maxTimestamp { maxTimestamp = timestamp }
    }

    /// Appends a record's timestamp, key, value, headers and attributes (its offset and deltas
    /// are recomputed).
    public mutating func append(_ record: Record) throws(KafkaProtocolError) {
        try append(
            key: record.key, value: record.value, headers: record.headers, timestamp: record.timestamp,
            attributes: record.attributes)
    }

    @inline(__always)
    private static func encodedSize(_ bytes: ByteBuffer?) -> Int {
        guard let bytes else { return 1 }
        return VarintSize.signed(Int64(bytes.readableBytes)) + bytes.readableBytes
    }

    @inline(__always)
    private static func write(_ bytes: ByteBuffer?, to buffer: inout ByteBuffer) {
        guard var bytes else {
            buffer.writeVarint(-1)
            return
        }
        buffer.writeVarint(Int32(bytes.readableBytes))
        buffer.writeBuffer(&bytes)
    }

    /// Finishes the batch: compresses the records if asked, writes the header and the CRC.
    /// The builder is then empty, with the same settings, ready for the next batch.
    public mutating func build() throws(KafkaProtocolError) -> RecordBatch {
        guard compression.isSupported else {
            throw .unsupportedCompressionCodec(compression.description)
        }
        // Take the buffer out of the builder (no copy: it stays uniquely referenced, so the
        // header below is written in place) and leave the builder empty.
        var records = ByteBuffer()
        swap(&records, &buffer)
        let count = recordCount
        let baseTimestamp = self.baseTimestamp
        let maxTimestamp = self.maxTimestamp
        recordCount = 0
        self.baseTimestamp = RecordBatch.noTimestamp
        self.maxTimestamp = RecordBatch.noTimestamp
        if records.readableBytes < RecordBatch.headerSize {
            records.writeRepeatingByte(0, count: RecordBatch.headerSize - records.readableBytes)
        }

        var output = ByteBuffer()
        if compression == .gzip {
            let uncompressed = records.getSlice(
                at: records.readerIndex + RecordBatch.headerSize,
                length: records.readableBytes - RecordBatch.headerSize) ?? ByteBuffer()
            output = allocator.buffer(capacity: RecordBatch.headerSize + uncompressed.readableBytes / 2 + 64)
            output.writeRepeatingByte(0, count: RecordBatch.headerSize)
            try GzipCodec.compress(uncompressed, level: compressionLevel, into: &output)
        } else {
            swap(&output, &records)
        }
        let size = output.readableBytes
        guard size - RecordBatch.logOverhead <= Int(Int32.max) else {
            throw .invalidLength(what: "record batch", length: size)
        }
        let attributes = RecordBatchAttributes(
            compression: compression, timestampType: timestampType, isTransactional: isTransactional,
            isControl: isControl)
        let start = output.readerIndex
        typealias O = RecordBatch.Offset
        output.setInteger(baseOffset, at: start + O.baseOffset)
        output.setInteger(Int32(size - RecordBatch.logOverhead), at: start + O.batchLength)
        output.setInteger(partitionLeaderEpoch, at: start + O.partitionLeaderEpoch)
        output.setInteger(RecordBatch.currentMagic, at: start + O.magic)
        output.setInteger(attributes.rawValue, at: start + O.attributes)
        output.setInteger(Int32(count - 1), at: start + O.lastOffsetDelta)
        output.setInteger(baseTimestamp, at: start + O.baseTimestamp)
        output.setInteger(maxTimestamp, at: start + O.maxTimestamp)
        output.setInteger(producerId, at: start + O.producerId)
        output.setInteger(producerEpoch, at: start + O.producerEpoch)
        output.setInteger(baseSequence, at: start + O.baseSequence)
        output.setInteger(Int32(count), at: start + O.recordsCount)
        let crc = CRC32C.checksum(output, at: start + O.attributes, length: size - O.attributes) ?? 0
        output.setInteger(crc, at: start + O.crc)
        return RecordBatch(unchecked: output)
    }
}
