import NIOCore

/// Kafka's variable-length integers: unsigned LEB128 (`uvarint`, used for compact lengths and
/// tagged fields) and zig-zag signed varints/varlongs (used inside records).
extension ByteBuffer {
    /// Reads an unsigned varint of at most 5 bytes (32 bits).
    @inlinable
    public mutating func readUnsignedVarint() throws(KafkaProtocolError) -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        var index = self.readerIndex
        let end = self.writerIndex
        while true {
            guard index < end else {
                throw .truncated(what: "unsigned varint", needed: index - self.readerIndex + 1, available: end - self.readerIndex)
            }
            let byte = self.getInteger(at: index, as: UInt8.self)!
            index += 1
            if shift == 28 && byte > 0x0F { throw .varintTooLong }
            result |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        self.moveReaderIndex(to: index)
        return result
    }

    /// Reads an unsigned varlong of at most 10 bytes (64 bits).
    @inlinable
    public mutating func readUnsignedVarlong() throws(KafkaProtocolError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = self.readerIndex
        let end = self.writerIndex
        while true {
            guard index < end else {
                throw .truncated(what: "unsigned varlong", needed: index - self.readerIndex + 1, available: end - self.readerIndex)
            }
            let byte = self.getInteger(at: index, as: UInt8.self)!
            index += 1
            if shift == 63 && byte > 0x01 { throw .varintTooLong }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        self.moveReaderIndex(to: index)
        return result
    }

    /// Reads a zig-zag encoded signed 32-bit varint.
    @inlinable
    public mutating func readVarint() throws(KafkaProtocolError) -> Int32 {
        let raw = try self.readUnsignedVarint()
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Reads a zig-zag encoded signed 64-bit varlong.
    @inlinable
    public mutating func readVarlong() throws(KafkaProtocolError) -> Int64 {
        let raw = try self.readUnsignedVarlong()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarint(_ value: UInt32) -> Int {
        return self.writeUnsignedVarlong(UInt64(value))
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarlong(_ value: UInt64) -> Int {
        var v = value
        var written = 0
        while v >= 0x80 {
            written += self.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        written += self.writeInteger(UInt8(truncatingIfNeeded: v))
        return written
    }

    @inlinable
    @discardableResult
    public mutating func writeVarint(_ value: Int32) -> Int {
        let zigzag = UInt32(bitPattern: (value << 1) ^ (value >> 31))
        return self.writeUnsignedVarint(zigzag)
    }

    @inlinable
    @discardableResult
    public mutating func writeVarlong(_ value: Int64) -> Int {
        let zigzag = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        return self.writeUnsignedVarlong(zigzag)
    }
}

/// Encoded sizes, for callers that must know a length before writing.
public enum VarintSize {
    @inlinable
    public static func unsigned(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    @inlinable
    public static func signed(_ value: Int64) -> Int {
        return unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }
}
