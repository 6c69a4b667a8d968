@testable import Broker
import KafkaProtocol
import LogStorage
import NIOCore
import Testing

/// The classic group state machine (`ClassicGroup`), driven with explicit times.
@Suite("Group state machine")
struct GroupCoordinatorTests {
    final class Ids {
        var n = 0
        func next() -> String { n += 1; return "member-\(n)" }
    }

    static func bytes(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    static func input(_ id: String = "", instance: String? = nil, protocols: [String] = ["range"], session: Int32 = 10_000,
                      rebalance: Int32 = 30_000, requireId: Bool = false, meta: String = "m") -> JoinInput {
        JoinInput(memberId: id, groupInstanceId: instance, clientId: "c", clientHost: "/127.0.0.1", sessionTimeoutMs: session,
                  rebalanceTimeoutMs: rebalance, protocolType: "consumer", protocols: protocols.map { ($0, bytes(meta)) },
                  requireKnownMemberId: requireId)
    }

    static func joins(_ outputs: [GroupOutput]) -> [Int: JoinResult] {
        var r: [Int: JoinResult] = [:]
        for o in outputs { if case .join(let t, let j) = o { r[t] = j } }
        return r
    }

    static func syncs(_ outputs: [GroupOutput]) -> [Int: SyncResult] {
        var r: [Int: SyncResult] = [:]
        for o in outputs { if case .sync(let t, let s) = o { r[t] = s } }
        return r
    }

    /// A group with the given members, Stable at generation 1 (no initial delay).
    static func stableGroup(_ count: Int, ids: Ids, now: Int64 = 0) -> (ClassicGroup, [String]) {
        var g = ClassicGroup(groupId: "g", initialRebalanceDelayMs: 0)
        var members: [String] = []
        // The first member joins alone (generation 1), then the rest join and everyone rejoins.
        let first = joins(g.join(input(), token: 1, now: now, newMemberId: ids.next))[1]!
        members.append(first.memberId)
        var token = 10
        var all: [GroupOutput] = []
        for _ in 1..<max(count, 1) {
            token += 1
            all += g.join(input(), token: token, now: now, newMemberId: ids.next)
        }
        if count > 1 {
            all += g.join(input(first.memberId), token: 100, now: now, newMemberId: ids.next)
            for (_, j) in joins(all) where j.error == .none && !members.contains(j.memberId) { members.append(j.memberId) }
        }
        _ = g.sync(memberId: g.leaderId!, instanceId: nil, generationId: g.generationId, protocolType: nil, protocolName: nil,
                   assignments: Dictionary(uniqueKeysWithValues: members.map { ($0, bytes("a-\($0)")) }), token: 999, now: now)
        return (g, members)
    }

    @Test("v4+: the first join gets MEMBER_ID_REQUIRED and an id; joining with it forms generation 1 with that member as leader")
    func memberIdRequired() {
        let ids = Ids()
        var g = ClassicGroup(groupId: "g", initialRebalanceDelayMs: 0)
        let first = Self.joins(g.join(Self.input(requireId: true), token: 1, now: 0, newMemberId: ids.next))[1]!
        #expect(first.error == .memberIdRequired)
        #expect(first.memberId == "member-1")
        #expect(g.isEmpty)
        let second = Self.joins(g.join(Self.input("member-1", requireId: true), token: 2, now: 10, newMemberId: ids.next))[2]!
        #expect(second.error == .none)
        #expect(second.generationId == 1)
        #expect(second.leader == "member-1")
        #expect(second.members.count == 1)
        #expect(second.protocolName == "range")
        #expect(g.phase == .completingRebalance)
        let out = g.sync(memberId: "member-1", instanceId: nil, generationId: 1, protocolType: "consumer", protocolName: "range",
                         assignments: ["member-1": Self.bytes("A")], token: 3, now: 20)
        #expect(Self.syncs(out)[3]?.assignment == Self.bytes("A"))
        #expect(out.contains { if case .persistGroup = $0 { return true } else { return false } })
        #expect(g.phase == .stable)
    }

    @Test("a second member triggers a rebalance: heartbeats see REBALANCE_IN_PROGRESS, the leader gets every member, followers wait for the leader's sync")
    func secondMemberRebalance() {
        let ids = Ids()
        var (g, members) = Self.stableGroup(1, ids: ids)
        let m1 = members[0]
        #expect(g.generationId == 1 && g.phase == .stable)
        #expect(Self.joins(g.join(Self.input(), token: 5, now: 100, newMemberId: ids.next)).isEmpty)
        #expect(g.phase == .preparingRebalance)
        #expect(g.heartbeat(memberId: m1, instanceId: nil, generationId: 1, now: 110) == .rebalanceInProgress)
        let out = Self.joins(g.join(Self.input(m1), token: 6, now: 120, newMemberId: ids.next))
        #expect(out.count == 2)
        #expect(out[6]?.generationId == 2 && out[6]?.leader == m1 && out[6]?.members.count == 2)
        let m2 = out[5]!.memberId
        #expect(out[5]?.members.isEmpty == true)
        // The follower's sync waits; the leader's completes both.
        #expect(g.sync(memberId: m2, instanceId: nil, generationId: 2, protocolType: nil, protocolName: nil, assignments: [:], token: 7, now: 130).isEmpty)
        #expect(g.heartbeat(memberId: m2, instanceId: nil, generationId: 2, now: 131) == .none)
        let done = Self.syncs(g.sync(memberId: m1, instanceId: nil, generationId: 2, protocolType: nil, protocolName: nil,
                                     assignments: [m1: Self.bytes("one"), m2: Self.bytes("two")], token: 8, now: 140))
        #expect(done[7]?.assignment == Self.bytes("two"))
        #expect(done[8]?.assignment == Self.bytes("one"))
        #expect(g.phase == .stable)
        // A sync with an old generation is refused.
        #expect(Self.syncs(g.sync(memberId: m2, instanceId: nil, generationId: 1, protocolType: nil, protocolName: nil, assignments: [:], token: 9, now: 150))[9]?.error == .illegalGeneration)
    }

    @Test("protocol selection: a protocol every member supports, most votes first, ties to the first voted in member order")
    func protocolSelection() {
        func select(_ lists: [[String]]) -> String? {
            var g = ClassicGroup(groupId: "g", initialRebalanceDelayMs: 10_000)
            let ids = Ids()
            for (i, l) in lists.enumerated() { _ = g.join(Self.input(protocols: l), token: i, now: 0, newMemberId: ids.next) }
            return g.selectProtocol()
        }
        #expect(select([["roundrobin", "range"], ["range", "roundrobin"], ["range"]]) == "range")
        #expect(select([["a", "b"], ["b", "a"], ["a", "b"]]) == "a")
        #expect(select([["b", "a"], ["a", "b"], ["b", "a"]]) == "b")
        #expect(select([["a", "b"], ["b", "a"]]) == "a")
        #expect(select([["x", "a"], ["y", "a"]]) == "a")
        // A member with no protocol in common is refused.
        var g = ClassicGroup(groupId: "g", initialRebalanceDelayMs: 0)
        let ids = Ids()
        _ = g.join(Self.input(protocols: ["range"]), token: 1, now: 0, newMemberId: ids.next)
        #expect(Self.joins(g.join(Self.input(protocols: ["sticky"]), token: 2, now: 0, newMemberId: ids.next))[2]?.error == .inconsistentGroupProtocol)
    }

    @Test("heartbeat: unknown member and wrong generation get Kafka's errors")
    func heartbeatErrors() {
        let ids = Ids()
        var (g, members) = Self.stableGroup(2, ids: ids)
        #expect(g.generationId == 2)
        #expect(g.heartbeat(memberId: "nobody", instanceId: nil, generationId: 2, now: 1) == .unknownMemberId)
        #expect(g.heartbeat(memberId: members[0], instanceId: nil, generationId: 1, now: 1) == .illegalGeneration)
        #expect(g.heartbeat(memberId: members[1], instanceId: nil, generationId: 2, now: 1) == .none)
        var empty = ClassicGroup(groupId: "e", initialRebalanceDelayMs: 0)
        #expect(empty.heartbeat(memberId: "x", instanceId: nil, generationId: 0, now: 1) == .unknownMemberId)
    }

    @Test("session timeout expires a silent member; the survivor rejoins into the next generation")
    func sessionExpiry() {
        let ids = Ids()
        var (g, members) = Self.stableGroup(2, ids: ids)
        #expect(g.nextDeadline == 10_000)
        // Only the first member keeps heartbeating.
        #expect(g.heartbeat(memberId: members[0], instanceId: nil, generationId: 2, now: 9_000) == .none)
        _ = g.tick(now: 10_000)
        #expect(g.members.map(\.memberId) == [members[0]])
        #expect(g.phase == .preparingRebalance)
        let out = Self.joins(g.join(Self.input(members[0]), token: 1, now: 10_100, newMemberId: ids.next))
        #expect(out[1]?.generationId == 3)
        #expect(out[1]?.members.count == 1)
    }

    @Test("the rebalance timeout ends the join phase: members that did not rejoin are dropped")
    func rebalanceTimeout() {
        let ids = Ids()
        var (g, members) = Self.stableGroup(2, ids: ids, now: 0)
        let m2 = members[1]
        // m2 rejoins with new metadata (a rebalance); m1 keeps heartbeating but never rejoins.
        #expect(Self.joins(g.join(Self.input(m2, meta: "changed"), token: 1, now: 100, newMemberId: ids.next)).isEmpty)
        var out: [GroupOutput] = []
        for t in stride(from: Int64(9_000), through: 27_000, by: 9_000) {
            #expect(g.heartbeat(memberId: members[0], instanceId: nil, generationId: 2, now: t) == .rebalanceInProgress)
            out += g.tick(now: t + 1)
        }
        #expect(out.isEmpty)
        #expect(g.nextDeadline == 30_100)
        out += g.tick(now: 30_100)
        let j = Self.joins(out)[1]
        #expect(j?.error == GroupCoordinatorTests.KafkaNone)
        #expect(j?.generationId == 3)
        #expect(g.members.map(\.memberId) == [m2])
        #expect(g.leaderId == m2)
    }

    static let KafkaNone = KafkaErrorCode.none

    @Test("static membership: no MEMBER_ID_REQUIRED; a rejoin with the same instance id replaces the member without a rebalance and fences the old id")
    func staticMembership() {
        let ids = Ids()
        var g = ClassicGroup(groupId: "g", initialRebalanceDelayMs: 0)
        let j = Self.joins(g.join(Self.input(instance: "i1", requireId: true), token: 1, now: 0, newMemberId: ids.next))[1]!
        #expect(j.error == .none && j.generationId == 1)
        let old = j.memberId
        _ = g.sync(memberId: old, instanceId: "i1", generationId: 1, protocolType: nil, protocolName: nil, assignments: [old: Self.bytes("A")], token: 2, now: 1)
        #expect(g.phase == .stable)
        let again = Self.joins(g.join(Self.input(instance: "i1", requireId: true), token: 3, now: 5, newMemberId: ids.next))[3]!
        #expect(again.error == .none)
        #expect(again.memberId != old)
        #expect(again.generationId == 1)
        #expect(g.phase == .stable)
        #expect(g.leaderId == again.memberId)
        #expect(again.leader == old)  // pre-v9: the old id, so the member does not run the assignor
        #expect(again.members.isEmpty)
        #expect(g.heartbeat(memberId: old, instanceId: "i1", generationId: 1, now: 6) == .fencedInstanceId)
        #expect(g.heartbeat(memberId: again.memberId, instanceId: "i1", generationId: 1, now: 6) == .none)
        let s = Self.syncs(g.sync(memberId: again.memberId, instanceId: "i1", generationId: 1, protocolType: nil, protocolName: nil, assignments: [:], token: 4, now: 7))
        #expect(s[4]?.assignment == Self.bytes("A"))
        // Leaving by instance id.
        let (errors, _) = g.leave([(memberId: "", instanceId: "i1")], now: 8)
        #expect(errors == [.none])
        #expect(g.isEmpty)
    }

    @Test("leave: a departure starts a rebalance; an unknown member gets UNKNOWN_MEMBER_ID; the last one leaving empties the group")
    func leave() {
        let ids = Ids()
        var (g, members) = Self.stableGroup(2, ids: ids)
        let (errors, _) = g.leave([(members[1], nil), ("ghost", nil)], now: 5)
        #expect(errors == [.none, .unknownMemberId])
        #expect(g.phase == .preparingRebalance)
        let out = Self.joins(g.join(Self.input(members[0]), token: 1, now: 6, newMemberId: ids.next))
        #expect(out[1]?.generationId == 3)
        let (_, last) = g.leave([(members[0], nil)], now: 7)
        #expect(g.phase == .empty)
        #expect(g.generationId == 4)
        #expect(last.contains { if case .persistGroup = $0 { return true } else { return false } })
    }

    @Test("group.initial.rebalance.delay.ms: a new group waits, extended while members keep arriving, bounded by the rebalance timeout")
    func initialDelay() {
        let ids = Ids()
        var g = ClassicGroup(groupId: "g", initialRebalanceDelayMs: 3_000)
        #expect(Self.joins(g.join(Self.input(rebalance: 10_000), token: 1, now: 0, newMemberId: ids.next)).isEmpty)
        #expect(g.nextDeadline == 3_000)
        #expect(Self.joins(g.join(Self.input(rebalance: 10_000), token: 2, now: 1_000, newMemberId: ids.next)).isEmpty)
        #expect(g.tick(now: 3_000).isEmpty)  // a member arrived during the delay: wait another delay
        #expect(g.nextDeadline == 6_000)
        let out = Self.joins(g.tick(now: 6_000))
        #expect(out.count == 2)
        #expect(out[1]?.generationId == 1)
    }

    @Test("SyncGroup outside a generation and during a rebalance")
    func syncErrors() {
        let ids = Ids()
        var (g, members) = Self.stableGroup(2, ids: ids)
        #expect(Self.syncs(g.sync(memberId: "ghost", instanceId: nil, generationId: 2, protocolType: nil, protocolName: nil, assignments: [:], token: 1, now: 1))[1]?.error == .unknownMemberId)
        _ = g.join(Self.input(), token: 2, now: 2, newMemberId: ids.next)
        #expect(Self.syncs(g.sync(memberId: members[0], instanceId: nil, generationId: 2, protocolType: nil, protocolName: nil, assignments: [:], token: 3, now: 3))[3]?.error == .rebalanceInProgress)
        #expect(Self.syncs(g.sync(memberId: members[0], instanceId: nil, generationId: 2, protocolType: "other", protocolName: nil, assignments: [:], token: 4, now: 3))[4]?.error == .inconsistentGroupProtocol)
    }

    @Test("GroupMetadataValue round trip restores a Stable group with its members and assignments")
    func restore() throws {
        let ids = Ids()
        let (g, members) = Self.stableGroup(2, ids: ids)
        var buffer = GroupCoordinator.groupValue(g)
        let prefix: Int16? = buffer.readInteger()
        let version = try #require(prefix)
        let value = try GroupMetadataValue(from: &buffer, version: version)
        var restored = ClassicGroup(groupId: "g", initialRebalanceDelayMs: 0)
        restored.restore(value, now: 0)
        #expect(restored.phase == .stable)
        #expect(restored.generationId == g.generationId)
        #expect(restored.leaderId == g.leaderId)
        #expect(restored.members.map(\.memberId) == members)
        #expect(restored.members.map(\.assignment) == g.members.map(\.assignment))
        #expect(restored.heartbeat(memberId: members[1], instanceId: nil, generationId: g.generationId, now: 1) == .none)
    }

    @Test("coordinator placement: Java's String.hashCode over UTF-16, Utils.abs, modulo the partition count")
    func placement() {
        #expect(GroupCoordinator.javaHashCode("") == 0)
        #expect(GroupCoordinator.javaHashCode("hello") == 99_162_322)
        #expect(GroupCoordinator.javaHashCode("é") == 233)
        #expect(GroupCoordinator.javaHashCode("😀") == 55_357 &* 31 &+ 56_832)
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Utils.abs maps it to 0.
        #expect(GroupCoordinator.javaHashCode("polygenelubricants") == Int32.min)
        #expect(GroupCoordinator.partition(for: "polygenelubricants", partitions: 50) == 0)
        // "console-consumer-1".hashCode() = a negative number; Kafka takes abs first.
        let h = GroupCoordinator.javaHashCode("my-group")
        #expect(GroupCoordinator.partition(for: "my-group", partitions: 50) == abs(h) % 50)
    }

    @Test("the subscribed topics of a ConsumerProtocolSubscription")
    func subscription() {
        var b = ByteBuffer()
        b.writeInteger(Int16(1))
        b.writeInteger(Int32(2))
        for t in ["a", "bc"] { b.writeInteger(Int16(t.utf8.count)); b.writeString(t) }
        b.writeInteger(Int32(-1))
        #expect(GroupCoordinator.subscribedTopics(b) == ["a", "bc"])
    }

    @Test("offsets.retention: offsets of an empty group expire after the retention counted from when it emptied; a live group keeps them")
    func retention() {
        let tp = TopicPartition(topic: "t", partition: 0)
        let offsets = [tp: CommittedOffset(offset: 1, leaderEpoch: -1, metadata: "", commitTimestamp: 1_000)]
        #expect(GroupCoordinator.expiredOffsets(offsets, group: nil, now: 1_500, retentionMs: 1_000).isEmpty)
        #expect(GroupCoordinator.expiredOffsets(offsets, group: nil, now: 2_000, retentionMs: 1_000) == [tp])
        let ids = Ids()
        var (g, members) = Self.stableGroup(1, ids: ids, now: 0)
        #expect(GroupCoordinator.expiredOffsets(offsets, group: g, now: 1_000_000, retentionMs: 1_000).isEmpty)
        _ = g.leave([(members[0], nil)], now: 5_000)
        #expect(g.phase == .empty)
        #expect(GroupCoordinator.expiredOffsets(offsets, group: g, now: 5_500, retentionMs: 1_000).isEmpty)
        #expect(GroupCoordinator.expiredOffsets(offsets, group: g, now: 6_000, retentionMs: 1_000) == [tp])
        let explicit = [tp: CommittedOffset(offset: 1, leaderEpoch: -1, metadata: "", commitTimestamp: 1_000, expireTimestamp: 1_200)]
        #expect(GroupCoordinator.expiredOffsets(explicit, group: nil, now: 1_200, retentionMs: 1_000_000) == [tp])
    }
}
