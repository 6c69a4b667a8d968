@testable import Broker
import Foundation
import KafkaProtocol
import LogStorage
import MetadataQuorum
import NIOCore
import Testing

/// Metadata snapshots: the image written as a KRaft-style snapshot file reads back as the same
/// image; a torn or corrupt file is refused; in a running cluster the log is compacted into
/// snapshots and a node that was away past the leader's log start catches up with FetchSnapshot.
@Suite("Metadata snapshots")
struct MetadataSnapshotTests {
    static func sampleImage() -> MetadataImage {
        var image = MetadataImage()
        var broker = RegisterBrokerRecord()
        broker.brokerId = 2
        broker.incarnationId = KafkaUUID.random()
        broker.brokerEpoch = 7
        broker.endPoints = [.init(name: "PLAINTEXT", host: "127.0.0.1", port: 9093, securityProtocol: 0),
                            .init(name: "EXTERNAL", host: "localhost", port: 19093, securityProtocol: 0)]
        broker.rack = "r1"
        broker.fenced = true
        image.apply(.registerBroker(broker))
        let id = KafkaUUID.random()
        image.apply(.topic(TopicRecord(name: "orders", topicId: id)))
        image.apply(.config(ConfigRecord(resourceType: ConfigResourceType.topic.rawValue, resourceName: "orders", name: "retention.ms", value: "1000")))
        image.apply(.config(ConfigRecord(resourceType: ConfigResourceType.broker.rawValue, resourceName: "", name: "log.retention.ms", value: "5")))
        for p in Int32(0)..<3 {
            image.apply(.partition(PartitionRecord(partitionId: p, topicId: id, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 0)))
        }
        var change = PartitionChangeRecord()
        change.topicId = id
        change.partitionId = 1
        change.isr = [2, 3]
        change.leader = 2
        image.apply(.partitionChange(change))
        var pids = ProducerIdsRecord()
        pids.nextProducerId = 5000
        image.apply(.producerIds(pids))
        image.offset = 41
        return image
    }

    @Test("an image written as a snapshot file reads back as the same image")
    func roundTrip() throws {
        let image = Self.sampleImage()
        let id = EpochEndOffset(epoch: 3, endOffset: 42)
        let bytes = try MetadataSnapshotFile.encode(image.snapshotRecords(), id: id, timestamp: 1)
        let back = MetadataImage.fromSnapshot(try MetadataSnapshotFile.decode(bytes), offset: 41)
        #expect(back == image)
        #expect(back.topics["orders"]?.partitions[1].leaderEpoch == 1)
        #expect(MetadataSnapshotFile.name(id) == "00000000000000000042-0000000003.checkpoint")
        #expect(MetadataSnapshotFile.id(fromName: MetadataSnapshotFile.name(id)) == id)
        #expect(MetadataSnapshotFile.id(fromName: MetadataSnapshotFile.name(id) + ".part") == nil)
    }

    @Test("a torn or corrupted snapshot file is refused")
    func corruptFiles() throws {
        let bytes = try MetadataSnapshotFile.encode(Self.sampleImage().snapshotRecords(), id: EpochEndOffset(epoch: 1, endOffset: 10), timestamp: 1)
        // Torn: the footer batch is missing.
        var torn = bytes
        torn.moveWriterIndex(to: bytes.writerIndex - 20)
        #expect(throws: (any Error).self) { _ = try MetadataSnapshotFile.decode(torn) }
        // A flipped byte inside the records fails the CRC.
        var flipped = bytes
        let at = flipped.readerIndex + flipped.readableBytes / 2
        flipped.setInteger(flipped.getInteger(at: at, as: UInt8.self)! ^ 0xFF, at: at)
        #expect(throws: (any Error).self) { _ = try MetadataSnapshotFile.decode(flipped) }
        #expect(throws: (any Error).self) { _ = try MetadataSnapshotFile.decode(ByteBuffer()) }
    }

    static func createTopics(_ port: Int, _ names: [String], replicationFactor: Int16) async throws {
        let c = try await RawKafkaConnection(port: port)
        defer { Task { await c.close() } }
        guard case .createTopics(let r) = try await c.roundTrip(
            CreateTopicsRequest(topics: names.map { .init(name: $0, numPartitions: 1, replicationFactor: replicationFactor) }, timeoutMs: 10000), version: 7)
        else { throw TestError("wrong response") }
        for t in r.topics where t.errorCode != 0 { throw TestError("create \(t.name): \(t.errorCode) \(t.errorMessage ?? "")") }
    }

    static func deleteTopics(_ port: Int, _ names: [String]) async throws {
        let c = try await RawKafkaConnection(port: port)
        defer { Task { await c.close() } }
        guard case .deleteTopics(let r) = try await c.roundTrip(DeleteTopicsRequest(topicNames: names, timeoutMs: 10000), version: 5)
        else { throw TestError("wrong response") }
        for t in r.responses where t.errorCode != 0 { throw TestError("delete \(t.name ?? ""): \(t.errorCode)") }
    }

    @Test("the metadata log is compacted into snapshots; a node that lost its metadata log loads the leader's snapshot and drops stray logs; every node restarts from its snapshot, a node behind loads the leader's",
          .timeLimit(.minutes(4)))
    func clusterSnapshots() async throws {
        var nodes = try ClusterTests.makeNodes()
        var started = [PetrelBroker]()
        let extra = ["metadata.log.max.record.bytes.between.snapshots": "4096"]
        func start(_ i: Int) async throws {
            nodes[i].broker = try await PetrelBroker.start(config: try ClusterTests.config(nodes[i], all: nodes, extra: extra), logger: ClusterTests.logger(nodes[i]))
            started.append(nodes[i].broker!)
        }
        func stop(_ i: Int) async {
            await nodes[i].broker?.shutdown()
            nodes[i].broker = nil
        }
        func driver(_ i: Int) -> QuorumDriver? { nodes[i].broker?.runtimeForTests.cluster?.driver }
        func topicNames(_ i: Int) -> Set<String> {
            Set(nodes[i].broker?.runtimeForTests.metadata.current().topics.keys.filter { !$0.hasPrefix("__") } ?? [])
        }
        func snapshotFiles(_ i: Int) -> [EpochEndOffset] { MetadataSnapshotFile.list(in: nodes[i].directory + "/__cluster_metadata-0") }
        defer {
            for n in nodes { try? FileManager.default.removeItem(atPath: n.directory) }
        }
        do {
            for i in nodes.indices { try await start(i) }
            _ = try await ClusterTests.eventually(60, "three registered brokers and a controller") { () -> Bool? in
                let m = try await ClusterTests.metadata(nodes[0].port, topic: "none")
                return m.brokers.count == 3 && m.controllerId > 0 ? true : nil
            }
            // A topic with a replica on node 3, deleted while node 3 is away.
            _ = try await ClusterTests.eventually(20, "the doomed topic") { () -> Bool? in
                try await Self.createTopics(nodes[0].port, ["doomed"], replicationFactor: 3)
                return true
            }
            _ = try await ClusterTests.eventually(20, "node 3's replica of the doomed topic") { () -> Bool? in
                nodes[2].broker?.runtimeForTests.replicas.partition(TopicPartition(topic: "doomed", partition: 0)) != nil ? true : nil
            }
            let node3End = driver(2)!.status().logEndOffset
            await stop(2)

            // Enough metadata that the two others snapshot several times.
            var created = Set<String>()
            for round in 0..<8 {
                let names = (0..<5).map { "t\(round)-\($0)" }
                _ = try await ClusterTests.eventually(20, "topics of round \(round)") { () -> Bool? in
                    let missing = names.filter { !created.contains($0) }
                    if !missing.isEmpty { try await Self.createTopics(nodes[0].port, missing, replicationFactor: 2) }
                    return true
                }
                created.formUnion(names)
            }
            _ = try await ClusterTests.eventually(20, "deleting the doomed topic") { () -> Bool? in
                try await Self.deleteTopics(nodes[0].port, ["doomed"])
                return true
            }
            // More topics until a snapshot on the leader covers the deletion too.
            let deletedBy = (0..<2).compactMap { driver($0)?.status().logEndOffset }.max() ?? 0
            var leaderIndex = -1
            for extraRound in 0..<30 {
                if let i = (0..<2).first(where: { i in
                    guard let d = driver(i), d.status().role == .leader, d.snapshotCounts.written > 0,
                          let newest = snapshotFiles(i).last else { return false }
                    return newest.endOffset > deletedBy && newest.endOffset > node3End
                }) {
                    leaderIndex = i
                    break
                }
                let names = (0..<3).map { "x\(extraRound)-\($0)" }
                _ = try await ClusterTests.eventually(20, "extra topics") { () -> Bool? in
                    let missing = names.filter { !created.contains($0) }
                    if !missing.isEmpty { try await Self.createTopics(nodes[0].port, missing, replicationFactor: 2) }
                    return true
                }
                created.formUnion(names)
                try await Task.sleep(nanoseconds: 200_000_000)
            }
            try #require(leaderIndex >= 0, "no snapshot on the leader covers the topic deletion")
            // The leader's disk log no longer starts at 0.
            let leaderLog = nodes[leaderIndex].broker!.runtimeForTests.replicas.logs.log(for: LocalMetadataLog.topicPartition)!
            #expect(leaderLog.logStartOffset > 0)
            #expect(snapshotFiles(leaderIndex).count <= 2)

            // Node 3 returns having lost its metadata log (its partition logs are still there):
            // it fetches from offset 0, below the leader's log start, so it loads the snapshot,
            // and the log of the topic deleted meanwhile is a stray to delete.
            try FileManager.default.removeItem(atPath: nodes[2].directory + "/__cluster_metadata-0")
            #expect(FileManager.default.fileExists(atPath: nodes[2].directory + "/doomed-0"))
            try await start(2)
            _ = try await ClusterTests.eventually(60, "node 3 to catch up through a snapshot") { () -> Bool? in
                guard let d = driver(2), d.snapshotCounts.installed > 0 else { return nil }
                return topicNames(2) == topicNames(leaderIndex) && topicNames(2) == created ? true : nil
            }
            // The doomed topic's log left node 3's disk; a new topic placed on node 3 works.
            #expect(nodes[2].broker!.runtimeForTests.replicas.logs.log(for: TopicPartition(topic: "doomed", partition: 0)) == nil)
            #expect(!FileManager.default.fileExists(atPath: nodes[2].directory + "/doomed-0"))

            // Every node restarts from its own snapshot plus the log after it.
            for i in nodes.indices {
                let before = topicNames(i)
                await stop(i)
                try await start(i)
                _ = try await ClusterTests.eventually(60, "node \(i + 1) back with the same topics") { () -> Bool? in
                    topicNames(i) == before ? true : nil
                }
            }
            _ = try await ClusterTests.eventually(30, "a topic created after the restarts") { () -> Bool? in
                try await Self.createTopics(nodes[1].port, ["after-restarts"], replicationFactor: 3)
                return true
            }
            _ = try await ClusterTests.eventually(30, "every node to see it") { () -> Bool? in
                nodes.indices.allSatisfy { topicNames($0).contains("after-restarts") } ? true : nil
            }
        } catch {
            for b in started { await b.shutdown() }
            throw error
        }
        for b in started { await b.shutdown() }
    }

    @Test("metadata.log.max.snapshot.interval.ms: a snapshot is taken by age when the log grows too little to reach the size trigger",
          .timeLimit(.minutes(2)))
    func snapshotByAge() async throws {
        let nodes = try ClusterTests.makeNodes()
        var started = [PetrelBroker]()
        defer {
            for n in nodes { try? FileManager.default.removeItem(atPath: n.directory) }
        }
        // Registrations and one topic are all that is written: far below the 20 MiB size
        // trigger, and nothing more arrives after them.
        let extra = ["metadata.log.max.snapshot.interval.ms": "1500"]
        do {
            for node in nodes {
                started.append(try await PetrelBroker.start(config: try ClusterTests.config(node, all: nodes, extra: extra), logger: ClusterTests.logger(node)))
            }
            _ = try await ClusterTests.eventually(30, "three registered brokers") { () -> Bool? in
                try await ClusterTests.metadata(nodes[0].port, topic: "none").brokers.count == 3 ? true : nil
            }
            _ = try await ClusterTests.eventually(20, "a topic") { () -> Bool? in
                try await Self.createTopics(nodes[0].port, ["aged"], replicationFactor: 3)
                return true
            }
            _ = try await ClusterTests.eventually(30, "a snapshot written by age on every node") { () -> Bool? in
                started.allSatisfy { ($0.runtimeForTests.cluster?.driver.snapshotCounts.written ?? 0) > 0 } ? true : nil
            }
            for (i, node) in nodes.enumerated() {
                let snapshots = MetadataSnapshotFile.list(in: node.directory + "/__cluster_metadata-0")
                #expect(!snapshots.isEmpty, "node \(i + 1) has no snapshot file")
            }
        } catch {
            for b in started { await b.shutdown() }
            throw error
        }
        for b in started { await b.shutdown() }
    }
}
