import KafkaProtocol
import NIOCore

/// A Produce request frame whose record batches are not copied: `head` holds the size prefix,
/// the header and everything up to the first batch's bytes, `tail` the batches and the bytes
/// between and after them, in order. Written back to back (one `writev`), the parts are exactly
/// the frame `KafkaFrames.encodeRequest` makes (the tests compare them for every version).
///
/// The generated encoder copies each batch into the frame (a megabyte per batch at
/// `batch.size` 1 MB), which was the producer's largest memory copy.
struct ProduceFrame {
    var head: ByteBuffer
    var tail: [ByteBuffer]

    /// One partition's batch.
    struct Partition {
        var index: Int32
        var records: ByteBuffer
    }

    /// Produce v3+ (record batches v2); flexible (compact) from v9.
    static func encode(
        acks: Int16, timeoutMs: Int32, topics: [(name: String, partitions: [Partition])], version: Int16, clientId: String?,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws(KafkaClientError) -> ProduceFrame {
        guard version >= 3 && version <= 11 else { throw .unsupportedApi("Produce v\(version)") }
        let flexible = version >= 9
        // The glue being written: first the head, then the bytes after each batch.
        var current = allocator.buffer(capacity: 128 + 32 * topics.count)
        var head: ByteBuffer?
        var tail: [ByteBuffer] = []
        current.writeInteger(Int32(0))  // size, set at the end
        let header = RequestHeader(
            requestApiKey: ApiKey.produce.rawValue, requestApiVersion: version, correlationId: 0, clientId: clientId)
        do {
            try header.encode(into: &current, version: ApiKey.produce.requestHeaderVersion(for: version))
        } catch {
            throw .protocolViolation("cannot encode the Produce header: \(error)")
        }
        var total = 0  // bytes after the size prefix, over all parts

        func length(_ n: Int, into buffer: inout ByteBuffer, int32: Bool) {
            if flexible {
                buffer.writeUnsignedVarint(UInt32(n + 1))
            } else if int32 {
                buffer.writeInteger(Int32(n))
            } else {
                buffer.writeInteger(Int16(n))
            }
        }

        // transactionalId: null
        if flexible { current.writeUnsignedVarint(0) } else { current.writeInteger(Int16(-1)) }
        current.writeInteger(acks)
        current.writeInteger(timeoutMs)
        length(topics.count, into: &current, int32: true)
        for topic in topics {
            length(topic.name.utf8.count, into: &current, int32: false)
            current.writeString(topic.name)
            length(topic.partitions.count, into: &current, int32: true)
            for p in topic.partitions {
                current.writeInteger(p.index)
                length(p.records.readableBytes, into: &current, int32: true)
                // The glue so far ends here; the batch follows as its own buffer.
                if head == nil {
                    head = current
                } else {
                    total += current.readableBytes
                    tail.append(current)
                }
                total += p.records.readableBytes
                tail.append(p.records)
                current = allocator.buffer(capacity: 64)
                if flexible { current.writeUnsignedVarint(0) }  // partition tagged fields
            }
            if flexible { current.writeUnsignedVarint(0) }  // topic tagged fields
        }
        if flexible { current.writeUnsignedVarint(0) }  // request tagged fields
        if head == nil {
            head = current
        } else if current.readableBytes > 0 {
            total += current.readableBytes
            tail.append(current)
        }
        var frame = head!
        total += frame.readableBytes - 4
        frame.setInteger(Int32(total), at: frame.readerIndex)
        return ProduceFrame(head: frame, tail: tail)
    }
}
