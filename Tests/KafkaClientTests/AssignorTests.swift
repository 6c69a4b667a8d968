import NIOCore
import Testing
@testable import KafkaClient

@Suite struct AssignorTests {
    func member(_ id: String, _ topics: [String], owned: [TopicPartition] = [], generation: Int32 = -1) -> AssignorMember {
        AssignorMember(memberId: id, subscription: .init(topics: topics, ownedPartitions: owned, generationId: generation))
    }

    func tps(_ topic: String, _ ps: [Int32]) -> [TopicPartition] { ps.map { TopicPartition(topic: topic, partition: $0) } }

    @Test func rangeMatchesKafka() {
        // Kafka's RangeAssignor doc example: t0, t1 with 3 partitions, C0 and C1.
        let a = Assignors.range(members: [member("C1", ["t0", "t1"]), member("C0", ["t0", "t1"])], partitionsPerTopic: ["t0": 3, "t1": 3])
        #expect(a["C0"] == tps("t0", [0, 1]) + tps("t1", [0, 1]))
        #expect(a["C1"] == tps("t0", [2]) + tps("t1", [2]))
    }

    @Test func roundRobinMatchesKafka() {
        let a = Assignors.roundRobin(members: [member("C0", ["t0", "t1"]), member("C1", ["t0", "t1"])], partitionsPerTopic: ["t0": 3, "t1": 3])
        #expect(a["C0"] == tps("t0", [0, 2]) + tps("t1", [1]))
        #expect(a["C1"] == tps("t0", [1]) + tps("t1", [0, 2]))
    }

    @Test func roundRobinSkipsUnsubscribedMembers() {
        let a = Assignors.roundRobin(
            members: [member("C0", ["t0"]), member("C1", ["t0", "t1"]), member("C2", ["t0", "t1", "t2"])],
            partitionsPerTopic: ["t0": 1, "t1": 2, "t2": 3])
        // Kafka's doc example: C0 [t0p0], C1 [t1p0], C2 [t1p1, t2p0, t2p1, t2p2].
        #expect(a["C0"] == tps("t0", [0]))
        #expect(a["C1"] == tps("t1", [0]))
        #expect(a["C2"] == tps("t1", [1]) + tps("t2", [0, 1, 2]))
    }

    @Test func cooperativeStickyFirstAssignmentIsBalanced() {
        let a = Assignors.cooperativeSticky(members: [member("a", ["t"]), member("b", ["t"]), member("c", ["t"])], partitionsPerTopic: ["t": 7])
        let counts = a.values.map(\.count).sorted()
        #expect(counts == [2, 2, 3])
        #expect(Set(a.values.flatMap { $0 }).count == 7)
    }

    @Test func cooperativeStickyKeepsOwnedAndWithholdsMovingPartitions() {
        // a owned all 6; b joins. a keeps 3, the other 3 are withheld this round (a must revoke
        // them first), b gets nothing yet.
        let owned = tps("t", [0, 1, 2, 3, 4, 5])
        let first = Assignors.cooperativeSticky(members: [member("a", ["t"], owned: owned, generation: 1), member("b", ["t"])], partitionsPerTopic: ["t": 6])
        #expect(first["a"]!.count == 3)
        #expect(Set(first["a"]!).isSubset(of: Set(owned)))
        #expect(first["b"] == [])
        // Next round: a owns its 3; b gets the other 3.
        let second = Assignors.cooperativeSticky(
            members: [member("a", ["t"], owned: first["a"]!, generation: 2), member("b", ["t"], generation: 2)], partitionsPerTopic: ["t": 6])
        #expect(second["a"] == first["a"])
        #expect(Set(second["b"]!) == Set(owned).subtracting(first["a"]!))
    }

    @Test func cooperativeStickyHighestGenerationWinsConflicts() {
        let p0 = tps("t", [0])
        let a = Assignors.cooperativeSticky(
            members: [member("old", ["t"], owned: p0, generation: 1), member("new", ["t"], owned: p0, generation: 3)],
            partitionsPerTopic: ["t": 2])
        #expect(a["new"]!.contains(p0[0]))
        #expect(!a["old"]!.contains(p0[0]))
    }

    @Test func consumerProtocolRoundTrips() throws {
        let sub = ConsumerProtocol.Subscription(topics: ["b", "a"], ownedPartitions: tps("a", [1, 0]), generationId: 4, rackId: "r1")
        for v: Int16 in 0...3 {
            let decoded = try ConsumerProtocol.decodeSubscription(try ConsumerProtocol.encodeSubscription(sub, version: v))
            #expect(decoded.topics == ["a", "b"])
            #expect(decoded.ownedPartitions == (v >= 1 ? tps("a", [0, 1]) : []))
            #expect(decoded.generationId == (v >= 2 ? 4 : -1))
        }
        let assignment = ConsumerProtocol.Assignment(partitions: tps("x", [2, 0]) + tps("a", [5]))
        let back = try ConsumerProtocol.decodeAssignment(try ConsumerProtocol.encodeAssignment(assignment))
        #expect(back.partitions == tps("a", [5]) + tps("x", [0, 2]))
        #expect(try ConsumerProtocol.decodeAssignment(ByteBuffer()).partitions == [])
    }

    @Test func hostileConsumerProtocolBytesThrow() {
        var garbage = ByteBuffer()
        garbage.writeInteger(Int16(0))
        garbage.writeInteger(Int32(Int32.max))  // topic count
        #expect(throws: KafkaClientError.self) { try ConsumerProtocol.decodeSubscription(garbage) }
        #expect(throws: KafkaClientError.self) { try ConsumerProtocol.decodeAssignment(ByteBuffer(bytes: [0])) }
    }
}
