import KafkaProtocol
import NIOCore
import NIOPosix
import Testing
@testable import KafkaClient

/// A fake one-partition broker with Kafka's idempotence rules (per producer id: a newer epoch
/// must start at sequence 0, the same epoch must continue at the next sequence, duplicates are
/// reported), and faults to inject: it can lose the producer's state or answer one batch with
/// OUT_OF_ORDER_SEQUENCE_NUMBER. It keeps the values it appended, in order.
final class IdempotenceBroker: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Fault: Sendable {
        case none
        /// Answers the n-th Produce (1-based) with OUT_OF_ORDER_SEQUENCE_NUMBER, appending nothing.
        case outOfOrderAt(Int)
        /// Forgets every producer after the n-th Produce (as after a truncation or expiry): the
        /// next batch of that producer gets UNKNOWN_PRODUCER_ID.
        case forgetAfter(Int)
    }

    struct Log: Sendable {
        var values: [String] = []
        /// (producerId, epoch) -> next expected sequence.
        var producers: [Int64: (epoch: Int16, next: Int32)] = [:]
        var produceRequests = 0
        /// InitProducerId requests: (producerId, epoch) asked with.
        var initRequests: [(Int64, Int16)] = []
        var answers: [Int16] = []
    }

    let fault: Fault
    let log: Locked<Log>
    let port: Int
    private var buffer = ByteBuffer()

    init(fault: Fault, log: Locked<Log>, port: Int) {
        self.fault = fault
        self.log = log
        self.port = port
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while var frame = try? KafkaFrames.readFrame(from: &buffer) {
            guard let request = try? KafkaFrames.decodeRequest(&frame) else {
                context.close(promise: nil)
                return
            }
            var out = context.channel.allocator.buffer(capacity: 256)
            let id = request.header.correlationId, v = request.apiVersion
            do {
                switch request.body {
                case .apiVersions:
                    var r = ApiVersionsResponse()
                    r.apiKeys = [ApiKey.apiVersions, .metadata, .produce, .initProducerId].map {
                        ApiVersionsResponse.ApiVersion(apiKey: $0.rawValue, minVersion: $0.validVersions.lowerBound, maxVersion: $0.validVersions.upperBound)
                    }
                    try KafkaFrames.encodeResponse(r, version: v, correlationId: id, into: &out)
                case .metadata:
                    var r = MetadataResponse()
                    r.brokers = [MetadataResponse.MetadataResponseBroker(nodeId: 1, host: "127.0.0.1", port: Int32(port), rack: nil)]
                    r.controllerId = 1
                    r.clusterId = "fake"
                    var p = MetadataResponse.MetadataResponsePartition()
                    p.partitionIndex = 0
                    p.leaderId = 1
                    p.leaderEpoch = 0
                    p.replicaNodes = [1]
                    p.isrNodes = [1]
                    var t = MetadataResponse.MetadataResponseTopic()
                    t.name = "t"
                    t.partitions = [p]
                    r.topics = [t]
                    try KafkaFrames.encodeResponse(r, version: v, correlationId: id, into: &out)
                case let .initProducerId(req):
                    var r = InitProducerIdResponse()
                    log.withLock { $0.initRequests.append((req.producerId, req.producerEpoch)) }
                    if req.producerId >= 0 {
                        r.producerId = req.producerId
                        r.producerEpoch = req.producerEpoch + 1
                    } else {
                        r.producerId = 1000
                        r.producerEpoch = 0
                    }
                    try KafkaFrames.encodeResponse(r, version: v, correlationId: id, into: &out)
                case let .produce(req):
                    var r = ProduceResponse()
                    for topic in req.topicData {
                        var tr = ProduceResponse.TopicProduceResponse()
                        tr.name = topic.name
                        for part in topic.partitionData {
                            var pr = ProduceResponse.PartitionProduceResponse()
                            pr.index = part.index
                            let (code, base) = append(part.records)
                            pr.errorCode = code
                            pr.baseOffset = base
                            log.withLock { $0.answers.append(code) }
                            tr.partitionResponses.append(pr)
                        }
                        r.responses.append(tr)
                    }
                    try KafkaFrames.encodeResponse(r, version: v, correlationId: id, into: &out)
                default:
                    context.close(promise: nil)
                    return
                }
            } catch {
                context.close(promise: nil)
                return
            }
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
    }

    /// Kafka's checks for one batch; returns (error code, base offset).
    private func append(_ records: ByteBuffer?) -> (Int16, Int64) {
        guard let records, let batch = try? RecordBatch(records), (try? batch.validate()) != nil,
              let decoded = try? batch.decodeRecords() else {
            return (KafkaErrorCode.corruptMessage.rawValue, -1)
        }
        return log.withLock { log -> (Int16, Int64) in
            log.produceRequests += 1
            let n = log.produceRequests
            defer { if case let .forgetAfter(k) = fault, n == k { log.producers.removeAll() } }
            if case let .outOfOrderAt(k) = fault, n == k { return (KafkaErrorCode.outOfOrderSequenceNumber.rawValue, -1) }
            let pid = batch.producerId, epoch = batch.producerEpoch, seq = batch.baseSequence
            if let state = log.producers[pid] {
                if epoch < state.epoch { return (KafkaErrorCode.invalidProducerEpoch.rawValue, -1) }
                if epoch > state.epoch {
                    guard seq == 0 else { return (KafkaErrorCode.outOfOrderSequenceNumber.rawValue, -1) }
                } else if seq < state.next {
                    return (KafkaErrorCode.duplicateSequenceNumber.rawValue, -1)
                } else if seq != state.next {
                    return (KafkaErrorCode.outOfOrderSequenceNumber.rawValue, -1)
                }
            } else if seq != 0 {
                // Kafka: a producer the partition does not know, not at sequence 0.
                return (KafkaErrorCode.unknownProducerId.rawValue, -1)
            }
            log.producers[pid] = (epoch, seq + batch.recordCount)
            let base = Int64(log.values.count)
            log.values += decoded.map { String(buffer: $0.value!) }
            return (0, base)
        }
    }

    static func start(fault: Fault) async throws -> (Channel, Locked<Log>) {
        let log = Locked(Log())
        let port = Locked(0)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        IdempotenceBroker(fault: fault, log: log, port: port.withLock { $0 }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port.withLock { $0 = server.localAddress!.port! }
        return (server, log)
    }
}

@Suite struct EpochBumpTests {
    func run(_ fault: IdempotenceBroker.Fault, records: Int, sequential: Bool) async throws -> (IdempotenceBroker.Log, Int, [String]) {
        let (server, log) = try await IdempotenceBroker.start(fault: fault)
        defer { server.close(promise: nil) }
        var config = ClientConfiguration(bootstrapServers: ["127.0.0.1:\(server.localAddress!.port!)"])
        config.retryBackoffMs = 5
        config.retryBackoffMaxMs = 20
        let client = KafkaClient(config)
        var pc = ProducerConfiguration()
        pc.acks = .all
        pc.enableIdempotence = true
        pc.lingerMs = sequential ? 0 : 1
        pc.batchSize = 200  // a few records per batch: several batches in flight
        pc.deliveryTimeoutMs = 10_000
        let producer = try KafkaProducer(client: client, configuration: pc)
        let values = (0..<records).map { "v\($0)" }
        if sequential {
            for v in values { try await producer.send(ProducerRecord(topic: "t", partition: 0, key: nil, value: v)) }
        } else {
            for v in values { try await producer.produce(ProducerRecord(topic: "t", partition: 0, key: nil, value: v)) }
            try await producer.flush()
        }
        let bumps = producer.epochBumpCount
        await producer.close()
        await client.shutdown()
        return (log.withLock { $0 }, bumps, values)
    }

    @Test func noFaultNoBump() async throws {
        let (log, bumps, values) = try await run(.none, records: 50, sequential: false)
        #expect(log.values == values)
        #expect(bumps == 0)
        #expect(log.initRequests.count == 1)
    }

    @Test func outOfOrderSequenceBumpsTheEpochAndResends() async throws {
        // The 1st batch gets OUT_OF_ORDER_SEQUENCE_NUMBER with no earlier batch being retried:
        // without a bump the producer would fail it (and the partition) for good.
        let (log, bumps, values) = try await run(.outOfOrderAt(1), records: 5, sequential: true)
        #expect(log.values == values)
        #expect(bumps == 1)
        #expect(log.initRequests.count == 2)
        #expect(log.initRequests.last.map { [$0.0, Int64($0.1)] } == [1000, 0])  // current id and epoch (v3+)
        #expect(log.producers[1000]?.epoch == 1)
    }

    @Test func unknownProducerIdBumpsTheEpochAndResends() async throws {
        // The broker forgets the producer after the 2nd batch; the 3rd (sequence 2) gets
        // UNKNOWN_PRODUCER_ID, the epoch is bumped and it goes again at sequence 0.
        let (log, bumps, values) = try await run(.forgetAfter(2), records: 6, sequential: true)
        #expect(log.values == values)
        #expect(bumps == 1)
        #expect(log.answers.contains(KafkaErrorCode.unknownProducerId.rawValue))
        #expect(log.producers[1000].map { [Int64($0.epoch), Int64($0.next)] } == [1, 4])
    }

    @Test func bumpWithSeveralBatchesInFlightKeepsOrderWithoutDuplicates() async throws {
        let (log, bumps, values) = try await run(.outOfOrderAt(3), records: 400, sequential: false)
        #expect(log.values == values)
        #expect(bumps == 1)
    }
}
