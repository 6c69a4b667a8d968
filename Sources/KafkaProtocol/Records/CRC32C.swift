import CCRC32C
import NIOCore

/// CRC-32C (Castagnoli), the checksum of record batches v2.
///
/// "Extend" style, as Kafka's `Crc32C` uses it: start from 0 and feed a previous result back in
/// to continue over more bytes, so `update(checksum(a), b) == checksum(a + b)`.
/// Backed by the `CCRC32C` C target: SSE4.2 (three interleaved streams) on x86-64, the ARMv8 CRC
/// instructions where compiled for them, a slicing-by-8 table everywhere else.
/// Works on a `ByteBuffer`'s readable bytes in place, without copying.
public enum CRC32C {
    /// The CRC-32C of the buffer's readable bytes.
    @inlinable
    public static func checksum(_ buffer: ByteBuffer) -> UInt32 {
        return update(0, buffer)
    }

    /// Continues `crc` over the buffer's readable bytes.
    public static func update(_ crc: UInt32, _ buffer: ByteBuffer) -> UInt32 {
        return buffer.withUnsafeReadableBytes { update(crc, bytes: $0) }
    }

    /// The CRC-32C of `length` bytes of `buffer` starting at `index`, or nil if that range is not
    /// readable. Does not move the reader index.
    public static func checksum(_ buffer: ByteBuffer, at index: Int, length: Int) -> UInt32? {
        guard length >= 0, index >= buffer.readerIndex, index <= buffer.writerIndex - length else {
            return nil
        }
        return buffer.withUnsafeReadableBytes { bytes in
            let start = index - buffer.readerIndex
            return update(0, bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
        }
    }

    /// The CRC-32C of raw bytes.
    @inlinable
    public static func checksum(bytes: UnsafeRawBufferPointer) -> UInt32 {
        return update(0, bytes: bytes)
    }

    /// Continues `crc` over raw bytes.
    public static func update(_ crc: UInt32, bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return petrel_crc32c(crc, base, bytes.count)
    }

    /// The CRC-32C of a byte collection (an array, a string's UTF-8 view, ...).
    public static func checksum<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt32 {
        if let crc = bytes.withContiguousStorageIfAvailable({ update(0, bytes: UnsafeRawBufferPointer($0)) }) {
            return crc
        }
        let array = Array(bytes)
        return array.withUnsafeBytes { update(0, bytes: $0) }
    }

    /// The CRC of `a + b`, given the CRCs of `a` and `b` and the length of `b`.
    public static func combine(_ crcA: UInt32, _ crcB: UInt32, lengthB: Int) -> UInt32 {
        return petrel_crc32c_combine(crcA, crcB, max(0, lengthB))
    }

    /// Whether `update` uses a hardware CRC instruction on this CPU.
    public static var isHardwareAccelerated: Bool {
        return petrel_crc32c_hw_available() != 0
    }

    /// The portable table implementation, whatever the CPU supports. For tests and benchmarks.
    public static func softwareUpdate(_ crc: UInt32, bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return petrel_crc32c_sw(crc, base, bytes.count)
    }

    /// The portable table implementation over a buffer's readable bytes.
    public static func softwareChecksum(_ buffer: ByteBuffer) -> UInt32 {
        return buffer.withUnsafeReadableBytes { softwareUpdate(0, bytes: $0) }
    }
}
