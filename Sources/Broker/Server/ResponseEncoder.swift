import KafkaProtocol
import NIOCore

/// Encodes a response frame (size, header, body) as a list of buffers to write in one go.
///
/// Fetch responses carry record batches read from the log; copying them into the response buffer
/// would be a second copy of every byte a consumer reads. Instead each large `records` field is
/// encoded as a 16-byte random marker, the marker is found again in the (small) encoded frame,
/// and the frame is split there: the record bytes are written to the socket from the buffer the
/// log filled (a gathering write), after a length prefix for their real size.
enum ResponseEncoder {
    /// Records smaller than this are copied; the split is not worth it for them.
    static let splitThreshold = 16 * 1024

    static func encode(_ response: KafkaResponse, version: Int16, correlationId: Int32,
                       allocator: ByteBufferAllocator) throws(KafkaProtocolError) -> [ByteBuffer] {
        var body = response
        var pulled = [ByteBuffer]()
        var marker = ByteBuffer()
        if case .fetch(var fetch) = response {
            var random = SystemRandomNumberGenerator()
            marker = allocator.buffer(capacity: 16)
            marker.writeInteger(random.next() as UInt64)
            marker.writeInteger(random.next() as UInt64)
            for t in fetch.responses.indices {
                for p in fetch.responses[t].partitions.indices {
                    guard let records = fetch.responses[t].partitions[p].records, records.readableBytes >= splitThreshold else { continue }
                    pulled.append(records)
                    fetch.responses[t].partitions[p].records = marker
                }
            }
            if !pulled.isEmpty { body = .fetch(fetch) }
        }
        var frame = allocator.buffer(capacity: 256)
        frame.writeInteger(Int32(0))
        try ResponseHeader(correlationId: correlationId).encode(into: &frame, version: response.apiKey.responseHeaderVersion(for: version))
        try body.encode(into: &frame, version: version)
        guard !pulled.isEmpty else {
            frame.setInteger(Int32(frame.readableBytes - 4), at: frame.readerIndex)
            return [frame]
        }
        let flexible = ApiKey.fetch.firstFlexibleVersion.map { version >= $0 } ?? false
        // The marker's encoded length prefix: int32 16, or uvarint 17 in flexible versions.
        var oldPrefix = ByteBuffer()
        if flexible { oldPrefix.writeUnsignedVarint(17) } else { oldPrefix.writeInteger(Int32(16)) }
        var needle = oldPrefix
        needle.writeImmutableBuffer(marker)
        let needleBytes = Array(needle.readableBytesView)

        var chunks = [ByteBuffer]()
        var total = 0
        var searchFrom = frame.readerIndex + 4
        var chunkStart = frame.readerIndex
        for records in pulled {
            guard let at = find(needleBytes, in: frame, from: searchFrom) else {
                // Cannot happen (the encoder wrote every marker); fall back to copying.
                return try copyEncode(response, version: version, correlationId: correlationId, allocator: allocator)
            }
            var head = frame.getSlice(at: chunkStart, length: at - chunkStart)!
            if flexible { head.writeUnsignedVarint(UInt32(records.readableBytes + 1)) } else { head.writeInteger(Int32(records.readableBytes)) }
            total += head.readableBytes + records.readableBytes
            chunks.append(head)
            chunks.append(records)
            searchFrom = at + needleBytes.count
            chunkStart = searchFrom
        }
        let tail = frame.getSlice(at: chunkStart, length: frame.writerIndex - chunkStart)!
        total += tail.readableBytes
        chunks.append(tail)
        chunks[0].setInteger(Int32(total - 4), at: chunks[0].readerIndex)
        return chunks
    }

    private static func copyEncode(_ response: KafkaResponse, version: Int16, correlationId: Int32,
                                   allocator: ByteBufferAllocator) throws(KafkaProtocolError) -> [ByteBuffer] {
        var frame = allocator.buffer(capacity: 256)
        frame.writeInteger(Int32(0))
        try ResponseHeader(correlationId: correlationId).encode(into: &frame, version: response.apiKey.responseHeaderVersion(for: version))
        try response.encode(into: &frame, version: version)
        frame.setInteger(Int32(frame.readableBytes - 4), at: frame.readerIndex)
        return [frame]
    }

    /// The index of the first occurrence of `needle` in `buffer` at or after `from`.
    private static func find(_ needle: [UInt8], in buffer: ByteBuffer, from: Int) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            let base = buffer.readerIndex
            let start = from - base
            guard needle.count > 0, start >= 0, raw.count - start >= needle.count else { return nil }
            var i = start
            let last = raw.count - needle.count
            while i <= last {
                if raw[i] == needle[0] {
                    var j = 1
                    while j < needle.count && raw[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return base + i }
                }
                i += 1
            }
            return nil
        }
    }
}
