import KafkaProtocol
import NIOCore
import Testing
@testable import KafkaClient

@Suite struct BatchingTests {
    let tp = TopicPartition(topic: "t", partition: 0)
    let value = ByteBuffer(repeating: 1, count: 100)

    @Test func recordsShareABatchUntilBatchSize() throws {
        var acc = RecordAccumulator(batchSize: 1000, lingerMs: 5)
        var closed = 0
        for _ in 0..<20 {
            let outcome = try acc.append(tp, key: nil, value: value, headers: [], timestamp: 1, size: 121, now: 0)
            if case let .appended(_, _, _, c) = outcome, c { closed += 1 }
        }
        // ~110 bytes per record in a batch: 8 fit in 1000 bytes with the 61-byte header.
        #expect(closed >= 2)
        #expect(acc.readyCount == closed)
        #expect(acc.bufferedBytes == 20 * 121)
    }

    @Test func lingerClosesOpenBatches() throws {
        var acc = RecordAccumulator(batchSize: 1_000_000, lingerMs: 5)
        _ = try acc.append(tp, key: nil, value: value, headers: [], timestamp: 1, size: 121, now: 1_000)
        acc.closeExpired(now: 1_000 + 4_000_000)
        #expect(acc.readyCount == 0)
        #expect(acc.nextLingerDeadline() == 1_000 + 5_000_000)
        acc.closeExpired(now: 1_000 + 5_000_000)
        #expect(acc.readyCount == 1)
    }

    @Test func flushClosesAtOnce() throws {
        var acc = RecordAccumulator(batchSize: 1_000_000, lingerMs: 10_000)
        _ = try acc.append(tp, key: nil, value: value, headers: [], timestamp: 1, size: 121, now: 0)
        acc.flushing = 1
        acc.closeExpired(now: 1)
        #expect(acc.readyCount == 1)
    }

    @Test func idempotentDrainAssignsSequencesAndRetriesInOrder() throws {
        var acc = RecordAccumulator(batchSize: 300, lingerMs: 0, idempotent: true, maxInFlightPerPartition: 5)
        for _ in 0..<6 { _ = try acc.append(tp, key: nil, value: value, headers: [], timestamp: 1, size: 121, now: 0) }
        acc.closeExpired(now: 1)
        var sent: [ProducerBatch] = []
        while true {
            let d = try acc.drain(leaderOf: { _ in 1 }, nodeMayTake: { _ in true }, producerId: 7, producerEpoch: 0, maxBytesPerNode: 1 << 20)
            guard let batches = d[1] else { break }
            sent += batches
        }
        #expect(sent.count == 3)
        #expect(sent.map(\.baseSequence) == [0, 2, 4])
        #expect(sent.allSatisfy { $0.built?.producerId == 7 })
        // The first fails retriably, the others come back OUT_OF_ORDER: all requeued in order.
        acc.requeue(sent[2])
        acc.requeue(sent[0])
        acc.requeue(sent[1])
        #expect(acc.hasRetryPending(tp))
        // Retries go one at a time, lowest sequence first, and keep their sequence.
        let r1 = try acc.drain(leaderOf: { _ in 1 }, nodeMayTake: { _ in true }, producerId: 7, producerEpoch: 0, maxBytesPerNode: 1 << 20)
        #expect(r1[1]?.map(\.baseSequence) == [0])
        let blocked = try acc.drain(leaderOf: { _ in 1 }, nodeMayTake: { _ in true }, producerId: 7, producerEpoch: 0, maxBytesPerNode: 1 << 20)
        #expect(blocked.isEmpty)
        acc.finished(r1[1]![0])
        let r2 = try acc.drain(leaderOf: { _ in 1 }, nodeMayTake: { _ in true }, producerId: 7, producerEpoch: 0, maxBytesPerNode: 1 << 20)
        #expect(r2[1]?.map(\.baseSequence) == [2])
        #expect(r2[1]?[0].built?.baseSequence == 2)
    }

    @Test func unsentBatchesExpireAfterDeliveryTimeout() throws {
        var acc = RecordAccumulator(batchSize: 1000, lingerMs: 0)
        _ = try acc.append(tp, key: nil, value: value, headers: [], timestamp: 1, size: 121, now: 0)
        acc.closeExpired(now: 1)
        #expect(acc.expire(now: 1_000, deliveryNanos: 5_000).isEmpty)
        #expect(acc.expire(now: 10_000, deliveryNanos: 5_000).count == 1)
        #expect(acc.isEmpty)
        #expect(acc.bufferedBytes == 0)
    }

    @Test func noLeaderNoDrain() throws {
        var acc = RecordAccumulator(batchSize: 1000, lingerMs: 0)
        _ = try acc.append(tp, key: nil, value: value, headers: [], timestamp: 1, size: 121, now: 0)
        acc.closeExpired(now: 1)
        #expect(try acc.drain(leaderOf: { _ in nil }, nodeMayTake: { _ in true }, producerId: -1, producerEpoch: -1, maxBytesPerNode: 1 << 20).isEmpty)
        #expect(try acc.drain(leaderOf: { _ in 1 }, nodeMayTake: { _ in false }, producerId: -1, producerEpoch: -1, maxBytesPerNode: 1 << 20).isEmpty)
    }

    @Test func builtBatchDecodesBack() throws {
        var acc = RecordAccumulator(batchSize: 1 << 20, lingerMs: 0, compression: .gzip)
        for i in 0..<10 {
            _ = try acc.append(tp, key: ByteBuffer(string: "k\(i)"), value: ByteBuffer(string: "v\(i)"),
                               headers: [RecordHeader(key: "h", value: ByteBuffer(string: "x"))], timestamp: 1000 + Int64(i), size: 40, now: 0)
        }
        acc.closeExpired(now: 1)
        let batch = try #require(try acc.drain(leaderOf: { _ in 1 }, nodeMayTake: { _ in true }, producerId: -1, producerEpoch: -1, maxBytesPerNode: 1 << 20)[1]?.first?.built)
        try batch.validate()
        #expect(batch.compression == .gzip)
        let records = try batch.decodeRecords()
        #expect(records.map { String(buffer: $0.value!) } == (0..<10).map { "v\($0)" })
        #expect(records[3].headers.first?.key == "h")
    }
}

@Suite struct RetryRuleTests {
    @Test func retriableFollowsKafkasTable() {
        #expect(KafkaClientError.broker(.notLeaderOrFollower, nil).isRetriable)
        #expect(KafkaClientError.broker(.unknownTopicOrPartition, nil).isRetriable)
        #expect(KafkaClientError.broker(.notEnoughReplicas, nil).isRetriable)
        #expect(!KafkaClientError.broker(.topicAlreadyExists, nil).isRetriable)
        #expect(!KafkaClientError.broker(.messageTooLarge, nil).isRetriable)
        #expect(KafkaClientError.connectionClosed("x").isRetriable)
        #expect(KafkaClientError.requestTimedOut(api: "Produce", timeoutMs: 1).isRetriable)
        #expect(!KafkaClientError.protocolViolation("x").isRetriable)
    }

    @Test func metadataRefreshRules() {
        #expect(KafkaClientError.broker(.notLeaderOrFollower, nil).invalidatesMetadata)
        #expect(KafkaClientError.broker(.fencedLeaderEpoch, nil).invalidatesMetadata)
        #expect(!KafkaClientError.broker(.notEnoughReplicas, nil).invalidatesMetadata)
        #expect(!KafkaClientError.broker(.invalidConfig, nil).invalidatesMetadata)
        #expect(RetryPolicy.invalidatesCoordinator(.notCoordinator))
    }

    @Test func backoffIsExponentialAndCapped() {
        let p = RetryPolicy(backoffMs: 100, backoffMaxMs: 1000, retries: 3)
        #expect(p.backoff(attempt: 1, jitter: false) == .milliseconds(100))
        #expect(p.backoff(attempt: 2, jitter: false) == .milliseconds(200))
        #expect(p.backoff(attempt: 4, jitter: false) == .milliseconds(800))
        #expect(p.backoff(attempt: 10, jitter: false) == .milliseconds(1000))
        let j = p.backoff(attempt: 1)
        #expect(j >= .milliseconds(80) && j <= .milliseconds(120))
        #expect(p.shouldRetry(.broker(.notLeaderOrFollower, nil), attempt: 3))
        #expect(!p.shouldRetry(.broker(.notLeaderOrFollower, nil), attempt: 4))
        #expect(!p.shouldRetry(.broker(.invalidTopicException, nil), attempt: 1))
    }

    func hp(_ s: String) throws -> String {
        let (h, p) = try parseHostPort(s)
        return "\(h)|\(p)"
    }

    @Test func addressesParse() throws {
        #expect(try hp("127.0.0.1:9092") == "127.0.0.1|9092")
        #expect(try hp("PLAINTEXT://broker:19092") == "broker|19092")
        #expect(try hp("[::1]:9093") == "::1|9093")
        #expect(try hp("host") == "host|9092")
        #expect(throws: KafkaClientError.self) { try parseHostPort("host:99999") }
        #expect(throws: KafkaClientError.self) { try parseHostPort(":9092") }
    }
}
