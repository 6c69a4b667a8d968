/// The four questions the answers API asks, independent of where the rows live (ClickHouse in
/// production, a fake in the API's tests).
public protocol AnswersStore: Sendable {
    /// The start number with the most steps (ties: the smallest number); nil when empty.
    func longestChain() async throws -> LongestChain?
    /// The start number whose chain reaches the highest value (ties: the smallest number).
    func highestValue() async throws -> HighestValue?
    /// Start numbers other than `x` whose chains pass through `x`, ascending, greater than
    /// `after` when given, skipping `offset` of them, at most `limit`.
    func numbersPassingThrough(_ x: UInt128, after: UInt64?, offset: Int, limit: Int) async throws -> [UInt64]
    /// Every stored step of `number`'s chain, ascending by step (empty: unknown number).
    func chain(of number: UInt64) async throws -> [ChainStep]
    /// Throws when the store cannot answer.
    func checkHealth() async throws
}

public struct LongestChain: Sendable, Equatable {
    public var number: UInt64
    public var steps: UInt64
    public init(number: UInt64, steps: UInt64) { self.number = number; self.steps = steps }
}

public struct HighestValue: Sendable, Equatable {
    public var number: UInt64
    public var value: UInt128
    public init(number: UInt64, value: UInt128) { self.number = number; self.value = value }
}

public struct ChainStep: Sendable, Equatable {
    public var step: UInt64
    public var value: UInt128
    public init(step: UInt64, value: UInt128) { self.step = step; self.value = value }
}

/// Answers straight from computed chains: the reference the tests compare ClickHouse with, and
/// the fake store for the API's tests.
public struct InMemoryAnswersStore: AnswersStore {
    public var chains: [UInt64: [UInt128]]
    public var failure: (any Error & Sendable)?

    public init(startNumbers: some Sequence<UInt64>) throws {
        var chains = [UInt64: [UInt128]]()
        for n in startNumbers { chains[n] = try CollatzChain.values(from: UInt128(n)) }
        self.chains = chains
    }

    public init(chains: [UInt64: [UInt128]], failure: (any Error & Sendable)? = nil) {
        self.chains = chains
        self.failure = failure
    }

    func check() throws { if let failure { throw failure } }

    public func longestChain() async throws -> LongestChain? {
        try check()
        return chains.map { LongestChain(number: $0.key, steps: UInt64($0.value.count - 1)) }
            .min { ($0.steps, $1.number) > ($1.steps, $0.number) }
    }

    public func highestValue() async throws -> HighestValue? {
        try check()
        return chains.map { HighestValue(number: $0.key, value: $0.value.max() ?? 0) }
            .min { a, b in a.value != b.value ? a.value > b.value : a.number < b.number }
    }

    public func numbersPassingThrough(_ x: UInt128, after: UInt64?, offset: Int = 0, limit: Int) async throws -> [UInt64] {
        try check()
        return chains.filter { UInt128($0.key) != x && $0.value.contains(x) && $0.key > (after ?? 0) }
            .map(\.key).sorted().dropFirst(offset).prefix(limit).map { $0 }
    }

    public func chain(of number: UInt64) async throws -> [ChainStep] {
        try check()
        return (chains[number] ?? []).enumerated().map { ChainStep(step: UInt64($0.offset), value: $0.element) }
    }

    public func checkHealth() async throws { try check() }
}
