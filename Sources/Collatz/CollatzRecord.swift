/// One step of one chain, as published to `conjecture.data`.
///
/// Value: the JSON the old Python producer wrote with `json.dumps`, byte for byte:
/// `{"Number": 27, "Step": 0, "Value": 27}` — JSON integers, exact at any size (values above
/// 2^64 are written as plain digits, as Python's arbitrary-precision ints are).
///
/// Key: the start number as decimal UTF-8 text (`27` → the bytes `"27"`). kafka-python has no
/// default key serializer (keys must already be bytes), so the old producer had to encode the
/// key itself; `str(number).encode()` is the natural choice and what we keep: every step of a
/// chain has the same key, so a chain lands on one partition in order with Kafka's murmur2
/// partitioner, and the key is readable in kcat and kafka-ui.
public struct CollatzRecord: Sendable, Hashable {
    public var number: UInt64
    public var step: UInt32
    public var value: UInt128

    public init(number: UInt64, step: UInt32, value: UInt128) {
        self.number = number
        self.step = step
        self.value = value
    }

    /// The Kafka key: the start number in decimal.
    public var keyBytes: [UInt8] { Array(String(number).utf8) }

    public static func key(for number: UInt64) -> [UInt8] { Array(String(number).utf8) }

    /// The JSON value, in Python's `json.dumps` layout.
    public var jsonBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(64)
        appendJSON(to: &out)
        return out
    }

    public func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: Self.numberPrefix)
        Self.appendDecimal(UInt128(number), to: &out)
        out.append(contentsOf: Self.stepPrefix)
        Self.appendDecimal(UInt128(step), to: &out)
        out.append(contentsOf: Self.valuePrefix)
        Self.appendDecimal(value, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    private static let numberPrefix = Array(#"{"Number": "#.utf8)
    private static let stepPrefix = Array(#", "Step": "#.utf8)
    private static let valuePrefix = Array(#", "Value": "#.utf8)

    /// Appends the decimal digits of `v` (no allocation beyond `out`'s growth).
    public static func appendDecimal(_ v: UInt128, to out: inout [UInt8]) {
        if v == 0 { out.append(UInt8(ascii: "0")); return }
        if v <= UInt128(UInt64.max) {  // the common case: 64-bit division is much cheaper
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes ≥ 20 digits
            var count = 0
            var n = UInt64(v)
            withUnsafeMutableBytes(of: &digits) { raw in
                while n > 0 {
                    let (q, r) = n.quotientAndRemainder(dividingBy: 10)
                    raw[23 - count] = UInt8(truncatingIfNeeded: r) + 0x30
                    count += 1
                    n = q
                }
                out.append(contentsOf: raw[(24 - count)...])
            }
            return
        }
        var digits: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)  // 40 bytes ≥ 39 digits
        var count = 0
        var n = v
        withUnsafeMutableBytes(of: &digits) { raw in
            while n > 0 {
                let (q, r) = n.quotientAndRemainder(dividingBy: 10)
                raw[39 - count] = UInt8(truncatingIfNeeded: r) + 0x30
                count += 1
                n = q
            }
            out.append(contentsOf: raw[(40 - count)...])
        }
    }
}

// MARK: - Decoding

extension CollatzRecord {
    /// Why a record could not be read (the sink puts this in the dead-letter header).
    public struct DecodeError: Error, Equatable, CustomStringConvertible {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
        public var description: String { reason }
    }

    /// Reads `{"Number": n, "Step": s, "Value": v}`: keys in any order, any JSON whitespace,
    /// integers only (a quoted decimal string is accepted too), unknown keys with scalar
    /// values skipped. Rejects missing keys, duplicates, fractions, exponents, negative
    /// numbers, numbers too large for their field, and anything after the closing brace.
    public static func decode(json bytes: some Collection<UInt8>) throws(DecodeError) -> CollatzRecord {
        let result: Result<CollatzRecord, DecodeError>? = bytes.withContiguousStorageIfAvailable { buf in
            do throws(DecodeError) { return .success(try decode(buffer: buf)) } catch { return .failure(error) }
        }
        if let result { return try result.get() }
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buf throws(DecodeError) in try decode(buffer: buf) }
    }

    static let maxInputBytes = 4096

    static func decode(buffer b: UnsafeBufferPointer<UInt8>) throws(DecodeError) -> CollatzRecord {
        guard b.count <= maxInputBytes else { throw DecodeError("record is \(b.count) bytes, more than \(maxInputBytes)") }
        var i = 0
        func skipSpace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        }
        func expect(_ c: UInt8, _ what: String) throws(DecodeError) {
            skipSpace()
            guard i < b.count, b[i] == c else {
                throw DecodeError(i < b.count ? "expected \(what) at byte \(i)" : "truncated: expected \(what)")
            }
            i += 1
        }
        /// A JSON string without escapes (keys and digit strings never need them).
        func readPlainString() throws(DecodeError) -> [UInt8] {
            try expect(UInt8(ascii: "\""), "a string")
            let start = i
            while i < b.count, b[i] != UInt8(ascii: "\"") {
                if b[i] == UInt8(ascii: "\\") { throw DecodeError("escaped characters are not supported at byte \(i)") }
                if b[i] < 0x20 { throw DecodeError("control character in a string at byte \(i)") }
                i += 1
            }
            guard i < b.count else { throw DecodeError("truncated: unterminated string") }
            let s = Array(b[start..<i])
            i += 1
            return s
        }
        func readInteger(_ name: String) throws(DecodeError) -> UInt128 {
            skipSpace()
            guard i < b.count else { throw DecodeError("truncated: \(name) has no value") }
            let quoted = b[i] == UInt8(ascii: "\"")
            if quoted { i += 1 }
            if i < b.count, b[i] == UInt8(ascii: "-") { throw DecodeError("\(name) is negative") }
            var value: UInt128 = 0
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt128(b[i] - 0x30))
                if o1 || o2 { throw DecodeError("\(name) does not fit in 128 bits") }
                value = a
                digits += 1
                i += 1
            }
            guard digits > 0 else { throw DecodeError("\(name) is not an integer") }
            if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                throw DecodeError("\(name) is not an integer")
            }
            if quoted {
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw DecodeError("\(name) is not an integer") }
                i += 1
            }
            return value
        }
        func skipScalar() throws(DecodeError) {
            skipSpace()
            guard i < b.count else { throw DecodeError("truncated value") }
            switch b[i] {
            case UInt8(ascii: "\""): _ = try readPlainString()
            case UInt8(ascii: "{"), UInt8(ascii: "["): throw DecodeError("nested values are not supported at byte \(i)")
            default:
                let start = i
                while i < b.count, b[i] != UInt8(ascii: ","), b[i] != UInt8(ascii: "}"),
                      b[i] != 0x20, b[i] != 0x09, b[i] != 0x0A, b[i] != 0x0D { i += 1 }
                if i == start { throw DecodeError("missing value at byte \(i)") }
            }
        }

        var number: UInt128?
        var step: UInt128?
        var value: UInt128?
        try expect(UInt8(ascii: "{"), "'{'")
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "}") {
            throw DecodeError("empty object: Number, Step and Value are missing")
        }
        while true {
            let key = try readPlainString()
            try expect(UInt8(ascii: ":"), "':'")
            switch key {
            case Array("Number".utf8):
                guard number == nil else { throw DecodeError("duplicate key Number") }
                number = try readInteger("Number")
            case Array("Step".utf8):
                guard step == nil else { throw DecodeError("duplicate key Step") }
                step = try readInteger("Step")
            case Array("Value".utf8):
                guard value == nil else { throw DecodeError("duplicate key Value") }
                value = try readInteger("Value")
            default:
                try skipScalar()
            }
            skipSpace()
            guard i < b.count else { throw DecodeError("truncated: expected ',' or '}'") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { i += 1; break }
            throw DecodeError("expected ',' or '}' at byte \(i)")
        }
        skipSpace()
        guard i == b.count else { throw DecodeError("trailing bytes after the object at byte \(i)") }
        guard let number else { throw DecodeError("missing key Number") }
        guard let step else { throw DecodeError("missing key Step") }
        guard let value else { throw DecodeError("missing key Value") }
        guard number >= 1, number <= UInt128(UInt64.max) else { throw DecodeError("Number \(number) is outside 1...\(UInt64.max)") }
        guard step <= UInt128(UInt32.max) else { throw DecodeError("Step \(step) is larger than \(UInt32.max)") }
        guard value >= 1 else { throw DecodeError("Value is 0") }
        return CollatzRecord(number: UInt64(number), step: UInt32(step), value: value)
    }
}
