/// Kafka's 128-bit `uuid` type (topic ids, directory ids, member ids). Printed, as Kafka
/// prints it, in URL-safe base64 without padding.
public struct KafkaUUID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public static let zero = KafkaUUID(high: 0, low: 0)

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A random (version 4) UUID, never the zero or the reserved "one" UUID.
    public static func random() -> KafkaUUID {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> KafkaUUID {
        while true {
            var high = generator.next() as UInt64
            var low = generator.next() as UInt64
            high = (high & ~0xF000) | 0x4000
            low = (low & ~(0xC000_0000_0000_0000)) | 0x8000_0000_0000_0000
            let candidate = KafkaUUID(high: high, low: low)
            if candidate.high != 0 || candidate.low > 1 { return candidate }
        }
    }

    public static func < (lhs: KafkaUUID, rhs: KafkaUUID) -> Bool {
        return (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return out
    }

    public var description: String {
        let input = bytes
        var out = [UInt8]()
        var i = 0
        while i < input.count {
            let b0 = UInt32(input[i])
            let b1 = i + 1 < input.count ? UInt32(input[i + 1]) : 0
            let b2 = i + 2 < input.count ? UInt32(input[i + 2]) : 0
            let triple = (b0 << 16) | (b1 << 8) | b2
            let remaining = input.count - i
            out.append(Self.alphabet[Int((triple >> 18) & 63)])
            out.append(Self.alphabet[Int((triple >> 12) & 63)])
            if remaining > 1 { out.append(Self.alphabet[Int((triple >> 6) & 63)]) }
            if remaining > 2 { out.append(Self.alphabet[Int(triple & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses Kafka's base64 form (22 characters, URL-safe alphabet, no padding).
    public init?(_ text: String) {
        let chars = Array(text.utf8)
        guard chars.count == 22 else { return nil }
        var values = [UInt8]()
        values.reserveCapacity(22)
        for c in chars {
            guard let index = Self.alphabet.firstIndex(of: c) else { return nil }
            values.append(UInt8(index))
        }
        var out = [UInt8]()
        var i = 0
        while i < values.count {
            let n = min(4, values.count - i)
            var acc: UInt32 = 0
            for j in 0..<4 { acc = (acc << 6) | UInt32(j < n ? values[i + j] : 0) }
            out.append(UInt8(truncatingIfNeeded: acc >> 16))
            if n > 2 { out.append(UInt8(truncatingIfNeeded: acc >> 8)) }
            if n > 3 { out.append(UInt8(truncatingIfNeeded: acc)) }
            i += 4
        }
        guard out.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for k in 0..<8 { high = (high << 8) | UInt64(out[k]) }
        for k in 8..<16 { low = (low << 8) | UInt64(out[k]) }
        self.init(high: high, low: low)
    }
}
