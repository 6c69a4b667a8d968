import Foundation
import Testing

@testable import LogStorage

@Suite("Checkpoint files and the leader epoch cache")
struct CheckpointTests {
    @Test("offset checkpoints: Kafka's exact text, round trip, atomic write")
    func offsetCheckpoint() throws {
        let offsets: [TopicPartition: Int64] = [
            TopicPartition(topic: "orders", partition: 1): 1200,
            TopicPartition(topic: "orders", partition: 0): 1234,
            TopicPartition(topic: "__consumer_offsets", partition: 49): 0,
            TopicPartition(topic: "my-topic-2", partition: 3): 7,
        ]
        let text = String(decoding: OffsetCheckpointFile.encode(offsets), as: UTF8.self)
        #expect(text == "0\n4\n__consumer_offsets 49 0\nmy-topic-2 3 7\norders 0 1234\norders 1 1200\n")
        #expect(try OffsetCheckpointFile.decode(Array(text.utf8)) == offsets)
        #expect(try OffsetCheckpointFile.decode(Array("0\n0\n".utf8)).isEmpty)
        // Written by Kafka itself (no trailing newline is tolerated too).
        #expect(try OffsetCheckpointFile.decode(Array("0\n1\nt 0 5".utf8)) == [TopicPartition(topic: "t", partition: 0): 5])

        try withTemporaryDirectory { dir in
            let path = dir + "/" + OffsetCheckpointFile.recoveryPointFileName
            #expect(try OffsetCheckpointFile.read(path: path).isEmpty)
            try OffsetCheckpointFile.write(offsets, to: path)
            #expect(try OffsetCheckpointFile.read(path: path) == offsets)
            #expect(String(decoding: fileBytes(path), as: UTF8.self) == text)
            #expect(!fileExists(path + ".tmp"))
        }
    }

    @Test(
        "corrupt checkpoints are refused with the line",
        arguments: [
            ("", 1), ("1\n0\n", 1), ("x\n", 1), ("0\n", 2), ("0\n2\nt 0 1\n", 2), ("0\n1\nt 0\n", 3), ("0\n1\nt x 1\n", 3),
            ("0\n1\nt 0 1\nu 0 1\n", 2),
        ])
    func corruptCheckpoint(_ text: String, _ line: Int) {
        #expect {
            try OffsetCheckpointFile.decode(Array(text.utf8), path: "cp")
        } throws: { error in
            guard case .corruptCheckpoint("cp", let at, _) = error as? LogStorageError else { return false }
            return at == line
        }
    }

    @Test("leader-epoch-checkpoint text")
    func epochCheckpoint() throws {
        let entries = [EpochEntry(epoch: 0, startOffset: 0), EpochEntry(epoch: 3, startOffset: 120)]
        let text = String(decoding: LeaderEpochCheckpointFile.encode(entries), as: UTF8.self)
        #expect(text == "0\n2\n0 0\n3 120\n")
        #expect(try LeaderEpochCheckpointFile.decode(Array(text.utf8)) == entries)
        try withTemporaryDirectory { dir in
            let path = dir + "/leader-epoch-checkpoint"
            #expect(try LeaderEpochCheckpointFile.read(path: path) == nil)
            try LeaderEpochCheckpointFile.write(entries, to: path)
            #expect(try LeaderEpochCheckpointFile.read(path: path) == entries)
        }
    }

    @Test("leader epoch cache: assign, end offsets, truncation")
    func epochCache() {
        var cache = LeaderEpochCache()
        do {
            let changed = cache.assign(epoch: 1, startOffset: 0)
            #expect(changed)
        }
        do {
            let changed = cache.assign(epoch: 1, startOffset: 5)  // same epoch, later start: no change
            #expect(!changed)
        }
        do {
            let changed = cache.assign(epoch: 3, startOffset: 10)
            #expect(changed)
        }
        do {
            let changed = cache.assign(epoch: 5, startOffset: 20)
            #expect(changed)
        }
        #expect(cache.entries.map(\.epoch) == [1, 3, 5])

        #expect(cache.endOffset(for: 5, logEndOffset: 30) == (5, 30))
        #expect(cache.endOffset(for: 3, logEndOffset: 30) == (3, 20))
        #expect(cache.endOffset(for: 4, logEndOffset: 30) == (3, 20))  // unknown epoch: the one below
        #expect(cache.endOffset(for: 0, logEndOffset: 30) == (0, 0))  // below the first epoch
        #expect(cache.endOffset(for: 6, logEndOffset: 30) == (-1, -1))
        #expect(cache.endOffset(for: -1, logEndOffset: 30) == (-1, -1))
        #expect(cache.epoch(forOffset: 15) == 3)

        // A conflicting assignment removes entries at or above it.
        var conflicting = cache
        do {
            let changed = conflicting.assign(epoch: 4, startOffset: 15)
            #expect(changed)
        }
        #expect(conflicting.entries == [EpochEntry(epoch: 1, startOffset: 0), EpochEntry(epoch: 3, startOffset: 10), EpochEntry(epoch: 4, startOffset: 15)])

        var fromEnd = cache
        do {
            let changed = fromEnd.truncateFromEnd(endOffset: 20)
            #expect(changed)
        }
        #expect(fromEnd.entries.map(\.epoch) == [1, 3])
        do {
            let changed = fromEnd.truncateFromEnd(endOffset: 50)
            #expect(!changed)
        }

        var fromStart = cache
        do {
            let changed = fromStart.truncateFromStart(startOffset: 12)
            #expect(changed)
        }
        #expect(fromStart.entries == [EpochEntry(epoch: 3, startOffset: 12), EpochEntry(epoch: 5, startOffset: 20)])
        do {
            let changed = fromStart.truncateFromStart(startOffset: 12)
            #expect(!changed)
        }
    }

    @Test("errors name the partition, the file and what to do")
    func errorDescriptions() {
        let out = LogStorageError.offsetOutOfRange(TopicPartition(topic: "orders", partition: 3), requested: 5, logStartOffset: 10, logEndOffset: 20)
        #expect(out.description.contains("orders-3") && out.description.contains("10 to 20"))
        #expect(out.kafkaErrorCode == 1)
        let io = LogStorageError.io(path: "/data/orders-0/00000000000000000000.log", errno: 28, operation: "pwrite")
        #expect(io.description.contains("/data/orders-0/00000000000000000000.log") && io.description.contains("pwrite"))
        #expect(io.kafkaErrorCode == 56)
        #expect(LogStorageError.outOfOrderSequence(testTopic, producerId: 1, expected: 2, received: 3).kafkaErrorCode == 45)
    }
}
