import KafkaProtocol
import NIOCore

/// A seeded, reproducible random source for building test messages: one seed, one message.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func oneIn(_ n: UInt64) -> Bool { next() % n == 0 }

    mutating func bool() -> Bool { next() & 1 == 1 }

    mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T {
        // Mostly small values (the common case on the wire), sometimes the full range.
        switch next() % 4 {
        case 0: return T(truncatingIfNeeded: next() % 3) &- 1
        case 1: return T(truncatingIfNeeded: next() % 200)
        default: return T(truncatingIfNeeded: next())
        }
    }

    mutating func double() -> Double {
        let candidates: [Double] = [0, -1, 1.5, 1e300, -2.25e-10]
        if oneIn(2) { return candidates[Int(next() % UInt64(candidates.count))] }
        return Double(Int64(truncatingIfNeeded: next())) / 1024
    }

    mutating func uuid() -> KafkaUUID {
        oneIn(4) ? .zero : KafkaUUID(high: next(), low: next())
    }

    mutating func string() -> String {
        let pieces = ["", "a", "topic-1", "é", "🙂", "group.id", "x y", "__consumer_offsets"]
        var s = ""
        for _ in 0..<(next() % 3) { s += pieces[Int(next() % UInt64(pieces.count))] }
        return s
    }

    mutating func bytes() -> ByteBuffer {
        var buffer = ByteBuffer()
        for _ in 0..<(next() % 9) { buffer.writeInteger(UInt8(truncatingIfNeeded: next())) }
        return buffer
    }

    mutating func array<T>(_ element: (inout SplitMix64) -> T) -> [T] {
        var items = [T]()
        for _ in 0..<(next() % 4) { items.append(element(&self)) }
        return items
    }

    /// Tagged fields with tags above every known one, in increasing tag order.
    mutating func unknownTaggedFields(above known: Int) -> [TaggedField] {
        guard oneIn(3) else { return [] }
        var fields = [TaggedField]()
        var tag = UInt32(known + 1) + UInt32(next() % 5)
        for _ in 0..<(1 + next() % 2) {
            fields.append(TaggedField(tag: tag, data: bytes()))
            tag += 1 + UInt32(next() % 1000)
        }
        return fields
    }
}

/// A generated message that can build a random instance valid at a given version.
protocol ArbitraryMessage: KafkaMessage {
    static func arbitrary(version: Int16, using random: inout SplitMix64) -> Self
}
