@testable import Broker
import KafkaProtocol
import LogStorage
import NIOCore
import Testing

@Suite("Broker request path", .serialized)
struct BrokerServerTests {
    @Test("ApiVersions lists the served APIs; an unknown version gets the v0 fallback answer")
    func apiVersions() async throws {
        let b = try await TestBroker.start()
        let c = try await RawKafkaConnection(port: b.broker.kafkaPort)
        guard case .apiVersions(let r) = try await c.roundTrip(ApiVersionsRequest(clientSoftwareName: "t", clientSoftwareVersion: "1"), version: 3) else {
            Issue.record("wrong response"); return
        }
        #expect(r.errorCode == 0)
        #expect(r.apiKeys.contains { $0.apiKey == ApiKey.produce.rawValue && $0.maxVersion >= 9 })
        #expect(r.apiKeys.contains { $0.apiKey == ApiKey.fetch.rawValue })
        // ApiVersions v99: header v2 but the broker cannot parse the body; it answers in v0.
        var frame = ByteBuffer()
        frame.writeInteger(Int32(0))
        frame.writeInteger(ApiKey.apiVersions.rawValue)
        frame.writeInteger(Int16(99))
        frame.writeInteger(Int32(42))
        frame.writeInteger(Int16(-1))
        frame.writeInteger(UInt8(0))
        frame.setInteger(Int32(frame.readableBytes - 4), at: 0)
        try await c.sendRaw(frame)
        var response = try #require(try await c.nextFrame())
        let (header, body) = try KafkaFrames.decodeResponse(&response, apiKey: .apiVersions, version: 0)
        #expect(header.correlationId == 42)
        guard case .apiVersions(let fallback) = body else { Issue.record("wrong body"); return }
        #expect(fallback.errorCode == KafkaErrorCode.unsupportedVersion.rawValue)
        #expect(!fallback.apiKeys.isEmpty)
        await c.close()
        await b.stop()
    }

    @Test("an API the broker does not serve is answered with UNSUPPORTED_VERSION, not a dropped connection")
    func unsupportedApi() async throws {
        let b = try await TestBroker.start()
        let c = try await RawKafkaConnection(port: b.broker.kafkaPort)
        let response = try await c.roundTrip(SaslHandshakeRequest(mechanism: "PLAIN"), version: 1)
        guard case .saslHandshake(let r) = response else { Issue.record("wrong response"); return }
        #expect(r.errorCode == KafkaErrorCode.unsupportedVersion.rawValue)
        #expect(c.isActive)
        await c.close()
        await b.stop()
    }

    @Test("an oversized frame closes only that connection; others keep being served")
    func oversizedFrame() async throws {
        let b = try await TestBroker.start(["socket.request.max.bytes": "1024"])
        let good = try await RawKafkaConnection(port: b.broker.kafkaPort)
        let bad = try await RawKafkaConnection(port: b.broker.kafkaPort)
        var frame = ByteBuffer()
        frame.writeInteger(Int32(10_000_000))
        frame.writeRepeatingByte(0, count: 64)
        try await bad.sendRaw(frame)
        #expect(try await bad.nextFrame() == nil)
        guard case .metadata(let m) = try await good.roundTrip(MetadataRequest(topics: nil), version: 12) else {
            Issue.record("wrong response"); return
        }
        #expect(m.brokers.count == 1)
        await good.close()
        await b.stop()
    }

    @Test("garbage instead of a request closes the connection; the broker keeps serving")
    func malformedFrames() async throws {
        let b = try await TestBroker.start()
        var random = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let c = try await RawKafkaConnection(port: b.broker.kafkaPort)
            var frame = ByteBuffer()
            let body = (0..<40).map { _ in UInt8.random(in: 0...255, using: &random) }
            frame.writeInteger(Int32(body.count))
            frame.writeInteger(Int16(0))  // Produce
            frame.writeInteger(Int16(9))
            frame.writeBytes(body.dropFirst(4))
            try await c.sendRaw(frame)
            _ = try? await c.nextFrame(timeout: .seconds(5))
            await c.close()
        }
        let c = try await RawKafkaConnection(port: b.broker.kafkaPort)
        guard case .apiVersions(let r) = try await c.roundTrip(ApiVersionsRequest(), version: 0) else {
            Issue.record("wrong response"); return
        }
        #expect(r.errorCode == 0)
        await c.close()
        await b.stop()
    }

    @Test("produce and fetch round trip; bad CRC and unknown topics get Kafka's error codes")
    func produceFetch() async throws {
        let b = try await TestBroker.start(["auto.create.topics.enable": "false"])
        let c = try await RawKafkaConnection(port: b.broker.kafkaPort)
        guard case .createTopics(let created) = try await c.roundTrip(
            CreateTopicsRequest(topics: [.init(name: "t", numPartitions: 2, replicationFactor: 1)], timeoutMs: 1000), version: 7)
        else { Issue.record("wrong response"); return }
        #expect(created.topics.first?.errorCode == 0)
        #expect(created.topics.first?.numPartitions == 2)
        guard case .createTopics(let huge) = try await c.roundTrip(
            CreateTopicsRequest(topics: [.init(name: "huge", numPartitions: Int32.max, replicationFactor: 1),
                                         .init(name: "bad/name", numPartitions: 1, replicationFactor: 1),
                                         .init(name: "t", numPartitions: 1, replicationFactor: 1),
                                         .init(name: "rf", numPartitions: 1, replicationFactor: 3)], timeoutMs: 1000), version: 7)
        else { Issue.record("wrong response"); return }
        #expect(huge.topics.map(\.errorCode) == [KafkaErrorCode.invalidPartitions, .invalidTopicException, .topicAlreadyExists, .invalidReplicationFactor].map(\.rawValue))

        var builder = RecordBatchBuilder()
        for i in 0..<5 {
            var v = ByteBuffer()
            v.writeString("value-\(i)")
            try builder.append(key: nil, value: v, timestamp: 1_700_000_000_000 + Int64(i))
        }
        let batch = try builder.build().buffer
        func produce(_ topic: String, _ records: ByteBuffer) async throws -> ProduceResponse.PartitionProduceResponse? {
            let request = ProduceRequest(acks: -1, timeoutMs: 1000, topicData: [.init(name: topic, partitionData: [.init(index: 0, records: records)])])
            guard case .produce(let r) = try await c.roundTrip(request, version: 9) else { return nil }
            return r.responses.first?.partitionResponses.first
        }
        #expect(try await produce("t", batch)?.baseOffset == 0)
        #expect(try await produce("t", batch)?.baseOffset == 5)
        var corrupt = batch
        corrupt.setInteger(UInt8(0xFF), at: corrupt.writerIndex - 1)
        #expect(try await produce("t", corrupt)?.errorCode == KafkaErrorCode.corruptMessage.rawValue)
        #expect(try await produce("missing", batch)?.errorCode == KafkaErrorCode.unknownTopicOrPartition.rawValue)
        var future = RecordBatchBuilder()
        try future.append(key: nil, value: ByteBuffer(string: "from the future"), timestamp: LogClock.nowMillis() + 2 * 3_600_000)
        #expect(try await produce("t", try future.build().buffer)?.errorCode == KafkaErrorCode.invalidTimestamp.rawValue)
        // Produce v2 would carry a legacy message set: refused by version, with a response.
        guard case .produce(let old) = try await c.roundTrip(
            ProduceRequest(acks: 1, timeoutMs: 1000, topicData: [.init(name: "t", partitionData: [.init(index: 0, records: batch)])]), version: 2)
        else { Issue.record("wrong response"); return }
        #expect(old.responses.isEmpty)
        #expect(c.isActive)

        let fetch = FetchRequest(replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20,
                                 topics: [.init(topic: "t", partitions: [.init(partition: 0, fetchOffset: 3, partitionMaxBytes: 1 << 20)])])
        guard case .fetch(let f) = try await c.roundTrip(fetch, version: 11) else { Issue.record("wrong response"); return }
        let p = try #require(f.responses.first?.partitions.first)
        #expect(p.errorCode == 0)
        #expect(p.highWatermark == 10)
        var offsets = [Int64]()
        var batches = RecordBatchIterator(p.records ?? ByteBuffer())
        while let batch = try batches.next() {
            var records = try batch.records()
            while let r = try records.next() { offsets.append(r.offset) }
        }
        #expect(offsets.first == 0 || offsets.first == 5)  // whole batches: the one holding offset 3
        #expect(offsets.contains(3) && offsets.last == 9)
        let metricsText = String(decoding: b.broker.metrics.render(), as: UTF8.self)
        #expect(metricsText.contains("petrel_topic_records_out_total{topic=\"t\"} \(offsets.count)"), "records out counted from batch headers")

        let outOfRange = FetchRequest(replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20,
                                      topics: [.init(topic: "t", partitions: [.init(partition: 0, fetchOffset: 99, partitionMaxBytes: 1 << 20)])])
        guard case .fetch(let o) = try await c.roundTrip(outOfRange, version: 11) else { Issue.record("wrong response"); return }
        #expect(o.responses.first?.partitions.first?.errorCode == KafkaErrorCode.offsetOutOfRange.rawValue)
        await c.close()
        await b.stop()
    }

    @Test("a long-poll fetch waits for data and is answered when it arrives")
    func longPoll() async throws {
        let b = try await TestBroker.start()
        let consumer = try await RawKafkaConnection(port: b.broker.kafkaPort)
        let producer = try await RawKafkaConnection(port: b.broker.kafkaPort)
        _ = try await producer.roundTrip(CreateTopicsRequest(topics: [.init(name: "lp", numPartitions: 1, replicationFactor: 1)], timeoutMs: 1000), version: 7)
        let fetch = FetchRequest(replicaId: -1, maxWaitMs: 5000, minBytes: 1, maxBytes: 1 << 20,
                                 topics: [.init(topic: "lp", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])])
        _ = try await consumer.send(fetch, version: 11)
        try await Task.sleep(for: .milliseconds(200))
        var builder = RecordBatchBuilder()
        try builder.append(key: nil, value: ByteBuffer(string: "wake"), timestamp: 1)
        let started = ContinuousClock.now
        _ = try await producer.roundTrip(
            ProduceRequest(acks: 1, timeoutMs: 1000, topicData: [.init(name: "lp", partitionData: [.init(index: 0, records: try builder.build().buffer)])]), version: 9)
        var frame = try #require(try await consumer.nextFrame())
        #expect(ContinuousClock.now - started < .seconds(4), "answered on the append, not at the deadline")
        guard case .fetch(let f) = try KafkaFrames.decodeResponse(&frame, apiKey: .fetch, version: 11).body else { Issue.record("wrong"); return }
        #expect((f.responses.first?.partitions.first?.records?.readableBytes ?? 0) > 0)
        await consumer.close()
        await producer.close()
        await b.stop()
    }

    @Test("a client that never reads its responses does not hold up other clients")
    func stalledReader() async throws {
        let b = try await TestBroker.start()
        let c = try await RawKafkaConnection(port: b.broker.kafkaPort)
        _ = try await c.roundTrip(CreateTopicsRequest(topics: [.init(name: "big", numPartitions: 1, replicationFactor: 1)], timeoutMs: 1000), version: 7)
        var builder = RecordBatchBuilder()
        let value = ByteBuffer(repeating: 0x61, count: 1000)
        for i in 0..<900 { try builder.append(key: nil, value: value, timestamp: LogClock.nowMillis() + Int64(i % 2)) }
        _ = try await c.roundTrip(ProduceRequest(acks: 1, timeoutMs: 1000, topicData: [.init(name: "big", partitionData: [.init(index: 0, records: try builder.build().buffer)])]), version: 9)
        let stalled = try await RawKafkaConnection(port: b.broker.kafkaPort, autoRead: false)
        let fetch = FetchRequest(replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20,
                                 topics: [.init(topic: "big", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])])
        for _ in 0..<200 { _ = try await stalled.send(fetch, version: 11) }
        try await Task.sleep(for: .seconds(1))
        // Responses pile up only until the socket and the write buffer are full; then the broker
        // stops processing that client's requests (each answer is ~900 KB).
        let text = String(decoding: b.broker.metrics.render(), as: UTF8.self)
        let fetches = text.split(separator: "\n").first { $0.hasPrefix("petrel_requests_total{api=\"Fetch\"}") }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? -1
        #expect(fetches >= 1 && fetches < 50, "fetches processed for a client that reads nothing: \(fetches)")
        let started = ContinuousClock.now
        for _ in 0..<20 {
            guard case .apiVersions(let r) = try await c.roundTrip(ApiVersionsRequest(), version: 2) else { Issue.record("wrong"); return }
            #expect(r.errorCode == 0)
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        await stalled.close()
        await c.close()
        await b.stop()
    }

    @Test("a thousand idle connections do not stop the broker from serving")
    func idleConnections() async throws {
        let b = try await TestBroker.start()
        var idle = [RawKafkaConnection]()
        for _ in 0..<1000 { idle.append(try await RawKafkaConnection(port: b.broker.kafkaPort)) }
        let c = try await RawKafkaConnection(port: b.broker.kafkaPort)
        guard case .apiVersions(let r) = try await c.roundTrip(ApiVersionsRequest(), version: 2) else { Issue.record("wrong"); return }
        #expect(r.errorCode == 0)
        for i in idle { await i.close() }
        await c.close()
        await b.stop()
    }

    @Test("topics survive a restart with their ids, and the log keeps its records")
    func restart() async throws {
        let first = try await TestBroker.start()
        let c = try await RawKafkaConnection(port: first.broker.kafkaPort)
        guard case .createTopics(let created) = try await c.roundTrip(
            CreateTopicsRequest(topics: [.init(name: "keep", numPartitions: 3, replicationFactor: 1)], timeoutMs: 1000), version: 7)
        else { Issue.record("wrong"); return }
        let id = try #require(created.topics.first?.topicId)
        await c.close()
        await first.broker.shutdown()
        let config = try BrokerConfig(["log.dirs": first.directory, "listeners": "PLAINTEXT://127.0.0.1:0", "petrel.metrics.listener": ""])
        let second = try await PetrelBroker.start(config: config, logger: .init(label: "test"))
        let d = try await RawKafkaConnection(port: second.kafkaPort)
        guard case .metadata(let m) = try await d.roundTrip(MetadataRequest(topics: nil), version: 12) else { Issue.record("wrong"); return }
        let topic = try #require(m.topics.first { $0.name == "keep" })
        #expect(topic.topicId == id)
        #expect(topic.partitions.count == 3)
        await d.close()
        await TestBroker(broker: second, directory: first.directory).stop()
    }
}
