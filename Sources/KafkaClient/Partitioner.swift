import NIOCore

/// How the producer picks a partition for a record without an explicit one.
public enum Partitioner: Sendable {
    /// Java's default and librdkafka's `murmur2_random`: keyed records go to
    /// `(murmur2(key) & 0x7fffffff) % partitions`; keyless records stick to one random partition
    /// until its batch is sent (KIP-480 sticky partitioning).
    case murmur2Random
    /// Your function of (key, partition count) → partition.
    case custom(@Sendable (ByteBuffer?, Int) -> Int32)
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit.
public enum Murmur2 {
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let length = bytes.count
        let seed: UInt32 = 0x9747_b28c
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        var h: UInt32 = seed ^ UInt32(truncatingIfNeeded: length)
        let length4 = length / 4
        for i in 0..<length4 {
            let i4 = i * 4
            var k = UInt32(bytes[i4]) | (UInt32(bytes[i4 + 1]) << 8) | (UInt32(bytes[i4 + 2]) << 16) | (UInt32(bytes[i4 + 3]) << 24)
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = length & ~3
        switch length % 4 {
        case 3:
            h ^= UInt32(bytes[tail + 2]) << 16
            h ^= UInt32(bytes[tail + 1]) << 8
            h ^= UInt32(bytes[tail])
            h = h &* m
        case 2:
            h ^= UInt32(bytes[tail + 1]) << 8
            h ^= UInt32(bytes[tail])
            h = h &* m
        case 1:
            h ^= UInt32(bytes[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    public static func hash(_ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBytes { hash($0) }
    }

    public static func hash(_ buffer: ByteBuffer) -> Int32 {
        buffer.withUnsafeReadableBytes { hash($0) }
    }

    /// The partition Java's and librdkafka's murmur2 partitioners pick for a key.
    public static func partition(forKey key: ByteBuffer, partitionCount: Int) -> Int32 {
        precondition(partitionCount > 0)
        return Int32((Int(hash(key)) & 0x7fff_ffff) % partitionCount)
    }
}
