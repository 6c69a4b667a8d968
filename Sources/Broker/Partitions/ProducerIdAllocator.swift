import Synchronization

/// Hands out producer ids from blocks reserved in the metadata log, so an id is never given
/// twice, even across restarts (a restart skips the rest of its block).
final class ProducerIdAllocator: Sendable {
    private struct Block { var next: Int64; var end: Int64 }
    private let block = Mutex(Block(next: 0, end: 0))
    private let blockSize: Int64
    private let reserve: @Sendable (Int64) throws -> Int64

    init(blockSize: Int64 = 1000, reserve: @escaping @Sendable (Int64) throws -> Int64) {
        self.blockSize = blockSize
        self.reserve = reserve
    }

    /// Reserves a block now if none is left, so that the first InitProducerId after start-up
    /// does not wait for the controller (AllocateProducerIds is a metadata commit). Blocks.
    func prefetch() throws {
        try block.withLock { b in try refillIfEmpty(&b) }
    }

    func next() throws -> Int64 {
        try block.withLock { b in
            try refillIfEmpty(&b)
            defer { b.next += 1 }
            return b.next
        }
    }

    private func refillIfEmpty(_ b: inout Block) throws {
        guard b.next >= b.end else { return }
        let first = try reserve(blockSize)
        b = Block(next: first, end: first + blockSize)
    }
}
