import CZlib
import NIOCore

/// gzip for record batches, through zlib. Kafka's gzip is a plain gzip stream (Java's
/// `GZIPOutputStream`); concatenated gzip members are read as one stream, as Java's
/// `GZIPInputStream` does.
public enum GzipCodec {
    /// zlib's default level (6).
    public static let defaultLevel = -1

    /// Appends the gzip compression of `input`'s readable bytes to `output`.
    /// `level` is zlib's: -1 for the default, 0 (store) to 9 (best).
    public static func compress(
        _ input: ByteBuffer, level: Int = GzipCodec.defaultLevel, into output: inout ByteBuffer
    ) throws(KafkaProtocolError) {
        guard (-1...9).contains(level) else {
            throw .compressionFailed("gzip level \(level) is outside -1...9")
        }
        guard input.readableBytes <= Int(UInt32.max) else {
            throw .compressionFailed("gzip input of \(input.readableBytes) bytes is too large")
        }
        var stream = z_stream()
        // windowBits 15 + 16: a gzip header and trailer rather than zlib's.
        var rc = deflateInit2_(
            &stream, Int32(level), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            throw .compressionFailed("gzip: deflateInit2 failed (\(rc))")
        }
        defer { deflateEnd(&stream) }
        // deflateBound is enough for a single deflate(Z_FINISH) call to finish.
        let bound = Int(deflateBound(&stream, uLong(input.readableBytes)))
        _ = input.withUnsafeReadableBytes { source in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { target in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(min(target.count, Int(UInt32.max)))
                let before = Int(stream.avail_out)
                rc = deflate(&stream, Z_FINISH)
                return rc == Z_STREAM_END ? before - Int(stream.avail_out) : 0
            }
        }
        guard rc == Z_STREAM_END else {
            throw .compressionFailed("gzip: deflate did not finish (\(rc))")
        }
    }

    /// The gzip compression of `input`'s readable bytes.
    public static func compress(
        _ input: ByteBuffer, level: Int = GzipCodec.defaultLevel,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(KafkaProtocolError) -> ByteBuffer {
        var output = allocator.buffer(capacity: input.readableBytes / 2 + 64)
        try compress(input, level: level, into: &output)
        return output
    }

    private enum InflateOutcome {
        case done
        case tooLarge
        case truncated
        case corrupt(String)
    }

    /// Inflates the gzip stream in `input`'s readable bytes. Throws
    /// ``KafkaProtocolError/compressionFailed(_:)`` if the output would exceed `maxSize` bytes
    /// (a zip-bomb guard), if the stream is corrupt, or if it ends early.
    public static func decompress(
        _ input: ByteBuffer, maxSize: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(KafkaProtocolError) -> ByteBuffer {
        guard input.readableBytes <= Int(UInt32.max) else {
            throw .compressionFailed("gzip input of \(input.readableBytes) bytes is too large")
        }
        // ByteBuffer capacities stop at UInt32.max; the cap also keeps limit + 1 from overflowing.
        let limit = min(max(0, maxSize), Int(UInt32.max) - 1)
        var stream = z_stream()
        // windowBits 15 + 32: gzip or zlib header, detected automatically.
        let rc = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            throw .compressionFailed("gzip: inflateInit2 failed (\(rc))")
        }
        defer { inflateEnd(&stream) }

        // Records compress 2-10x; start at 4x the input, grow by doubling, never past limit + 1
        // (one byte more than allowed is how an oversized stream is detected).
        var output = allocator.buffer(capacity: min(limit + 1, max(4096, input.readableBytes * 4)))
        let outcome: InflateOutcome = input.withUnsafeReadableBytes { source in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(source.count)
            while true {
                let allowed = limit + 1 - output.writerIndex
                if allowed <= 0 { return .tooLarge }
                if output.writableBytes == 0 {
                    output.reserveCapacity(minimumWritableBytes: min(allowed, max(4096, output.capacity)))
                }
                var ret: Int32 = Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 1) { target in
                    let room = min(target.count, allowed, Int(UInt32.max))
                    stream.next_out = target.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(room)
                    ret = inflate(&stream, Z_NO_FLUSH)
                    return room - Int(stream.avail_out)
                }
                if output.writerIndex > limit { return .tooLarge }
                switch ret {
                case Z_STREAM_END:
                    // Another gzip member follows: continue with it, as GZIPInputStream does.
                    // Anything else after the first member is ignored, as GZIPInputStream does.
                    guard stream.avail_in >= 2, let next = stream.next_in, next[0] == 0x1F, next[1] == 0x8B else {
                        return .done
                    }
                    guard inflateReset(&stream) == Z_OK else { return .corrupt("inflateReset failed") }
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    // No progress possible: either the output is full (grow it) or the input ran out.
                    if stream.avail_out == 0 { continue }
                    return .truncated
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(ret)"
                    return .corrupt(message)
                }
            }
        }
        switch outcome {
        case .done:
            return output
        case .tooLarge:
            throw .compressionFailed("gzip: decompressed records exceed the limit of \(limit) bytes")
        case .truncated:
            throw .compressionFailed("gzip: compressed data ends before the end of the stream")
        case let .corrupt(message):
            throw .compressionFailed("gzip: corrupt compressed data: \(message)")
        }
    }
}
