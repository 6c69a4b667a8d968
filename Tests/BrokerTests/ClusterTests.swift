@testable import Broker
import Foundation
import KafkaProtocol
import LogStorage
import Logging
import NIOCore
import NIOPosix
import Testing

/// Three brokers in one process, each with its own ports and data, forming a real cluster over
/// loopback: Raft metadata quorum, registrations, replica fetchers, acks=all and failover.
@Suite("Three-node cluster (in process)", .serialized)
struct ClusterTests {
    struct Node {
        var id: Int32
        var port: Int
        var controllerPort: Int
        var directory: String
        var broker: PetrelBroker?
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func config(_ node: Node, all: [Node], extra: [String: String] = [:]) throws -> BrokerConfig {
        var p = [
            "node.id": "\(node.id)", "process.roles": "broker,controller",
            "listeners": "PLAINTEXT://127.0.0.1:\(node.port),CONTROLLER://127.0.0.1:\(node.controllerPort)",
            "advertised.listeners": "PLAINTEXT://127.0.0.1:\(node.port)",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": all.map { "\($0.id)@127.0.0.1:\($0.controllerPort)" }.joined(separator: ","),
            "log.dirs": node.directory, "petrel.metrics.listener": "",
            "default.replication.factor": "3", "min.insync.replicas": "2", "offsets.topic.replication.factor": "3",
            "broker.session.timeout.ms": "2000", "broker.heartbeat.interval.ms": "300",
            "replica.lag.time.max.ms": "3000", "replica.fetch.wait.max.ms": "200",
        ]
        for (k, v) in extra { p[k] = v }
        return try BrokerConfig(p)
    }

    static func start(_ node: Node, all: [Node]) async throws -> PetrelBroker {
        try await PetrelBroker.start(config: try config(node, all: all), logger: logger(node))
    }

    static func logger(_ node: Node) -> Logger {
        var logger = Logger(label: "test.cluster.\(node.id)")
        let env = ProcessInfo.processInfo.environment
        // In CI the quorum's elections and registrations are logged, so a failure can be read.
        logger.logLevel = env["PETREL_TEST_LOG"] == "2" ? .debug : (env["PETREL_TEST_LOG"] == "1" || env["PETREL_CI"] == "1") ? .info : .warning
        return logger
    }

    static func makeNodes() throws -> [Node] {
        let base = NSTemporaryDirectory() + "petrel-cluster-test-" + UUID().uuidString
        return try (1...3).map { i in
            Node(id: Int32(i), port: try freePort(), controllerPort: try freePort(), directory: base + "/node-\(i)")
        }
    }

    /// Polls `check` until it returns a value or `seconds` pass.
    static func eventually<T>(_ seconds: Double, _ what: String, _ check: () async throws -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let value = try? await check() { return value }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw TestError("timed out after \(seconds) s waiting for \(what)")
    }

    static func metadata(_ port: Int, topic: String) async throws -> MetadataResponse {
        let c = try await RawKafkaConnection(port: port)
        defer { Task { await c.close() } }
        guard case .metadata(let m) = try await c.roundTrip(MetadataRequest(topics: [.init(name: topic)], allowAutoTopicCreation: false), version: 12)
        else { throw TestError("no metadata") }
        return m
    }

    static func batch(_ values: [String]) throws -> ByteBuffer {
        var builder = RecordBatchBuilder()
        for v in values {
            var b = ByteBuffer()
            b.writeString(v)
            try builder.append(key: nil, value: b, timestamp: Int64(Date().timeIntervalSince1970 * 1000))
        }
        return try builder.build().buffer
    }

    static func produce(_ port: Int, topic: String, values: [String], acks: Int16 = -1) async throws -> ProduceResponse.PartitionProduceResponse {
        let c = try await RawKafkaConnection(port: port)
        defer { Task { await c.close() } }
        let request = ProduceRequest(acks: acks, timeoutMs: 5000, topicData: [.init(name: topic, partitionData: [.init(index: 0, records: try batch(values))])])
        guard case .produce(let r) = try await c.roundTrip(request, version: 9), let p = r.responses.first?.partitionResponses.first
        else { throw TestError("no produce response") }
        return p
    }

    static func fetchValues(_ port: Int, topic: String) async throws -> (hw: Int64, values: [String]) {
        let c = try await RawKafkaConnection(port: port)
        defer { Task { await c.close() } }
        var request = FetchRequest()
        request.maxWaitMs = 100
        request.minBytes = 1
        request.topics = [.init(topic: topic, partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])]
        guard case .fetch(let r) = try await c.roundTrip(request, version: 12), let p = r.responses.first?.partitions.first else {
            throw TestError("no fetch response")
        }
        if p.errorCode != 0 { throw TestError("fetch error \(p.errorCode)") }
        var values = [String]()
        var batches = RecordBatchIterator(p.records ?? ByteBuffer())
        while let b = try batches.next() {
            var it = try b.records()
            while let r = try it.next() {
                if var v = r.value { values.append(v.readString(length: v.readableBytes) ?? "") }
            }
        }
        return (p.highWatermark, values)
    }

    @Test("three nodes elect a controller, replicate an RF=3 topic, and survive the leader's loss without losing acks=all writes",
          .timeLimit(.minutes(3)))
    func replicateAndFailOver() async throws {
        var nodes = try Self.makeNodes()
        var started = [PetrelBroker]()
        do {
            for i in nodes.indices {
                nodes[i].broker = try await Self.start(nodes[i], all: nodes)
                started.append(nodes[i].broker!)
            }
            try await replicateAndFailOver(&nodes, started: &started)
        } catch {
            // Stop every broker before the data goes (a running node must not lose its directory).
            for b in started { await b.shutdown() }
            for n in nodes { try? FileManager.default.removeItem(atPath: n.directory) }
            throw error
        }
        for b in started { await b.shutdown() }
        for n in nodes { try? FileManager.default.removeItem(atPath: n.directory) }
    }

    func replicateAndFailOver(_ nodes: inout [Node], started: inout [PetrelBroker]) async throws {

        // A controller is elected and all three brokers register.
        let m0 = try await Self.eventually(60, "three registered brokers and a controller") { () -> MetadataResponse? in
            let m = try await Self.metadata(nodes[0].port, topic: "none")
            return m.brokers.count == 3 && m.controllerId > 0 ? m : nil
        }
        #expect(Set(m0.brokers.map(\.nodeId)) == [1, 2, 3])

        // The cluster's own RPCs belong to the controller listener: a client listener neither
        // advertises nor serves them (a client cannot vote or register a broker).
        let client = try await RawKafkaConnection(port: nodes[0].port)
        guard case .apiVersions(let clientApis) = try await client.roundTrip(ApiVersionsRequest(), version: 3),
              case .vote(let vote) = try await client.roundTrip(
                RaftWire.voteRequest(.init(candidateEpoch: 99, candidateId: 2, lastOffsetEpoch: 99, lastOffset: 1000), clusterId: "x", voterId: 1),
                version: RaftWire.voteVersion)
        else { throw TestError("wrong response") }
        await client.close()
        #expect(!clientApis.apiKeys.contains { $0.apiKey == ApiKey.vote.rawValue || $0.apiKey == ApiKey.brokerRegistration.rawValue })
        #expect(clientApis.apiKeys.contains { $0.apiKey == ApiKey.describeQuorum.rawValue })
        #expect(vote.errorCode == KafkaErrorCode.unsupportedVersion.rawValue)
        let controller = try await RawKafkaConnection(port: nodes[0].controllerPort)
        guard case .apiVersions(let controllerApis) = try await controller.roundTrip(ApiVersionsRequest(), version: 3) else { throw TestError("wrong response") }
        await controller.close()
        #expect(controllerApis.apiKeys.contains { $0.apiKey == ApiKey.vote.rawValue })

        // CreateTopics sent to any node (forwarded to the controller when needed). Right after
        // an election the answer may be a retriable NOT_CONTROLLER: clients retry, so does this.
        let created = try await Self.eventually(20, "CreateTopics without a retriable error") { () -> CreateTopicsResponse? in
            let c = try await RawKafkaConnection(port: nodes[2].port)
            defer { Task { await c.close() } }
            guard case .createTopics(let created) = try await c.roundTrip(
                CreateTopicsRequest(topics: [.init(name: "replicated", numPartitions: 1, replicationFactor: 3)], timeoutMs: 5000), version: 7)
            else { throw TestError("wrong response") }
            return created.topics.first?.errorCode == KafkaErrorCode.notController.rawValue ? nil : created
        }
        #expect(created.topics.first?.errorCode == 0, "create: \(created.topics.first?.errorMessage ?? "")")
        guard case .createTopics(let tooBig) = try await RawKafkaConnection(port: nodes[0].port).roundTrip(
            CreateTopicsRequest(topics: [.init(name: "rf4", numPartitions: 1, replicationFactor: 4)], timeoutMs: 5000), version: 7)
        else { throw TestError("wrong response") }
        #expect(tooBig.topics.first?.errorCode == KafkaErrorCode.invalidReplicationFactor.rawValue)

        // Every node sees the topic, the same leader, and a full ISR.
        let leader = try await Self.eventually(20, "a leader with a full ISR on every node") { () -> Int32? in
            var leaders = Set<Int32>()
            for n in nodes {
                let m = try await Self.metadata(n.port, topic: "replicated")
                guard let p = m.topics.first?.partitions.first, p.errorCode == 0, p.isrNodes.count == 3 else { return nil }
                leaders.insert(p.leaderId)
            }
            return leaders.count == 1 ? leaders.first : nil
        }
        let leaderNode = nodes.first { $0.id == leader }!

        // acks=all is answered once the ISR has the batch; the data reaches every replica.
        var acked = [String]()
        for round in 0..<5 {
            let values = (0..<10).map { "r\(round)-\($0)" }
            let r = try await Self.produce(leaderNode.port, topic: "replicated", values: values)
            #expect(r.errorCode == 0, "produce: \(r.errorCode)")
            if r.errorCode == 0 { acked += values }
        }
        let (hw, read) = try await Self.fetchValues(leaderNode.port, topic: "replicated")
        #expect(hw == 50)
        #expect(read == acked)
        // A follower refuses consumers (NOT_LEADER_OR_FOLLOWER) but holds the data.
        let follower = nodes.first { $0.id != leader }!
        await #expect(throws: (any Error).self) { _ = try await Self.fetchValues(follower.port, topic: "replicated") }
        _ = try await Self.eventually(10, "followers to hold all 50 records") { () -> Bool? in
            for n in nodes where n.id != leader {
                guard let p = n.broker?.runtimeForTests.replicas.partition(TopicPartition(topic: "replicated", partition: 0)),
                      p.log.logEndOffset == 50 else { return nil }
            }
            return true
        }

        // The leader goes away: another ISR member leads, nothing acknowledged is lost, and
        // acks=all still works with two of three replicas (min.insync.replicas=2).
        await leaderNode.broker?.shutdown()
        let survivors = nodes.filter { $0.id != leader }
        let newLeader = try await Self.eventually(30, "a new leader") { () -> Int32? in
            let m = try await Self.metadata(survivors[0].port, topic: "replicated")
            guard let p = m.topics.first?.partitions.first, p.leaderId >= 0, p.leaderId != leader else { return nil }
            return p.leaderId
        }
        let newLeaderNode = nodes.first { $0.id == newLeader }!
        let after = try await Self.eventually(20, "acks=all on the new leader") { () -> ProduceResponse.PartitionProduceResponse? in
            let r = try await Self.produce(newLeaderNode.port, topic: "replicated", values: ["after-1", "after-2"])
            return r.errorCode == 0 ? r : nil
        }
        #expect(after.baseOffset == 50)
        let (_, readAfter) = try await Self.eventually(10, "the new leader's data") { () -> (Int64, [String])? in
            let r = try await Self.fetchValues(newLeaderNode.port, topic: "replicated")
            return r.values.count == 52 ? r : nil
        }
        #expect(Array(readAfter.prefix(50)) == acked)

        // The old leader returns (same data dir), catches up and rejoins the ISR.
        let index = nodes.firstIndex { $0.id == leader }!
        nodes[index].broker = try await Self.start(nodes[index], all: nodes)
        started.append(nodes[index].broker!)
        _ = try await Self.eventually(30, "the returning node back in the ISR") { () -> Bool? in
            let m = try await Self.metadata(newLeaderNode.port, topic: "replicated")
            return m.topics.first?.partitions.first?.isrNodes.count == 3 ? true : nil
        }
    }
}

extension PetrelBroker {
    var runtimeForTests: BrokerRuntime { runtimeAccess }
}

@Suite("Several client listeners")
struct ListenerTests {
    @Test("each client listener is served, and Metadata answers with the addresses of the listener the client used")
    func twoListeners() async throws {
        let b = try await TestBroker.start([
            "listeners": "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0",
            "advertised.listeners": "INTERNAL://petrel1.internal:0,EXTERNAL://127.0.0.1:0",
            "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
        ])
        defer { Task { await b.stop() } }
        let ports = b.broker.listenerPorts
        #expect(Set(ports.keys) == ["INTERNAL", "EXTERNAL"])
        for (name, port) in ports {
            let c = try await RawKafkaConnection(port: port)
            guard case .metadata(let m) = try await c.roundTrip(MetadataRequest(topics: []), version: 12) else {
                throw TestError("no metadata on \(name)")
            }
            await c.close()
            #expect(m.brokers.count == 1)
            #expect(m.brokers.first?.host == (name == "INTERNAL" ? "petrel1.internal" : "127.0.0.1"), "listener \(name)")
            #expect(m.brokers.first?.port == Int32(port), "listener \(name)")
        }
    }
}
