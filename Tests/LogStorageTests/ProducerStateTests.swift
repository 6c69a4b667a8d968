import Foundation
import KafkaProtocol
import NIOCore
import Testing

@testable import LogStorage

@Suite("Producer state")
struct ProducerStateTests {
    /// A state with producer 7 at epoch 2 having written sequences 0-4 (offsets 100-104) and 5-9.
    func state() -> ProducerStateManager {
        var state = ProducerStateManager()
        state.append(producerId: 7, epoch: 2, firstSequence: 0, lastSequence: 4, firstOffset: 100, lastOffset: 104, timestamp: 10)
        state.append(producerId: 7, epoch: 2, firstSequence: 5, lastSequence: 9, firstOffset: 110, lastOffset: 114, timestamp: 11)
        return state
    }

    @Test("in sequence, duplicate, out of order")
    func sequenceRules() {
        let state = state()
        #expect(state.checkSequence(producerId: 7, epoch: 2, firstSequence: 10, lastSequence: 12) == .new)
        #expect(state.checkSequence(producerId: 7, epoch: 2, firstSequence: 5, lastSequence: 9) == .duplicate(firstOffset: 110, lastOffset: 114))
        #expect(state.checkSequence(producerId: 7, epoch: 2, firstSequence: 0, lastSequence: 4) == .duplicate(firstOffset: 100, lastOffset: 104))
        #expect(state.checkSequence(producerId: 7, epoch: 2, firstSequence: 12, lastSequence: 13) == .outOfOrderSequence(expected: 10))
        #expect(state.checkSequence(producerId: 7, epoch: 2, firstSequence: 5, lastSequence: 7) == .outOfOrderSequence(expected: 10))
    }

    @Test("epochs: older is fenced, a bump restarts the sequence at 0")
    func epochRules() {
        let state = state()
        #expect(state.checkSequence(producerId: 7, epoch: 1, firstSequence: 10, lastSequence: 10) == .invalidProducerEpoch(current: 2))
        #expect(state.checkSequence(producerId: 7, epoch: 3, firstSequence: 0, lastSequence: 3) == .new)
        #expect(state.checkSequence(producerId: 7, epoch: 3, firstSequence: 10, lastSequence: 11) == .outOfOrderSequence(expected: 0))
        var bumped = state
        bumped.append(producerId: 7, epoch: 3, firstSequence: 0, lastSequence: 0, firstOffset: 200, lastOffset: 200, timestamp: 12)
        #expect(bumped.entry(for: 7)?.batches.count == 1)
        #expect(bumped.checkSequence(producerId: 7, epoch: 2, firstSequence: 10, lastSequence: 10) == .invalidProducerEpoch(current: 3))
        #expect(bumped.checkSequence(producerId: 7, epoch: 3, firstSequence: 1, lastSequence: 1) == .new)
    }

    @Test("unknown producers start at sequence 0")
    func unknownProducer() {
        let state = state()
        #expect(state.checkSequence(producerId: 8, epoch: 0, firstSequence: 0, lastSequence: 4) == .new)
        #expect(state.checkSequence(producerId: 8, epoch: 0, firstSequence: 5, lastSequence: 9) == .unknownProducer)
    }

    @Test("sequence numbers wrap at Int32.max")
    func wraparound() {
        #expect(ProducerStateManager.lastSequence(baseSequence: Int32.max - 1, offsetDelta: 3) == 1)
        #expect(ProducerStateManager.lastSequence(baseSequence: -1, offsetDelta: 3) == -1)
        var state = ProducerStateManager()
        state.append(
            producerId: 1, epoch: 0, firstSequence: Int32.max - 2, lastSequence: Int32.max, firstOffset: 0, lastOffset: 2, timestamp: 0)
        #expect(state.checkSequence(producerId: 1, epoch: 0, firstSequence: 0, lastSequence: 5) == .new)
        #expect(state.checkSequence(producerId: 1, epoch: 0, firstSequence: 1, lastSequence: 5) == .outOfOrderSequence(expected: 0))
        state.append(producerId: 1, epoch: 0, firstSequence: Int32.max - 1, lastSequence: 1, firstOffset: 3, lastOffset: 6, timestamp: 0)
        #expect(state.checkSequence(producerId: 1, epoch: 0, firstSequence: 2, lastSequence: 2) == .new)
        #expect(state.checkSequence(producerId: 1, epoch: 0, firstSequence: Int32.max - 1, lastSequence: 1) == .duplicate(firstOffset: 3, lastOffset: 6))
    }

    @Test("only the last five batches are remembered")
    func fiveBatches() {
        var state = ProducerStateManager()
        for i in 0..<8 {
            state.append(
                producerId: 1, epoch: 0, firstSequence: Int32(i), lastSequence: Int32(i), firstOffset: Int64(i), lastOffset: Int64(i),
                timestamp: 0)
        }
        #expect(state.entry(for: 1)?.batches.map(\.firstSequence) == [3, 4, 5, 6, 7])
        #expect(state.checkSequence(producerId: 1, epoch: 0, firstSequence: 3, lastSequence: 3) == .duplicate(firstOffset: 3, lastOffset: 3))
        #expect(state.checkSequence(producerId: 1, epoch: 0, firstSequence: 2, lastSequence: 2) == .outOfOrderSequence(expected: 8))
    }

    @Test("transactions: first unstable offset, markers end them, expiry spares open ones")
    func transactions() {
        var state = ProducerStateManager()
        state.append(
            producerId: 1, epoch: 0, firstSequence: 0, lastSequence: 1, firstOffset: 10, lastOffset: 11, timestamp: 100,
            isTransactional: true)
        state.append(
            producerId: 2, epoch: 0, firstSequence: 0, lastSequence: 0, firstOffset: 12, lastOffset: 12, timestamp: 100,
            isTransactional: true)
        state.append(producerId: 3, epoch: 0, firstSequence: 0, lastSequence: 0, firstOffset: 13, lastOffset: 13, timestamp: 100)
        #expect(state.firstUnstableOffset == 10)
        state.append(
            producerId: 1, epoch: 0, firstSequence: -1, lastSequence: -1, firstOffset: 14, lastOffset: 14, timestamp: 100,
            isTransactional: true, isControl: true)
        #expect(state.firstUnstableOffset == 12)
        #expect(state.entry(for: 1)?.lastSequence == 1)  // a marker does not reset the sequence
        #expect(state.removeExpired(now: 10_000, expirationMs: 1000) == 2)
        #expect(state.entry(for: 2) != nil)
    }

    @Test("snapshot round trip; corruption detected")
    func snapshotFormat() throws {
        var state = state()
        state.append(
            producerId: 9, epoch: 0, firstSequence: 0, lastSequence: 0, firstOffset: 300, lastOffset: 300, timestamp: 5,
            isTransactional: true)
        state.setCoordinatorEpoch(4, for: 9)
        let bytes = state.snapshotBytes()
        #expect(try ProducerStateManager(snapshot: bytes) == state)
        var damaged = bytes
        damaged[damaged.count - 3] ^= 1
        #expect(throws: SnapshotCorruption.self) { try ProducerStateManager(snapshot: damaged) }
        #expect(throws: SnapshotCorruption.self) { try ProducerStateManager(snapshot: Array(bytes.prefix(20))) }
        #expect(try ProducerStateManager(snapshot: ProducerStateManager().snapshotBytes()).isEmpty)
    }

    // MARK: Through the log

    func idempotent(_ seq: Int32, count: Int = 2, epoch: Int16 = 0, pid: Int64 = 42) -> ByteBuffer {
        makeBatch(count: count, producerId: pid, producerEpoch: epoch, baseSequence: seq)
    }

    @Test("the log answers retries with the original offsets and refuses gaps and fenced epochs")
    func logAppliesRules() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir)
            let first = try log.appendAsLeader(idempotent(0), leaderEpoch: 0)
            let second = try log.appendAsLeader(idempotent(2), leaderEpoch: 0)
            #expect((first.firstOffset, second.firstOffset) == (0, 2))
            let retry = try log.appendAsLeader(idempotent(0), leaderEpoch: 0)
            #expect(retry.isDuplicate && retry.firstOffset == 0 && retry.lastOffset == 1)
            #expect(log.logEndOffset == 4)
            #expect(throws: LogStorageError.outOfOrderSequence(testTopic, producerId: 42, expected: 4, received: 6)) {
                try log.appendAsLeader(idempotent(6), leaderEpoch: 0)
            }
            _ = try log.appendAsLeader(idempotent(0, epoch: 1), leaderEpoch: 0)
            #expect(throws: LogStorageError.invalidProducerEpoch(testTopic, producerId: 42, currentEpoch: 1, receivedEpoch: 0)) {
                try log.appendAsLeader(idempotent(4, epoch: 0), leaderEpoch: 0)
            }
            // Two batches of one producer in one append are checked against each other.
            let pair = concatenate([idempotent(2, epoch: 1), idempotent(4, epoch: 1)])
            #expect(try log.appendAsLeader(pair, leaderEpoch: 0).batchCount == 2)
            let badPair = concatenate([idempotent(6, epoch: 1), idempotent(9, epoch: 1)])
            #expect(throws: LogStorageError.self) { try log.appendAsLeader(badPair, leaderEpoch: 0) }
            #expect(log.logEndOffset == 10)
            #expect(log.checkSequence(producerId: 42, epoch: 1, firstSequence: 6, lastSequence: 7) == .new)
            #expect(log.producerStateEntry(for: 42)?.batches.count == 3)
            try log.close()
        }
    }

    @Test("producer state survives a clean restart (snapshot) and a crash (snapshot + replay)")
    func snapshotAndRebuild() throws {
        try withTemporaryDirectory { dir in
            let config = LogConfig(segmentBytes: 600)
            let partitionDir = dir + "/orders-0"
            var expected: [Int64: ProducerStateEntry] = [:]
            do {
                let log = try openLog(dir, config: config)
                var sequences: [Int64: Int32] = [:]
                for i in 0..<40 {
                    let pid = Int64(i % 3)
                    let seq = sequences[pid, default: 0]
                    _ = try log.appendAsLeader(
                        makeBatch(count: 2, producerId: pid, producerEpoch: 0, baseSequence: seq), leaderEpoch: 0)
                    sequences[pid] = seq + 2
                    _ = try log.appendAsLeader(makeBatch(count: 1), leaderEpoch: 0)  // non-idempotent in between
                }
                #expect(log.segmentCount > 5)
                expected = log.producerStates
                #expect(expected.count == 3)
                try log.close()
            }
            // Clean: the snapshot at the log end offset, no replay.
            do {
                let (logger, messages) = makeLogger()
                let log = try openLog(dir, config: config, logger: logger)
                #expect(log.producerStates == expected)
                #expect(!messages.contains("replayed"))
                let retry = try log.appendAsLeader(
                    makeBatch(count: 2, producerId: 0, producerEpoch: 0, baseSequence: expected[0]!.lastSequence - 1),
                    leaderEpoch: 0)
                #expect(retry.isDuplicate)
                // Crash: drop without close.
            }
            // The end snapshot from the clean close is still there but the data after it was not
            // extended; remove it to force a replay from the last roll's snapshot.
            let snapshots = listFiles(partitionDir).filter { $0.hasSuffix(".snapshot") }
            #expect(snapshots.count > 3)
            try FileManager.default.removeItem(atPath: partitionDir + "/" + snapshots.last!)
            let (logger, messages) = makeLogger()
            let log = try openLog(dir, config: config, clean: false, logger: logger)
            #expect(log.producerStates == expected)
            #expect(messages.contains("replayed"))
            // A corrupt snapshot is skipped (an older one plus a longer replay).
            try log.close()
            let newest = listFiles(partitionDir).filter { $0.hasSuffix(".snapshot") }.last!
            writeFileBytes(partitionDir + "/" + newest, [0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9])
            let again = try openLog(dir, config: config, clean: false)
            #expect(again.producerStates == expected)
            try again.close()
        }
    }

    @Test("truncation rebuilds the producer state at the new end")
    func truncationRebuilds() throws {
        try withTemporaryDirectory { dir in
            let log = try openLog(dir, config: LogConfig(segmentBytes: 400))
            for seq in stride(from: Int32(0), to: 40, by: 2) {
                _ = try log.appendAsLeader(makeBatch(count: 2, producerId: 5, producerEpoch: 0, baseSequence: seq), leaderEpoch: 0)
            }
            #expect(log.producerStateEntry(for: 5)?.lastSequence == 39)
            try log.truncate(to: 21)  // keeps offsets 0-19: sequences 0-19
            #expect(log.logEndOffset == 20)
            #expect(log.producerStateEntry(for: 5)?.lastSequence == 19)
            #expect(log.checkSequence(producerId: 5, epoch: 0, firstSequence: 20, lastSequence: 21) == .new)
            try log.close()
        }
    }
}
