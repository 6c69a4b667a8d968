import NIOCore

/// Reading and writing the Kafka protocol's primitive types over a `ByteBuffer`.
///
/// Every read is bounds-checked and throws `KafkaProtocolError` on short or malformed input;
/// lengths and counts are checked against the bytes that remain before anything is allocated.
/// `compact` selects the flexible-version encodings (unsigned-varint lengths offset by one).
extension ByteBuffer {
    // MARK: fixed-width

    @inlinable
    public mutating func readKafkaInteger<T: FixedWidthInteger>(_: T.Type = T.self) throws(KafkaProtocolError) -> T {
        guard let value = self.readInteger(endianness: .big, as: T.self) else {
            throw .truncated(what: "\(T.self)", needed: MemoryLayout<T>.size, available: self.readableBytes)
        }
        return value
    }

    @inlinable
    public mutating func readKafkaBool() throws(KafkaProtocolError) -> Bool {
        return try self.readKafkaInteger(UInt8.self) != 0
    }

    @inlinable
    public mutating func writeKafkaBool(_ value: Bool) {
        self.writeInteger(value ? 1 : 0, as: UInt8.self)
    }

    @inlinable
    public mutating func readKafkaFloat64() throws(KafkaProtocolError) -> Double {
        return Double(bitPattern: try self.readKafkaInteger(UInt64.self))
    }

    @inlinable
    public mutating func writeKafkaFloat64(_ value: Double) {
        self.writeInteger(value.bitPattern, endianness: .big)
    }

    @inlinable
    public mutating func readKafkaUUID() throws(KafkaProtocolError) -> KafkaUUID {
        let high = try self.readKafkaInteger(UInt64.self)
        let low = try self.readKafkaInteger(UInt64.self)
        return KafkaUUID(high: high, low: low)
    }

    @inlinable
    public mutating func writeKafkaUUID(_ value: KafkaUUID) {
        self.writeInteger(value.high, endianness: .big)
        self.writeInteger(value.low, endianness: .big)
    }

    // MARK: lengths

    /// Reads a length prefix: int16 (strings) / int32 (bytes, arrays) or a compact uvarint.
    /// Returns -1 for null.
    @inlinable
    mutating func readKafkaLength(compact: Bool, wide: Bool) throws(KafkaProtocolError) -> Int {
        if compact {
            return Int(try self.readUnsignedVarint()) - 1
        } else if wide {
            return Int(try self.readKafkaInteger(Int32.self))
        } else {
            return Int(try self.readKafkaInteger(Int16.self))
        }
    }

    @inlinable
    mutating func writeKafkaLength(_ length: Int, compact: Bool, wide: Bool, what: StaticString) throws(KafkaProtocolError) {
        if compact {
            guard length < Int(UInt32.max) else { throw .invalidLength(what: "\(what)", length: length) }
            self.writeUnsignedVarint(UInt32(length + 1))
        } else if wide {
            guard length <= Int(Int32.max) else { throw .invalidLength(what: "\(what)", length: length) }
            self.writeInteger(Int32(length), endianness: .big)
        } else {
            guard length <= Int(Int16.max) else { throw .invalidLength(what: "\(what)", length: length) }
            self.writeInteger(Int16(length), endianness: .big)
        }
    }

    // MARK: strings

    @inlinable
    public mutating func readKafkaNullableString(compact: Bool) throws(KafkaProtocolError) -> String? {
        let length = try self.readKafkaLength(compact: compact, wide: false)
        if length < 0 {
            guard length == -1 else { throw .invalidLength(what: "string", length: length) }
            return nil
        }
        guard length <= self.readableBytes else {
            throw .truncated(what: "string", needed: length, available: self.readableBytes)
        }
        let value: String? = self.withUnsafeReadableBytes { raw in
            String(validating: UnsafeRawBufferPointer(rebasing: raw[0..<length]), as: UTF8.self)
        }
        guard let value else { throw .invalidUTF8(what: "string") }
        self.moveReaderIndex(forwardBy: length)
        return value
    }

    @inlinable
    public mutating func readKafkaString(compact: Bool, field: StaticString) throws(KafkaProtocolError) -> String {
        guard let value = try self.readKafkaNullableString(compact: compact) else {
            throw .unexpectedNull(field: "\(field)")
        }
        return value
    }

    @inlinable
    public mutating func writeKafkaString(_ value: String, compact: Bool) throws(KafkaProtocolError) {
        try self.writeKafkaLength(value.utf8.count, compact: compact, wide: false, what: "string")
        self.writeString(value)
    }

    @inlinable
    public mutating func writeKafkaNullableString(_ value: String?, compact: Bool) throws(KafkaProtocolError) {
        if let value {
            try self.writeKafkaString(value, compact: compact)
        } else if compact {
            self.writeUnsignedVarint(0)
        } else {
            self.writeInteger(Int16(-1), endianness: .big)
        }
    }

    // MARK: bytes (and records): zero-copy slices of the input

    @inlinable
    public mutating func readKafkaNullableBytes(compact: Bool) throws(KafkaProtocolError) -> ByteBuffer? {
        let length = try self.readKafkaLength(compact: compact, wide: true)
        if length < 0 {
            guard length == -1 else { throw .invalidLength(what: "bytes", length: length) }
            return nil
        }
        guard let slice = self.readSlice(length: length) else {
            throw .truncated(what: "bytes", needed: length, available: self.readableBytes)
        }
        return slice
    }

    @inlinable
    public mutating func readKafkaBytes(compact: Bool, field: StaticString) throws(KafkaProtocolError) -> ByteBuffer {
        guard let value = try self.readKafkaNullableBytes(compact: compact) else {
            throw .unexpectedNull(field: "\(field)")
        }
        return value
    }

    @inlinable
    public mutating func writeKafkaBytes(_ value: ByteBuffer, compact: Bool) throws(KafkaProtocolError) {
        try self.writeKafkaLength(value.readableBytes, compact: compact, wide: true, what: "bytes")
        self.writeImmutableBuffer(value)
    }

    @inlinable
    public mutating func writeKafkaNullableBytes(_ value: ByteBuffer?, compact: Bool) throws(KafkaProtocolError) {
        if let value {
            try self.writeKafkaBytes(value, compact: compact)
        } else if compact {
            self.writeUnsignedVarint(0)
        } else {
            self.writeInteger(Int32(-1), endianness: .big)
        }
    }

    // MARK: arrays

    /// Reads an array count; -1 means null. A count larger than the bytes left is refused before
    /// anything is allocated (as Kafka does).
    @inlinable
    public mutating func readKafkaArrayCount(compact: Bool) throws(KafkaProtocolError) -> Int {
        let count = try self.readKafkaLength(compact: compact, wide: true)
        if count < 0 {
            guard count == -1 else { throw .invalidLength(what: "array", length: count) }
            return -1
        }
        guard count <= self.readableBytes else {
            throw .invalidLength(what: "array of \(count) elements with \(self.readableBytes) bytes left", length: count)
        }
        return count
    }

    @inlinable
    public mutating func readKafkaNonNullArrayCount(compact: Bool, field: StaticString) throws(KafkaProtocolError) -> Int {
        let count = try self.readKafkaArrayCount(compact: compact)
        guard count >= 0 else { throw .unexpectedNull(field: "\(field)") }
        return count
    }

    @inlinable
    public mutating func writeKafkaArrayCount(_ count: Int, compact: Bool) throws(KafkaProtocolError) {
        try self.writeKafkaLength(count, compact: compact, wide: true, what: "array")
    }

    @inlinable
    public mutating func writeKafkaNullArray(compact: Bool) {
        if compact {
            self.writeUnsignedVarint(0)
        } else {
            self.writeInteger(Int32(-1), endianness: .big)
        }
    }

    // MARK: tagged fields

    /// Reads the payload of one tagged field: its size, then a slice of that many bytes.
    @inlinable
    public mutating func readKafkaTaggedFieldPayload() throws(KafkaProtocolError) -> ByteBuffer {
        let size = Int(try self.readUnsignedVarint())
        guard let slice = self.readSlice(length: size) else {
            throw .truncated(what: "tagged field", needed: size, available: self.readableBytes)
        }
        return slice
    }

    /// Writes unknown tagged fields whose tag is below `limit`, starting at `index`; returns the
    /// index of the first one not written. Unknown fields are kept sorted by tag, as decoded.
    @inlinable
    public mutating func writeUnknownTaggedFields(_ fields: [TaggedField], from index: Int, below limit: UInt64) -> Int {
        var i = index
        while i < fields.count && UInt64(fields[i].tag) < limit {
            self.writeUnsignedVarint(fields[i].tag)
            self.writeUnsignedVarint(UInt32(fields[i].data.readableBytes))
            self.writeImmutableBuffer(fields[i].data)
            i += 1
        }
        return i
    }

    /// Writes a known tagged field: tag, size, payload. `payload` was encoded separately so its
    /// size is known.
    @inlinable
    public mutating func writeKafkaTaggedField(tag: UInt32, payload: ByteBuffer) {
        self.writeUnsignedVarint(tag)
        self.writeUnsignedVarint(UInt32(payload.readableBytes))
        self.writeImmutableBuffer(payload)
    }
}

extension ByteBuffer {
    /// Reads a tagged-field section whose tags are all unknown to this struct.
    @inlinable
    public mutating func readKafkaUnknownTaggedFields() throws(KafkaProtocolError) -> [TaggedField] {
        let count = try self.readUnsignedVarint()
        if count == 0 { return [] }
        guard Int(count) <= self.readableBytes else {
            throw .invalidLength(what: "tagged fields", length: Int(count))
        }
        var fields = [TaggedField]()
        var index: UInt32 = 0
        while index < count {
            let tag = try self.readUnsignedVarint()
            fields.append(TaggedField(tag: tag, data: try self.readKafkaTaggedFieldPayload()))
            index += 1
        }
        return fields
    }
}
