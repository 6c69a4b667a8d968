import KafkaProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A Kafka producer: per-partition batching (`linger.ms`, `batch.size`), `buffer.memory`
/// back-pressure, gzip, acks 0/1/all, idempotence (producer id + sequence numbers, ordered
/// retries), the murmur2 partitioner.
///
/// `send` awaits the acknowledgement; `produce` only waits while `buffer.memory` is full, and its
/// failures surface from the next `flush()`. Records are encoded into their batch's buffer when
/// sent to the producer (``ProducerBatchWriter``: raw-pointer varints, the CRC once per batch);
/// nothing per record is allocated beyond that (and a continuation for `send`). A record for the
/// partition of the previous one goes straight to its open batch (one lock, no lookup), and
/// batches go to the socket without being copied into the request (``ProduceFrame``).
///
/// Idempotence follows KIP-360: when a partition's sequence numbers fall out of step with the
/// broker's (OUT_OF_ORDER_SEQUENCE_NUMBER with no earlier batch being retried,
/// UNKNOWN_PRODUCER_ID, or a sent batch failing for good), sending pauses until nothing is in
/// flight, InitProducerId with the current id and epoch (v3+) bumps the epoch, every partition's
/// sequence starts again at 0 and the batches waiting for a retry are renumbered, in order.
public final class KafkaProducer: Sendable {
    public let configuration: ProducerConfiguration
    let client: KafkaClient
    let logger: Logger
    private let state: Locked<State>
    private let ownsClient: Bool
    /// Keyless records without a partition go to the topic's sticky partition (the default partitioner).
    private let stickyKeyless: Bool

    struct State {
        var accumulator: RecordAccumulator
        /// Partition counts per topic (from metadata).
        var partitionCounts: [String: Int] = [:]
        var leaders: [TopicPartition: Int32] = [:]
        /// Keyless records' sticky partition per topic.
        var sticky: [String: Int32] = [:]
        var inFlightPerNode: [Int32: Int] = [:]
        /// Produce requests are written to a node in the order they were drained (their
        /// sequence numbers were assigned in that order): the ticket of the next one drained,
        /// and of the next one allowed to write.
        var nextTicket: [Int32: UInt64] = [:]
        var writeTurn: [Int32: UInt64] = [:]
        var senderWaiter: CheckedContinuation<Void, Never>?
        var wakeupPending = false
        var memoryWaiters: [CheckedContinuation<Void, Never>] = []
        var flushWaiters: [CheckedContinuation<Void, Never>] = []
        var firstError: KafkaClientError?
        var producerId: Int64 = -1
        var producerEpoch: Int16 = -1
        var closed = false
        var senderStarted = false
        var metadataStale = false
        var timerArmedUntil: UInt64 = .max
        /// `accumulator.lastBatch` was chosen by the sticky partitioner for a keyless record (so
        /// the next keyless record of the topic may go straight to it).
        var lastBatchSticky = false
        /// KIP-360: a partition's sequence numbers are out of step with the broker's (a sequenced
        /// batch failed for good, OUT_OF_ORDER_SEQUENCE_NUMBER without an earlier retry,
        /// UNKNOWN_PRODUCER_ID). Nothing more is sent until the in-flight requests are done and
        /// the epoch is bumped.
        var epochBumpNeeded = false
        var bumpingEpoch = false
        /// Epoch bumps so far (tests, logs).
        var epochBumps = 0
    }

    /// A producer on an existing client (shared connections and metadata).
    public convenience init(client: KafkaClient, configuration: ProducerConfiguration = ProducerConfiguration(), logger: Logger? = nil) throws(KafkaClientError) {
        try self.init(client: client, configuration: configuration, logger: logger, ownsClient: false)
    }

    init(client: KafkaClient, configuration: ProducerConfiguration, logger: Logger?, ownsClient: Bool) throws(KafkaClientError) {
        let config = try configuration.validated()
        self.configuration = config
        self.client = client
        self.logger = logger ?? client.logger
        self.ownsClient = ownsClient
        if case .murmur2Random = config.partitioner { stickyKeyless = true } else { stickyKeyless = false }
        self.state = Locked(State(accumulator: RecordAccumulator(
            batchSize: config.batchSize, lingerMs: config.lingerMs, compression: config.compression,
            compressionLevel: config.compressionLevel, idempotent: config.enableIdempotence,
            maxInFlightPerPartition: config.maxInFlightRequestsPerConnection)))
    }

    /// A producer with its own client.
    public convenience init(bootstrapServers: [String], configuration: ProducerConfiguration = ProducerConfiguration()) throws(KafkaClientError) {
        try self.init(client: KafkaClient(bootstrapServers: bootstrapServers), configuration: configuration, logger: nil, ownsClient: true)
    }

    // MARK: - Sending

    /// Sends a record and waits for its acknowledgement.
    @discardableResult
    nonisolated(nonsending) public func send(_ record: ProducerRecord) async throws(KafkaClientError) -> RecordMetadata {
        // Fast path (metadata known, memory available): appended with its continuation under one lock.
        let now = record.timestamp ?? currentTimeMillis()
        do {
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RecordMetadata, any Error>) in
                do {
                    if try self.appendIfReady(record, timestamp: now, attach: { index, batch in batch.waiters.append((index, continuation)) }) {
                        return
                    }
                    continuation.resume(throwing: NotReady())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        } catch is NotReady {
            // The slow path below.
        } catch {
            throw KafkaClientError.wrap(error)
        }
        let (tp, timestamp) = try await prepare(record)
        do {
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RecordMetadata, any Error>) in
                do {
                    try self.append(record, to: tp, timestamp: timestamp, waiter: continuation)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        } catch {
            throw KafkaClientError.wrap(error)
        }
    }

    /// Sends a record without waiting for the acknowledgement (fire-and-forget). Suspends only
    /// while `buffer.memory` is full. A failure is reported by the next ``flush()``.
    /// Runs on the caller's executor (`nonisolated(nonsending)`): the fast path does not hop.
    /// Inlinable, so the caller's loop does not allocate an async frame per record.
    @inlinable
    nonisolated(nonsending) public func produce(_ record: ProducerRecord) async throws(KafkaClientError) {
        // Fast path: metadata known and memory available: one lock, no suspension.
        if try appendIfReady(record) { return }
        try await produceSlowly(record)
    }

    /// `produce`'s fast path: appends if no metadata lookup or memory wait is needed.
    @usableFromInline
    func appendIfReady(_ record: ProducerRecord) throws(KafkaClientError) -> Bool {
        try appendIfReady(record, timestamp: record.timestamp ?? currentTimeMillis(), attach: { _, _ in })
    }

    /// `produce`'s slow path: waits for metadata or memory.
    @usableFromInline
    nonisolated(nonsending) func produceSlowly(_ record: ProducerRecord) async throws(KafkaClientError) {
        let (tp, ts) = try await prepare(record)
        try append(record, to: tp, timestamp: ts, waiter: nil)
    }

    /// Appends a record when no metadata lookup or memory wait is needed.
    /// `attach` runs under the lock with the record's index and batch (`send` hangs its
    /// continuation there); inlined, so `produce` pays nothing for it.
    @inline(__always)
    private func appendIfReady(
        _ record: ProducerRecord, timestamp: Int64, attach: (Int32, ProducerBatch) -> Void
    ) throws(KafkaClientError) -> Bool {
        let size = record.estimatedSize
        var wake = false
        var armTimer = false
        let done = try state.withLock { s throws(KafkaClientError) -> Bool in
            guard !s.closed, s.senderStarted, s.accumulator.bufferedBytes + size <= configuration.bufferMemory,
                  size <= configuration.maxRequestSize else { return false }
            // Fastest: the same partition as the previous record, its batch still open and with
            // room: no partitioner, no dictionary lookup, no clock.
            if let last = s.accumulator.lastBatch, last.topicPartition.topic == record.topic {
                let same = if let p = record.partition { p == last.topicPartition.partition } else { s.lastBatchSticky && record.key == nil }
                if same, let (index, closed) = try s.accumulator.appendToLast(
                    last, key: record.key, value: record.value, headers: record.headers, timestamp: timestamp, size: size) {
                    attach(index, last)
                    if closed {
                        wake = true
                        if record.partition == nil { s.sticky[record.topic] = nil }
                    }
                    return true
                }
            }
            guard let count = s.partitionCounts[record.topic] else { return false }
            let now = monotonicNanos()
            let partition: Int32
            if let p = record.partition {
                guard p >= 0 && Int(p) < count else { return false }
                partition = p
            } else {
                partition = choosePartition(record, count: count, state: &s)
            }
            let tp = TopicPartition(topic: record.topic, partition: partition)
            let outcome = try s.accumulator.append(
                tp, key: record.key, value: record.value, headers: record.headers, timestamp: timestamp, size: size, now: now)
            s.lastBatchSticky = record.partition == nil && record.key == nil && stickyKeyless
            let (index, batch, newBatch, closedBatch) = outcome.parts
            attach(index, batch)
            if closedBatch {
                wake = true
                if record.key == nil && record.partition == nil { s.sticky[tp.topic] = nil }
            }
            if newBatch && now + s.accumulator.lingerNanos < s.timerArmedUntil {
                s.timerArmedUntil = now + s.accumulator.lingerNanos
                armTimer = true
            }
            return true
        }
        if armTimer { armLingerTimer(nanos: UInt64(configuration.lingerMs) * 1_000_000) }
        if wake { wakeSender() }
        return done
    }

    /// Sends everything buffered and waits until all of it is acknowledged or failed. Throws the
    /// first fire-and-forget failure since the last flush.
    public func flush() async throws(KafkaClientError) {
        let empty = state.withLock { s -> Bool in
            if s.accumulator.isEmpty { return true }
            s.accumulator.flushing += 1
            return false
        }
        if !empty {
            wakeSender()
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let done = state.withLock { s -> Bool in
                    if s.accumulator.isEmpty { return true }
                    s.flushWaiters.append(c)
                    return false
                }
                if done { c.resume() }
            }
            state.withLock { $0.accumulator.flushing -= 1 }
        }
        let error = state.withLock { s -> KafkaClientError? in
            defer { s.firstError = nil }
            return s.firstError
        }
        if let error { throw error }
    }

    /// Flushes, then stops the producer. Later sends throw ``KafkaClientError/closed``.
    public func close() async {
        try? await flush()
        state.withLock { $0.closed = true }
        wakeSender()
        if ownsClient { await client.shutdown() }
    }

    /// Picks the partition (waiting for metadata if needed) and applies back-pressure.
    nonisolated(nonsending) private func prepare(_ record: ProducerRecord) async throws(KafkaClientError) -> (TopicPartition, Int64) {
        let timestamp = record.timestamp ?? currentTimeMillis()
        let size = record.estimatedSize
        if size > configuration.maxRequestSize || size > configuration.bufferMemory {
            throw .recordTooLarge(size)
        }
        var attempts = 0
        while true {
            enum Step { case ready(TopicPartition), badPartition(TopicPartition), needMetadata, full, closed }
            let step: Step = state.withLock { s in
                if s.closed { return .closed }
                guard let count = s.partitionCounts[record.topic] else { return .needMetadata }
                if s.accumulator.bufferedBytes + size > configuration.bufferMemory && !s.accumulator.isEmpty { return .full }
                if let p = record.partition {
                    guard p >= 0 && Int(p) < count else { return .badPartition(TopicPartition(topic: record.topic, partition: p)) }
                    return .ready(TopicPartition(topic: record.topic, partition: p))
                }
                return .ready(TopicPartition(topic: record.topic, partition: choosePartition(record, count: count, state: &s)))
            }
            switch step {
            case .closed:
                throw .closed
            case let .badPartition(tp):
                throw .unknownPartition(tp)
            case let .ready(tp):
                return (tp, timestamp)
            case .needMetadata:
                attempts += 1
                try await loadTopic(record.topic, attempt: attempts)
            case .full:
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let stillFull = state.withLock { s -> Bool in
                        if s.accumulator.bufferedBytes + size > configuration.bufferMemory && !s.accumulator.isEmpty {
                            s.memoryWaiters.append(c)
                            return true
                        }
                        return false
                    }
                    if !stillFull { c.resume() }
                }
            }
        }
    }

    private func choosePartition(_ record: ProducerRecord, count: Int, state s: inout State) -> Int32 {
        switch configuration.partitioner {
        case let .custom(f):
            return f(record.key, count)
        case .murmur2Random:
            if let key = record.key {
                return Murmur2.partition(forKey: key, partitionCount: count)
            }
            if let p = s.sticky[record.topic], Int(p) < count { return p }
            let p = Int32.random(in: 0..<Int32(count))
            s.sticky[record.topic] = p
            return p
        }
    }

    private func loadTopic(_ topic: String, attempt: Int) async throws(KafkaClientError) {
        let metadata: ClusterMetadata
        do {
            metadata = try await client.core.refreshMetadata(topics: [topic], allowAutoCreate: true)
        } catch {
            if attempt > 20 || !error.isRetriable { throw error }
            try? await Task.sleep(for: client.configuration.retryPolicy.backoff(attempt: attempt))
            return
        }
        guard let count = metadata.partitionCount(topic) else {
            if attempt > 20 { throw .unknownTopic(topic) }
            // Auto-created topics may take a moment to get leaders.
            try? await Task.sleep(for: client.configuration.retryPolicy.backoff(attempt: attempt))
            return
        }
        updateMetadata(metadata)
        state.withLock { $0.partitionCounts[topic] = count }
    }

    private func updateMetadata(_ metadata: ClusterMetadata) {
        state.withLock { s in
            for (name, topic) in metadata.topics where s.partitionCounts[name] != nil || !topic.partitions.isEmpty {
                s.partitionCounts[name] = topic.partitions.count
                for p in topic.partitions {
                    s.leaders[TopicPartition(topic: name, partition: p.partition)] = p.leader >= 0 ? p.leader : nil
                }
            }
            s.metadataStale = false
        }
    }

    private func append(_ record: ProducerRecord, to tp: TopicPartition, timestamp: Int64, waiter: CheckedContinuation<RecordMetadata, any Error>?) throws(KafkaClientError) {
        let now = monotonicNanos()
        var wake = false
        var armTimer = false
        var startSender = false
        try state.withLock { s throws(KafkaClientError) in
            if s.closed { throw KafkaClientError.closed }
            let outcome = try s.accumulator.append(
                tp, key: record.key, value: record.value, headers: record.headers, timestamp: timestamp,
                size: record.estimatedSize, now: now)
            s.lastBatchSticky = record.partition == nil && record.key == nil && stickyKeyless && s.sticky[tp.topic] == tp.partition
            let (index, batch, newBatch, closedBatch) = outcome.parts
            if let waiter { batch.waiters.append((index, waiter)) }
            if closedBatch {
                wake = true
                if record.key == nil && record.partition == nil { s.sticky[tp.topic] = nil }
            }
            if newBatch && now + s.accumulator.lingerNanos < s.timerArmedUntil {
                s.timerArmedUntil = now + s.accumulator.lingerNanos
                armTimer = true
            }
            if !s.senderStarted {
                s.senderStarted = true
                startSender = true
            }
        }
        if startSender { startSenderTask() }
        if armTimer { armLingerTimer(nanos: UInt64(configuration.lingerMs) * 1_000_000) }
        if wake { wakeSender() }
    }

    private func armLingerTimer(nanos: UInt64) {
        MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(Int64(nanos))) { [self] in
            self.state.withLock { $0.timerArmedUntil = .max }
            self.wakeSender()
        }
    }

    private func wakeSender() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.senderWaiter {
                s.senderWaiter = nil
                return w
            }
            s.wakeupPending = true
            return nil
        }
        waiter?.resume()
    }

    // MARK: - Sender

    private func startSenderTask() {
        Task { [self] in await self.senderLoop() }
    }

    private func senderLoop() async {
        if configuration.enableIdempotence {
            await initProducerId()
        }
        while true {
            // Wait for work.
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let run = state.withLock { s -> Bool in
                    if s.wakeupPending || s.closed {
                        s.wakeupPending = false
                        return true
                    }
                    s.senderWaiter = c
                    return false
                }
                if run { c.resume() }
            }
            let (closed, empty, stale) = state.withLock { ($0.closed, $0.accumulator.isEmpty, $0.metadataStale) }
            if closed && empty { return }
            if stale { await refreshLeaders() }
            sendReady()
        }
    }

    /// Sends every batch that is ready and allowed now, one Produce request per leader.
    private func sendReady() {
        let now = monotonicNanos()
        let maxInFlight = configuration.maxInFlightRequestsPerConnection
        let drained: [(node: Int32, batches: [ProducerBatch], ticket: UInt64)]
        var expired: [ProducerBatch] = []
        var rearm: UInt64?
        var missingLeader = false
        var startBump = false
        do {
            drained = try state.withLock { s throws(KafkaClientError) in
                s.accumulator.closeExpired(now: now)
                expired = s.accumulator.expire(now: now, deliveryNanos: UInt64(configuration.deliveryTimeoutMs) * 1_000_000)
                if !expired.isEmpty && s.firstError == nil {
                    s.firstError = .requestTimedOut(api: "Produce (delivery.timeout.ms)", timeoutMs: configuration.deliveryTimeoutMs)
                }
                let pid = s.producerId, epoch = s.producerEpoch
                let leaders = s.leaders
                let inFlight = s.inFlightPerNode
                // While an epoch bump is due, nothing is sent: the in-flight requests finish,
                // then the epoch is bumped and the sequences start again.
                if configuration.enableIdempotence && (s.epochBumpNeeded || s.bumpingEpoch) {
                    if !s.bumpingEpoch && s.accumulator.inFlightCount == 0 {
                        s.bumpingEpoch = true
                        startBump = true
                    }
                    return []
                }
                let result = try s.accumulator.drain(
                    leaderOf: { tp in
                        if let l = leaders[tp] { return l }
                        missingLeader = true
                        return nil
                    },
                    nodeMayTake: { (inFlight[$0] ?? 0) < maxInFlight },
                    producerId: pid, producerEpoch: epoch, maxBytesPerNode: configuration.maxRequestSize)
                var requests: [(node: Int32, batches: [ProducerBatch], ticket: UInt64)] = []
                for (node, batches) in result {
                    s.inFlightPerNode[node, default: 0] += 1
                    requests.append((node, batches, s.nextTicket[node, default: 0]))
                    s.nextTicket[node, default: 0] += 1
                }
                if let d = s.accumulator.nextLingerDeadline(), d < s.timerArmedUntil {
                    s.timerArmedUntil = d
                    rearm = d > now ? d - now : 0
                }
                if missingLeader { s.metadataStale = true }
                return requests
            }
        } catch {
            logger.error("producer: \(error)")
            return
        }
        for b in expired {
            b.fail(.requestTimedOut(api: "Produce (delivery.timeout.ms)", timeoutMs: configuration.deliveryTimeoutMs))
        }
        if !expired.isEmpty { releaseWaiters() }
        if startBump { Task { [self] in await self.bumpEpoch() } }
        if let rearm { armLingerTimer(nanos: max(rearm, 100_000)) }
        if missingLeader {
            // Retry after a metadata refresh.
            Task { [self] in
                try? await Task.sleep(for: .milliseconds(client.configuration.retryBackoffMs))
                self.wakeSender()
            }
        }
        for (node, batches, ticket) in drained {
            Task { [self] in await self.sendProduce(node: node, batches: batches, ticket: ticket) }
        }
    }

    /// Writes a drained request when its turn on the node comes: the tasks that send them may
    /// run in any order, but the broker must see a partition's sequence numbers in order.
    private func writeInTurn(node: Int32, ticket: UInt64,
                             _ write: () throws(KafkaClientError) -> BrokerConnection.WrittenProduce) async throws(KafkaClientError) -> BrokerConnection.WrittenProduce {
        while true {
            let outcome = state.withLock { s -> Result<BrokerConnection.WrittenProduce, KafkaClientError>? in
                guard s.writeTurn[node, default: 0] == ticket else { return nil }
                s.writeTurn[node, default: 0] += 1
                // Under the lock: the next ticket cannot write before this one.
                do throws(KafkaClientError) { return .success(try write()) } catch { return .failure(error) }
            }
            if let outcome { return try outcome.get() }
            await Task.yield()
        }
    }

    private func sendProduce(node: Int32, batches: [ProducerBatch], ticket: UInt64) async {
        var order: [String] = []
        var byTopic: [String: [ProduceFrame.Partition]] = [:]
        for b in batches {
            guard let records = b.built?.buffer else { continue }
            if byTopic[b.topicPartition.topic] == nil { order.append(b.topicPartition.topic) }
            byTopic[b.topicPartition.topic, default: []].append(ProduceFrame.Partition(index: b.topicPartition.partition, records: records))
        }
        let topics = order.map { (name: $0, partitions: byTopic[$0]!) }
        var results: [TopicPartition: ProduceResponse.PartitionProduceResponse] = [:]
        var requestError: KafkaClientError?
        do throws(KafkaClientError) {
            let connection: BrokerConnection
            do throws(KafkaClientError) {
                connection = try await client.core.connection(to: .node(node))
            } catch {
                // Its turn passes unused, so the node's later requests are not held up.
                _ = try? await writeInTurn(node: node, ticket: ticket) { () throws(KafkaClientError) in throw error }
                throw error
            }
            let acks = configuration.acks.rawValue, timeoutMs = Int32(configuration.requestTimeoutMs)
            let written = try await writeInTurn(node: node, ticket: ticket) { () throws(KafkaClientError) in
                try connection.writeProduce(acks: acks, timeoutMs: timeoutMs, topics: topics, answerTimeoutMs: configuration.requestTimeoutMs + 5_000)
            }
            let response = try await connection.produceAnswer(written)
            for t in response?.responses ?? [] {
                for p in t.partitionResponses { results[TopicPartition(topic: t.name, partition: p.index)] = p }
            }
        } catch {
            requestError = error
        }
        var retry = false
        var finished: [(ProducerBatch, Result<(Int64, Int64), KafkaClientError>)] = []
        let now = monotonicNanos()
        let deliveryNanos = UInt64(configuration.deliveryTimeoutMs) * 1_000_000
        state.withLock { s in
            s.inFlightPerNode[node, default: 1] -= 1
            for b in batches {
                let tp = b.topicPartition
                var error: KafkaClientError? = requestError
                var baseOffset: Int64 = -1
                var ts: Int64 = -1
                if error == nil && configuration.acks != .none {
                    if let r = results[tp] {
                        error = KafkaClientError.from(r.errorCode, r.errorMessage)
                        baseOffset = r.baseOffset
                        ts = r.logAppendTimeMs
                    } else {
                        error = .protocolViolation("Produce answer lacks \(tp)")
                    }
                }
                if error?.errorCode == .duplicateSequenceNumber {
                    error = nil
                    baseOffset = -1
                }
                guard let failure = error else {
                    s.accumulator.finished(b)
                    finished.append((b, .success((baseOffset, ts))))
                    continue
                }
                var retriable = failure.isRetriable
                if configuration.enableIdempotence && b.baseSequence >= 0 {
                    switch failure.errorCode {
                    case .outOfOrderSequenceNumber?:
                        // Expected while an earlier batch of the partition is retried (it goes
                        // first, then this one fits). Otherwise the broker lost or never got an
                        // earlier sequence: bump the epoch (KIP-360), then retry from sequence 0.
                        if !s.accumulator.hasRetryPending(tp) { s.epochBumpNeeded = true }
                        retriable = true
                    case .unknownProducerId?:
                        // The broker has no state for this producer (expired, or the log was
                        // truncated): same remedy.
                        s.epochBumpNeeded = true
                        retriable = true
                    default:
                        break
                    }
                }
                if retriable && now - b.createdAt < deliveryNanos {
                    s.accumulator.requeue(b)
                    if failure.invalidatesMetadata { s.metadataStale = true }
                    retry = true
                } else {
                    s.accumulator.finished(b)
                    finished.append((b, .failure(failure)))
                    if s.firstError == nil { s.firstError = failure }
                    // A sent batch failed for good: the broker may or may not have its sequence
                    // numbers, so the partition's later batches would be out of order forever.
                    if configuration.enableIdempotence && b.baseSequence >= 0 { s.epochBumpNeeded = true }
                }
            }
        }
        for (b, result) in finished {
            switch result {
            case let .success((offset, ts)):
                b.complete(baseOffset: offset, timestamp: ts)
            case let .failure(e):
                logger.debug("producer: batch for \(b.topicPartition) failed: \(e)")
                b.fail(e)
            }
        }
        if retry {
            if let requestError { await client.core.invalidate(requestError) }
            try? await Task.sleep(for: client.configuration.retryPolicy.backoff(attempt: 1))
        }
        releaseWaiters()
        wakeSender()
    }

    private func releaseWaiters() {
        let (memory, flush) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [CheckedContinuation<Void, Never>]) in
            var memory: [CheckedContinuation<Void, Never>] = []
            if s.accumulator.bufferedBytes < configuration.bufferMemory {
                memory = s.memoryWaiters
                s.memoryWaiters.removeAll()
            }
            var flush: [CheckedContinuation<Void, Never>] = []
            if s.accumulator.isEmpty {
                flush = s.flushWaiters
                s.flushWaiters.removeAll()
            }
            return (memory, flush)
        }
        for c in memory { c.resume() }
        for c in flush { c.resume() }
    }

    private func refreshLeaders() async {
        let topics = state.withLock { Array($0.partitionCounts.keys) }
        do {
            let m = try await client.core.refreshMetadata(topics: topics, allowAutoCreate: false)
            updateMetadata(m)
        } catch {
            logger.debug("producer: metadata refresh failed: \(error)")
        }
    }

    private func initProducerId() async {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try await client.send(InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: -1))
                try KafkaClientError.check(response.errorCode)
                state.withLock { s in
                    s.producerId = response.producerId
                    s.producerEpoch = response.producerEpoch
                }
                return
            } catch {
                if !error.isRetriable || attempt > 10 {
                    // Cannot be idempotent: fail loudly on every batch rather than silently
                    // duplicating.
                    logger.error("producer: InitProducerId failed: \(error)")
                    state.withLock { s in
                        if s.firstError == nil { s.firstError = error }
                    }
                    return
                }
                try? await Task.sleep(for: client.configuration.retryPolicy.backoff(attempt: attempt))
            }
        }
    }
}

/// `send`'s fast path could not take the record (the slow path takes it).
private struct NotReady: Error {}

extension KafkaProducer {
    /// KIP-360: InitProducerId with the current producer id and epoch (v3+) gives the same id with
    /// the next epoch, under which every partition's sequence starts again at 0; batches waiting
    /// for a retry are stamped with the new epoch and renumbered in order. A broker without v3
    /// gives a new producer id instead, which has the same effect. Runs with nothing in flight.
    func bumpEpoch() async {
        let (pid, epoch) = state.withLock { ($0.producerId, $0.producerEpoch) }
        var attempt = 0
        while true {
            attempt += 1
            do {
                var request = InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: -1)
                let connection = try await client.core.connection(to: .any)
                let version = try connection.version(for: .initProducerId)
                if version >= 3 && pid >= 0 {
                    request.producerId = pid
                    request.producerEpoch = epoch
                }
                let response = try await connection.send(request, version: version)
                try KafkaClientError.check(response.errorCode)
                logger.info("producer: epoch bumped (KIP-360): producer id \(pid) epoch \(epoch) -> producer id \(response.producerId) epoch \(response.producerEpoch)")
                state.withLock { s in
                    s.producerId = response.producerId
                    s.producerEpoch = response.producerEpoch
                    s.accumulator.resetSequences(producerId: response.producerId, producerEpoch: response.producerEpoch)
                    s.epochBumpNeeded = false
                    s.bumpingEpoch = false
                    s.epochBumps += 1
                }
                wakeSender()
                return
            } catch {
                if !error.isRetriable || attempt > 10 {
                    // The unsent batches cannot be sent safely: fail them.
                    logger.error("producer: epoch bump failed: \(error)")
                    let unsent = state.withLock { s -> [ProducerBatch] in
                        if s.firstError == nil { s.firstError = error }
                        s.epochBumpNeeded = false
                        s.bumpingEpoch = false
                        return s.accumulator.removeAllUnsent()
                    }
                    for b in unsent { b.fail(error) }
                    releaseWaiters()
                    wakeSender()
                    return
                }
                try? await Task.sleep(for: client.configuration.retryPolicy.backoff(attempt: attempt))
            }
        }
    }

    /// Epoch bumps so far (for tests).
    var epochBumpCount: Int { state.withLock { $0.epochBumps } }
}

extension KafkaProducer: Service {
    /// Runs until graceful shutdown (or cancellation), then flushes and closes.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(3600))
            }
        }
        await close()
    }
}
