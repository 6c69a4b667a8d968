/// Collatz chains with exact arithmetic.
///
/// A chain starts at `start` (step 0) and applies n → n/2 (even) or n → 3n+1 (odd) until it
/// reaches 1; the number of steps is the index of that 1 (27 takes 111 steps, 1 takes 0).
/// Values are `UInt128`: start numbers in the producer's default range (up to
/// 99,999,999,999,999) reach peaks above 2^64 (12,327,829,503 peaks at
/// 20,722,398,914,405,051,728), and all known chains for starts below 2^64 stay far below 2^128.
/// Arithmetic is overflow-checked: a value that would not fit throws instead of wrapping or
/// trapping.
public enum CollatzChain {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The start number is 0 (it has no chain).
        case zeroStart
        /// 3n+1 would exceed UInt128 at `step`.
        case overflow(start: UInt128, step: Int)
        /// The chain did not reach 1 within `maxSteps` steps.
        case tooLong(start: UInt128, maxSteps: Int)

        public var description: String {
            switch self {
            case .zeroStart: return "0 has no Collatz chain"
            case .overflow(let start, let step): return "chain of \(start) overflows UInt128 at step \(step)"
            case .tooLong(let start, let maxSteps): return "chain of \(start) is longer than \(maxSteps) steps"
            }
        }
    }

    /// A generous cap: the longest known chains below 2^68 take fewer than 3,000 steps.
    public static let defaultMaxSteps = 100_000

    /// One step: n/2 or 3n+1, nil when 3n+1 overflows UInt128.
    @inlinable
    public static func next(_ n: UInt128) -> UInt128? {
        if n & 1 == 0 { return n >> 1 }
        let (triple, o1) = n.multipliedReportingOverflow(by: 3)
        if o1 { return nil }
        let (result, o2) = triple.addingReportingOverflow(1)
        return o2 ? nil : result
    }

    /// Every value of the chain, step 0 (the start) through the final 1.
    public static func values(from start: UInt128, maxSteps: Int = defaultMaxSteps) throws(Failure) -> [UInt128] {
        var out = [UInt128]()
        out.reserveCapacity(256)
        try forEachValue(from: start, maxSteps: maxSteps) { _, value in out.append(value) }
        return out
    }

    /// Calls `body(step, value)` for every step of the chain, in order; allocation-free.
    @inlinable
    public static func forEachValue(
        from start: UInt128, maxSteps: Int = defaultMaxSteps, _ body: (Int, UInt128) throws(Failure) -> Void
    ) throws(Failure) {
        guard start > 0 else { throw .zeroStart }
        var n = start
        var step = 0
        try body(0, n)
        while n != 1 {
            guard step < maxSteps else { throw .tooLong(start: start, maxSteps: maxSteps) }
            guard let m = next(n) else { throw .overflow(start: start, step: step + 1) }
            n = m
            step += 1
            try body(step, n)
        }
    }

    /// Steps to reach 1 and the highest value on the way.
    public static func summary(of start: UInt128, maxSteps: Int = defaultMaxSteps) throws(Failure) -> (steps: Int, peak: UInt128) {
        var steps = 0
        var peak: UInt128 = 0
        try forEachValue(from: start, maxSteps: maxSteps) { step, value in
            steps = step
            if value > peak { peak = value }
        }
        return (steps, peak)
    }
}

extension UInt128 {
    /// Parses a plain decimal integer (ASCII digits only, no sign, no spaces); nil when it is
    /// empty, malformed or does not fit. Leading zeros are accepted.
    public init?(decimalDigits text: some StringProtocol) {
        var value: UInt128 = 0
        var any = false
        for byte in text.utf8 {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt128(byte - 0x30))
            if o1 || o2 { return nil }
            value = a
            any = true
        }
        guard any else { return nil }
        self = value
    }
}
