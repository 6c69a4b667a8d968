import NIOCore

/// A record header: a UTF-8 key and nullable bytes.
public struct RecordHeader: Hashable, Sendable {
    public var key: String
    public var value: ByteBuffer?

    public init(key: String, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }
}

/// One record of a batch, decoded. `key`, `value` and header values are slices sharing the
/// storage of the batch (or of its decompressed records): decoding copies no payload.
///
/// Layout (Kafka's implementation docs, section 5.3.2): length varint, attributes int8,
/// timestampDelta varlong, offsetDelta varint, key (varint length, -1 for null, bytes), value
/// (likewise), header count varint, headers (varint key length, UTF-8 key, varint value length
/// with -1 for null, bytes).
public struct Record: Hashable, Sendable {
    /// The absolute offset: the batch's base offset plus ``offsetDelta``.
    public var offset: Int64
    /// The absolute timestamp: the batch's base timestamp plus ``timestampDelta``, or the batch's
    /// max timestamp when the batch is log-append-time (as Kafka reports it).
    public var timestamp: Int64
    /// Unused by Kafka so far; kept as read.
    public var attributes: Int8
    public var offsetDelta: Int32
    public var timestampDelta: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public init(
        offset: Int64 = 0, timestamp: Int64, attributes: Int8 = 0, offsetDelta: Int32 = 0, timestampDelta: Int64 = 0,
        key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = []
    ) {
        self.offset = offset
        self.timestamp = timestamp
        self.attributes = attributes
        self.offsetDelta = offsetDelta
        self.timestampDelta = timestampDelta
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// The smallest encoded record: length, attributes, timestamp delta, offset delta, key
    /// length, value length and header count, one byte each.
    static let minimumEncodedSize = 7

    /// Reads one record from `buffer` (positioned at its length varint). The fields are parsed
    /// with a cursor over the raw bytes (the hot loop of consuming); key, value and header values
    /// then become slices of `buffer`.
    static func read(
        from buffer: inout ByteBuffer, baseOffset: Int64, baseTimestamp: Int64, logAppendTime: Int64?
    ) throws(KafkaProtocolError) -> Record {
        let start = buffer.readerIndex
        let parsed = buffer.withUnsafeReadableBytes { RecordLayout.parse($0) }
        let layout: RecordLayout
        switch parsed {
        case let .success(value): layout = value
        case let .failure(error): throw error
        }
        var headers: [RecordHeader] = []
        if !layout.headers.isEmpty {
            headers.reserveCapacity(layout.headers.count)
            for header in layout.headers {
                headers.append(
                    RecordHeader(key: header.key, value: buffer.sliceIfPresent(at: start, header.valueStart, header.valueLength)))
            }
        }
        let record = Record(
            offset: baseOffset &+ Int64(layout.offsetDelta),
            timestamp: logAppendTime ?? (baseTimestamp &+ layout.timestampDelta),
            attributes: layout.attributes,
            offsetDelta: layout.offsetDelta,
            timestampDelta: layout.timestampDelta,
            key: buffer.sliceIfPresent(at: start, layout.keyStart, layout.keyLength),
            value: buffer.sliceIfPresent(at: start, layout.valueStart, layout.valueLength),
            headers: headers
        )
        buffer.moveReaderIndex(forwardBy: layout.size)
        return record
    }
}

extension ByteBuffer {
    /// The slice at `base + offset` of `length` bytes, nil for a negative (null) length. The
    /// parser has checked the bounds already; an impossible range also gives nil, never a trap.
    @inline(__always)
    fileprivate func sliceIfPresent(at base: Int, _ offset: Int, _ length: Int) -> ByteBuffer? {
        guard length >= 0 else { return nil }
        return getSlice(at: base + offset, length: length)
    }
}

/// Where the fields of one encoded record are, relative to its first byte.
private struct RecordLayout {
    struct Header {
        var key: String
        var valueStart: Int
        var valueLength: Int  // -1 for null
    }

    var size = 0  // the whole record, length prefix included
    var attributes: Int8 = 0
    var timestampDelta: Int64 = 0
    var offsetDelta: Int32 = 0
    var keyStart = 0
    var keyLength = -1
    var valueStart = 0
    var valueLength = -1
    var headers: [Header] = []

    /// Parses one record at the start of `bytes`. Every length is checked against the bytes
    /// that remain before it is used; nothing here can trap on hostile input.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<RecordLayout, KafkaProtocolError> {
        var cursor = Cursor(bytes: bytes, position: 0, end: bytes.count)
        var layout = RecordLayout()
        do {
            let length = try cursor.varint("record length")
            guard length >= 0 else { return .failure(.invalidLength(what: "record", length: Int(length))) }
            guard Int(length) <= cursor.end - cursor.position else {
                return .failure(.truncated(what: "record", needed: Int(length), available: cursor.end - cursor.position))
            }
            // From here on, the record's own length bounds every read.
            cursor.end = cursor.position + Int(length)
            layout.size = cursor.end
            layout.attributes = Int8(bitPattern: try cursor.byte("record attributes"))
            layout.timestampDelta = try cursor.varlong("record timestampDelta")
            layout.offsetDelta = try cursor.varint("record offsetDelta")
            (layout.keyStart, layout.keyLength) = try cursor.nullableBytes("record key")
            (layout.valueStart, layout.valueLength) = try cursor.nullableBytes("record value")
            let headerCount = try cursor.varint("record header count")
            // Each header takes at least two bytes (two lengths): a larger count is a lie.
            guard headerCount >= 0, Int(headerCount) <= (cursor.end - cursor.position) / 2 else {
                return .failure(.invalidLength(what: "record header count", length: Int(headerCount)))
            }
            if headerCount > 0 {
                layout.headers.reserveCapacity(Int(headerCount))
                for _ in 0..<headerCount {
                    let (keyStart, keyLength) = try cursor.nullableBytes("record header key")
                    guard keyLength >= 0 else {
                        return .failure(.invalidLength(what: "record header key", length: keyLength))
                    }
                    // Invalid UTF-8 is replaced, not rejected, as Kafka's Java client decodes keys.
                    let key = String(
                        decoding: UnsafeRawBufferPointer(rebasing: bytes[keyStart..<(keyStart + keyLength)]),
                        as: UTF8.self)
                    let (valueStart, valueLength) = try cursor.nullableBytes("record header value")
                    layout.headers.append(Header(key: key, valueStart: valueStart, valueLength: valueLength))
                }
            }
            guard cursor.position == cursor.end else {
                return .failure(
                    .corruptRecordBatch(
                        "record length \(length) leaves \(cursor.end - cursor.position) bytes unread after the last header"))
            }
            return .success(layout)
        } catch {
            return .failure(error)
        }
    }
}

/// A bounds-checked reader over raw bytes, for the record parser.
private struct Cursor {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    var end: Int

    @inline(__always)
    mutating func byte(_ what: String) throws(KafkaProtocolError) -> UInt8 {
        guard position < end else { throw .truncated(what: what, needed: 1, available: 0) }
        let value = bytes[position]
        position += 1
        return value
    }

    /// Unsigned LEB128 of at most `maxBytes` bytes (5 for 32 bits, 10 for 64).
    @inline(__always)
    mutating func unsigned(_ what: String, maxBytes: Int) throws(KafkaProtocolError) -> UInt64 {
        guard position < end else { throw .truncated(what: what, needed: 1, available: 0) }
        let first = bytes[position]
        if first < 0x80 {
            position += 1
            return UInt64(first)
        }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = position
        while true {
            guard index < end else {
                throw .truncated(what: what, needed: index - position + 1, available: end - position)
            }
            let byte = bytes[index]
            index += 1
            if index - position == maxBytes {
                // The last byte may only carry the bits that are left.
                let bitsLeft = maxBytes == 5 ? 4 : 1
                if byte >> bitsLeft != 0 { throw .varintTooLong }
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        position = index
        return result
    }

    @inline(__always)
    mutating func varint(_ what: String) throws(KafkaProtocolError) -> Int32 {
        let raw = UInt32(truncatingIfNeeded: try unsigned(what, maxBytes: 5))
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    @inline(__always)
    mutating func varlong(_ what: String) throws(KafkaProtocolError) -> Int64 {
        let raw = try unsigned(what, maxBytes: 10)
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A varint length (-1 for null) and that many bytes: returns where they start and the
    /// length, and steps over them.
    @inline(__always)
    mutating func nullableBytes(_ what: String) throws(KafkaProtocolError) -> (start: Int, length: Int) {
        let length = try varint(what)
        if length == -1 { return (position, -1) }
        guard length >= 0 else { throw .invalidLength(what: what, length: Int(length)) }
        guard Int(length) <= end - position else {
            throw .truncated(what: what, needed: Int(length), available: end - position)
        }
        let start = position
        position += Int(length)
        return (start, Int(length))
    }
}

/// Decodes the records of one batch, one at a time.
///
/// ```swift
/// var records = try batch.records()
/// while let record = try records.next() { ... }
/// ```
public struct RecordIterator: Sendable {
    private var bytes: ByteBuffer
    private let baseOffset: Int64
    private let baseTimestamp: Int64
    private let logAppendTime: Int64?
    /// The number of records the batch declares.
    public let count: Int
    /// How many records have been returned so far.
    public private(set) var index: Int = 0

    init(bytes: ByteBuffer, count: Int, baseOffset: Int64, baseTimestamp: Int64, logAppendTime: Int64?) {
        self.bytes = bytes
        self.count = count
        self.baseOffset = baseOffset
        self.baseTimestamp = baseTimestamp
        self.logAppendTime = logAppendTime
    }

    /// The next record, or nil after the declared count. Throws on malformed records, on records
    /// missing before the declared count and on bytes left after it.
    public mutating func next() throws(KafkaProtocolError) -> Record? {
        guard index < count else {
            guard bytes.readableBytes == 0 else {
                throw .corruptRecordBatch(
                    "\(bytes.readableBytes) bytes left after the \(count) records the batch declares")
            }
            return nil
        }
        guard bytes.readableBytes > 0 else {
            throw .corruptRecordBatch("the batch declares \(count) records but holds only \(index)")
        }
        let record = try Record.read(
            from: &bytes, baseOffset: baseOffset, baseTimestamp: baseTimestamp, logAppendTime: logAppendTime)
        index += 1
        return record
    }
}

extension RecordBatch {
    /// An iterator over the batch's records. Uncompressed records are read in place; gzip records
    /// are inflated first into one buffer of at most `maxDecompressedSize` bytes. Batches in
    /// snappy, lz4 or zstd throw ``KafkaProtocolError/unsupportedCompressionCodec(_:)``.
    /// Does not check the CRC: call ``validate()`` for that.
    public func records(
        maxDecompressedSize: Int = RecordBatch.defaultMaxDecompressedSize,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(KafkaProtocolError) -> RecordIterator {
        let declared = recordCount
        guard declared >= 0 else {
            throw .corruptRecordBatch("negative record count \(declared)")
        }
        let bytes: ByteBuffer
        switch compression {
        case .none?:
            bytes = recordsBytes
        case .gzip?:
            bytes = try GzipCodec.decompress(recordsBytes, maxSize: maxDecompressedSize, allocator: allocator)
        case let codec?:
            throw .unsupportedCompressionCodec(codec.description)
        case nil:
            throw .corruptRecordBatch("unknown compression codec id \(attributes.compressionID)")
        }
        guard Int(declared) <= bytes.readableBytes / Record.minimumEncodedSize else {
            throw .corruptRecordBatch(
                "the batch declares \(declared) records in only \(bytes.readableBytes) bytes of records")
        }
        return RecordIterator(
            bytes: bytes,
            count: Int(declared),
            baseOffset: baseOffset,
            baseTimestamp: baseTimestamp,
            logAppendTime: timestampType == .logAppendTime ? maxTimestamp : nil
        )
    }

    /// All records of the batch (see ``records(maxDecompressedSize:allocator:)``).
    public func decodeRecords(
        maxDecompressedSize: Int = RecordBatch.defaultMaxDecompressedSize,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(KafkaProtocolError) -> [Record] {
        var iterator = try records(maxDecompressedSize: maxDecompressedSize, allocator: allocator)
        var result: [Record] = []
        result.reserveCapacity(iterator.count)
        while let record = try iterator.next() { result.append(record) }
        return result
    }
}
