@testable import Broker
import Foundation
import KafkaProtocol
import NIOCore
import Testing

/// Groups over the wire on an in-process broker: FindCoordinator, the join/sync/commit path, and
/// offsets and group metadata surviving a restart through `__consumer_offsets`.
@Suite("Group coordinator durability", .serialized)
struct GroupDurabilityTests {
    static let overrides = ["group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "5"]

    @Test("FindCoordinator names this broker and creates __consumer_offsets; a transaction key gets COORDINATOR_NOT_AVAILABLE")
    func findCoordinator() async throws {
        let b = try await TestBroker.start(Self.overrides)
        let c = try await RawKafkaConnection(port: b.broker.kafkaPort)
        guard case .findCoordinator(let r) = try await c.roundTrip(FindCoordinatorRequest(keyType: 0, coordinatorKeys: ["g1", "g2"]), version: 4)
        else { Issue.record("wrong response"); return }
        #expect(r.coordinators.map(\.errorCode) == [0, 0])
        #expect(r.coordinators.allSatisfy { $0.nodeId == 1 && $0.port == Int32(b.broker.kafkaPort) })
        guard case .findCoordinator(let t) = try await c.roundTrip(FindCoordinatorRequest(key: "tx", keyType: 1), version: 3)
        else { Issue.record("wrong response"); return }
        #expect(t.errorCode == KafkaErrorCode.coordinatorNotAvailable.code)
        guard case .findCoordinator(let v0) = try await c.roundTrip(FindCoordinatorRequest(key: "g1"), version: 0)
        else { Issue.record("wrong response"); return }
        #expect(v0.errorCode == 0 && v0.nodeId == 1)
        guard case .metadata(let m) = try await c.roundTrip(MetadataRequest(topics: [.init(name: "__consumer_offsets")]), version: 12)
        else { Issue.record("wrong response"); return }
        #expect(m.topics.first?.partitions.count == 5)
        #expect(m.topics.first?.isInternal == true)
        await c.close()
        await b.stop()
    }

    @Test("a member's commit and the group survive a broker restart: OffsetFetch (v1, v8) and DescribeGroups read them back")
    func commitSurvivesRestart() async throws {
        let first = try await TestBroker.start(Self.overrides)
        let c = try await RawKafkaConnection(port: first.broker.kafkaPort)
        guard case .createTopics = try await c.roundTrip(
            CreateTopicsRequest(topics: [.init(name: "t", numPartitions: 2, replicationFactor: 1)], timeoutMs: 1000), version: 7)
        else { Issue.record("wrong"); return }
        let proto = JoinGroupRequest.JoinGroupRequestProtocol(name: "range", metadata: ByteBuffer(bytes: [0, 0, 0, 0, 0, 1, 0, 1, 0x74, 0xff, 0xff, 0xff, 0xff]))
        var join = JoinGroupRequest(groupId: "grp", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: "", protocolType: "consumer", protocols: [proto])
        guard case .joinGroup(let j1) = try await c.roundTrip(join, version: 9) else { Issue.record("wrong"); return }
        #expect(j1.errorCode == KafkaErrorCode.memberIdRequired.code)
        join.memberId = j1.memberId
        guard case .joinGroup(let j2) = try await c.roundTrip(join, version: 9) else { Issue.record("wrong"); return }
        #expect(j2.errorCode == 0)
        #expect(j2.generationId == 1 && j2.leader == j1.memberId && j2.protocolName == "range")
        let sync = SyncGroupRequest(groupId: "grp", generationId: 1, memberId: j1.memberId, protocolType: "consumer", protocolName: "range",
                                    assignments: [.init(memberId: j1.memberId, assignment: ByteBuffer(string: "assigned"))])
        guard case .syncGroup(let s) = try await c.roundTrip(sync, version: 5) else { Issue.record("wrong"); return }
        #expect(s.errorCode == 0 && s.assignment == ByteBuffer(string: "assigned"))
        guard case .heartbeat(let h) = try await c.roundTrip(HeartbeatRequest(groupId: "grp", generationId: 1, memberId: j1.memberId), version: 4)
        else { Issue.record("wrong"); return }
        #expect(h.errorCode == 0)

        func commit(_ gen: Int32, _ member: String, _ offset: Int64) async throws -> [Int16] {
            let req = OffsetCommitRequest(groupId: "grp", generationIdOrMemberEpoch: gen, memberId: member,
                                          topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: 3, committedMetadata: "meta"),
                                                                                  .init(partitionIndex: 9, committedOffset: 1)])])
            guard case .offsetCommit(let r) = try await c.roundTrip(req, version: 8) else { throw TestError("wrong") }
            return r.topics.flatMap { $0.partitions.map(\.errorCode) }
        }
        #expect(try await commit(7, j1.memberId, 1) == [KafkaErrorCode.illegalGeneration.code, KafkaErrorCode.illegalGeneration.code])
        #expect(try await commit(1, "ghost", 1) == [KafkaErrorCode.unknownMemberId.code, KafkaErrorCode.unknownMemberId.code])
        #expect(try await commit(1, j1.memberId, 42) == [0, KafkaErrorCode.unknownTopicOrPartition.code])
        // A group-less (simple) commit to another group.
        guard case .offsetCommit(let simple) = try await c.roundTrip(OffsetCommitRequest(groupId: "simple", topics: [.init(name: "t", partitions: [.init(partitionIndex: 1, committedOffset: 5)])]), version: 2)
        else { Issue.record("wrong"); return }
        #expect(simple.topics.first?.partitions.first?.errorCode == 0)
        await c.close()
        await first.broker.shutdown()

        var properties = ["log.dirs": first.directory, "listeners": "PLAINTEXT://127.0.0.1:0", "petrel.metrics.listener": ""]
        for (k, v) in Self.overrides { properties[k] = v }
        let second = try await PetrelBroker.start(config: try BrokerConfig(properties), logger: .init(label: "test"))
        let d = try await RawKafkaConnection(port: second.kafkaPort)
        guard case .offsetFetch(let f1) = try await d.roundTrip(
            OffsetFetchRequest(groupId: "grp", topics: [.init(name: "t", partitionIndexes: [0, 1])]), version: 1)
        else { Issue.record("wrong"); return }
        #expect(f1.topics.first?.partitions.map(\.committedOffset) == [42, -1])
        #expect(f1.topics.first?.partitions.first?.metadata == "meta")
        guard case .offsetFetch(let f8) = try await d.roundTrip(
            OffsetFetchRequest(groups: [.init(groupId: "grp", topics: nil), .init(groupId: "simple", topics: nil), .init(groupId: "none", topics: nil)]), version: 8)
        else { Issue.record("wrong"); return }
        #expect(f8.groups.map(\.groupId) == ["grp", "simple", "none"])
        #expect(f8.groups[0].topics.first?.partitions.map(\.committedOffset) == [42])
        #expect(f8.groups[0].topics.first?.partitions.first?.committedLeaderEpoch == 3)
        #expect(f8.groups[1].topics.first?.partitions.map { [Int64($0.partitionIndex), $0.committedOffset] } == [[1, 5]])
        #expect(f8.groups[2].topics.isEmpty)
        guard case .describeGroups(let dg) = try await d.roundTrip(DescribeGroupsRequest(groups: ["grp", "nope"]), version: 5)
        else { Issue.record("wrong"); return }
        #expect(dg.groups[0].groupState == "Stable")
        #expect(dg.groups[0].protocolData == "range")
        #expect(dg.groups[0].members.map(\.memberId) == [j1.memberId])
        #expect(dg.groups[0].members.first?.memberAssignment == ByteBuffer(string: "assigned"))
        #expect(dg.groups[1].groupState == "Dead")
        guard case .listGroups(let lg) = try await d.roundTrip(ListGroupsRequest(statesFilter: ["stable"]), version: 4)
        else { Issue.record("wrong"); return }
        #expect(lg.groups.map(\.groupId) == ["grp"])
        // The restored member is still in the group: its heartbeat is accepted, a non-empty group cannot be deleted.
        guard case .heartbeat(let h2) = try await d.roundTrip(HeartbeatRequest(groupId: "grp", generationId: 1, memberId: j1.memberId), version: 4)
        else { Issue.record("wrong"); return }
        #expect(h2.errorCode == 0)
        guard case .deleteGroups(let del) = try await d.roundTrip(DeleteGroupsRequest(groupsNames: ["grp", "simple", "nope"]), version: 2)
        else { Issue.record("wrong"); return }
        #expect(del.results.map(\.errorCode) == [KafkaErrorCode.nonEmptyGroup.code, 0, KafkaErrorCode.groupIdNotFound.code])
        guard case .leaveGroup(let lv) = try await d.roundTrip(LeaveGroupRequest(groupId: "grp", members: [.init(memberId: j1.memberId)]), version: 5)
        else { Issue.record("wrong"); return }
        #expect(lv.errorCode == 0 && lv.members.map(\.errorCode) == [0])
        guard case .offsetDelete(let od) = try await d.roundTrip(OffsetDeleteRequest(groupId: "grp", topics: [.init(name: "t", partitions: [.init(partitionIndex: 0)])]), version: 0)
        else { Issue.record("wrong"); return }
        #expect(od.errorCode == 0 && od.topics.first?.partitions.first?.errorCode == 0)
        guard case .offsetFetch(let after) = try await d.roundTrip(
            OffsetFetchRequest(groupId: "grp", topics: nil), version: 7)
        else { Issue.record("wrong"); return }
        #expect(after.topics.isEmpty)
        await d.close()
        await TestBroker(broker: second, directory: first.directory).stop()
    }
}
