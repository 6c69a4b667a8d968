import KafkaProtocol
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A Kafka consumer: manual assignment or group membership, fetch pipelining (the next fetch is
/// in flight while you process the current records), gzip batches, commits, pause/resume, and
/// records as an `AsyncSequence` (``records``).
///
/// One iteration of ``records`` at a time. Positions advance as records are yielded; `commit()`
/// commits the offset after the last record yielded for each partition.
public final class KafkaConsumer: Sendable {
    public let configuration: ConsumerConfiguration
    let client: KafkaClient
    let core: ConsumerCore
    /// Shared with the iterator without an actor hop: what is assigned and what was yielded.
    let shared: Locked<SharedPositions>

    struct SharedPositions {
        /// The assigned partitions, each with the position after the last record yielded.
        var assigned: [TopicPartition: PositionBox] = [:]

        /// Offset after the last record yielded, per partition that yielded one.
        var consumed: [TopicPartition: Int64] {
            assigned.compactMapValues { box in
                let o = box.offset.load(ordering: .acquiring)
                return o >= 0 ? o : nil
            }
        }
    }

    /// One assigned partition's position after the last record yielded. The iterator updates it
    /// without a lock or a dictionary lookup per record; `live` turns false when the partition is
    /// revoked or sought, and the iterator then drops the rest of its chunk.
    final class PositionBox: Sendable {
        let offset = Atomic<Int64>(-1)
        let live = Atomic<Bool>(true)
    }

    public init(client: KafkaClient, configuration: ConsumerConfiguration = ConsumerConfiguration(), logger: Logger? = nil) {
        self.configuration = configuration
        self.client = client
        let shared = Locked(SharedPositions())
        self.shared = shared
        self.core = ConsumerCore(client: client, configuration: configuration, shared: shared, logger: logger ?? client.logger)
    }

    /// Joins the group (needs `groupId`) and consumes the partitions the group assigns.
    public func subscribe(_ topics: [String]) async throws(KafkaClientError) {
        guard configuration.groupId != nil else { throw .invalidConfiguration("subscribe needs a group.id") }
        try await core.subscribe(topics)
    }

    /// Consumes exactly these partitions (no group membership; commits still go to `groupId`
    /// when set). Positions start from the committed offset, else `auto.offset.reset`.
    public func assign(_ partitions: [TopicPartition]) async throws(KafkaClientError) {
        try await core.assign(partitions)
    }

    /// The partitions currently assigned.
    public func assignment() async -> [TopicPartition] { await core.assignment().sorted() }

    /// Moves a partition's position; the next record yielded for it has this offset.
    public func seek(_ tp: TopicPartition, to offset: Int64) async throws(KafkaClientError) {
        try await core.seek(tp, offset: offset)
    }

    /// Moves to the earliest / latest offset.
    public func seek(_ tp: TopicPartition, to spec: OffsetSpec) async throws(KafkaClientError) {
        let offsets = try await client.listOffsets([tp: spec])
        guard let o = offsets[tp] else { throw .unknownPartition(tp) }
        try await core.seek(tp, offset: o)
    }

    /// The next offset to be yielded for the partition, if known.
    public func position(_ tp: TopicPartition) async -> Int64? { await core.position(tp) }

    public func pause(_ partitions: [TopicPartition]) async { await core.setPaused(partitions, true) }
    public func resume(_ partitions: [TopicPartition]) async { await core.setPaused(partitions, false) }

    /// Commits the offset after the last record yielded for every assigned partition.
    public func commit() async throws(KafkaClientError) {
        try await core.commitConsumed(nil)
    }

    /// Commits explicit offsets (the offset of the next record to read).
    public func commit(_ offsets: [TopicPartition: Int64]) async throws(KafkaClientError) {
        try await core.commit(offsets)
    }

    /// The group's committed offsets for partitions.
    public func committed(_ partitions: [TopicPartition]) async throws(KafkaClientError) -> [TopicPartition: Int64] {
        guard let g = configuration.groupId else { throw .invalidConfiguration("no group.id") }
        return try await client.fetchCommitted(group: g, partitions: partitions)
    }

    /// Commits (with auto-commit), revokes, leaves the group and stops fetching.
    public func close() async { await core.close() }

    /// The records, in order per partition. Ends after ``close()``; throws on fatal errors
    /// (e.g. OFFSET_OUT_OF_RANGE with `auto.offset.reset=none`).
    public var records: ConsumerRecords { ConsumerRecords(consumer: self) }
}

/// The consumer's records as an `AsyncSequence`.
public struct ConsumerRecords: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let consumer: KafkaConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer
        var chunk: [ConsumerRecord] = []
        var index = 0
        /// The position of the partition the current records belong to.
        var box: KafkaConsumer.PositionBox?
        var boxPartition: TopicPartition?

        public mutating func next() async throws -> ConsumerRecord? {
            try await next(isolation: nil)
        }

        /// Runs on the caller's actor: a record from the current chunk costs no executor hop.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> ConsumerRecord? {
            while true {
                if index < chunk.count {
                    let record = chunk[index]
                    index += 1
                    if box == nil || boxPartition != record.topicPartition {
                        let tp = record.topicPartition
                        box = consumer.shared.withLock { $0.assigned[tp] }
                        boxPartition = tp
                    }
                    if let box, box.live.load(ordering: .acquiring) {
                        box.offset.store(record.offset + 1, ordering: .releasing)
                        return record
                    }
                    // The partition was revoked or sought: drop the rest of this chunk.
                    chunk = []
                    index = 0
                    box = nil
                    continue
                }
                chunk = []
                index = 0
                box = nil
                guard let next = try await consumer.core.nextChunk() else { return nil }
                chunk = next
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(consumer: consumer) }
}

extension KafkaConsumer: Service {
    /// Runs until graceful shutdown, then closes (commit, leave group). Iterate ``records`` in
    /// another task; it ends when the consumer closes.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        }
        await close()
    }
}

/// The consumer's state: assignment, positions, fetched records, group membership.
actor ConsumerCore {
    let client: KafkaClient
    let configuration: ConsumerConfiguration
    let shared: Locked<KafkaConsumer.SharedPositions>
    let logger: Logger

    struct PartitionState {
        /// The next offset to hand to the iterator; nil until resolved.
        var position: Int64?
        /// The next offset to fetch (ahead of `position` while fetched records wait).
        var fetchPosition: Int64?
        var paused = false
        var fetching = false
        /// Bumped on seek/assign so that an answer to an older fetch is dropped.
        var epoch = 0
        var highWatermark: Int64 = -1
    }

    struct Chunk {
        var tp: TopicPartition
        var epoch: Int
        var records: [ConsumerRecord]
        var nextOffset: Int64
    }

    private var partitions: [TopicPartition: PartitionState] = [:]
    private var buffered: [Chunk] = []
    private var bufferedIndex = 0
    private var chunkWaiter: CheckedContinuation<Void, Never>?
    private var fatal: KafkaClientError?
    private var closed = false
    private var fetchLoopTask: Task<Void, Never>?
    private var fetchWake: CheckedContinuation<Void, Never>?
    private var fetchWakePending = false
    private var inFlightNodes: Set<Int32> = []

    // Group state
    private var subscription: [String] = []
    private var groupTask: Task<Void, Never>?
    private(set) var memberId = ""
    private(set) var generationId: Int32 = -1
    private var protocolName: AssignorKind?
    private var needsRejoin = true
    private var lastAutoCommit: UInt64 = 0

    init(client: KafkaClient, configuration: ConsumerConfiguration, shared: Locked<KafkaConsumer.SharedPositions>, logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.shared = shared
        self.logger = logger
    }

    // MARK: Assignment and positions

    func assignment() -> [TopicPartition] { Array(partitions.keys) }

    func assign(_ list: [TopicPartition]) async throws(KafkaClientError) {
        guard !closed else { throw .closed }
        let new = Set(list)
        for tp in partitions.keys where !new.contains(tp) { partitions[tp] = nil }
        for tp in new where partitions[tp] == nil { partitions[tp] = PartitionState() }
        dropBuffered { !new.contains($0) }
        publishAssignment()
        startFetchLoop()
        wakeFetcher()
    }

    private func publishAssignment() {
        let assigned = Set(partitions.keys)
        shared.withLock { s in
            for (tp, box) in s.assigned where !assigned.contains(tp) {
                box.live.store(false, ordering: .releasing)
                s.assigned[tp] = nil
            }
            for tp in assigned where s.assigned[tp] == nil { s.assigned[tp] = KafkaConsumer.PositionBox() }
        }
    }

    func seek(_ tp: TopicPartition, offset: Int64) throws(KafkaClientError) {
        guard var state = partitions[tp] else { throw .illegalState("\(tp) is not assigned") }
        state.position = offset
        state.fetchPosition = offset
        state.epoch += 1
        state.fetching = false
        partitions[tp] = state
        dropBuffered { $0 == tp }
        // The iterator must not yield records of the old position: drop them from its chunk.
        shared.withLock { s in
            s.assigned.removeValue(forKey: tp)?.live.store(false, ordering: .releasing)
        }
        // Re-admit at once: chunks handed out before this point are dropped by the iterator
        // only while `assigned` lacks tp, so give it back after a fresh chunk is needed.
        reAdmit.insert(tp)
        wakeFetcher()
    }

    private var reAdmit: Set<TopicPartition> = []

    func position(_ tp: TopicPartition) -> Int64? {
        if let c = shared.withLock({ $0.consumed[tp] }) { return c }
        return partitions[tp]?.position
    }

    func setPaused(_ list: [TopicPartition], _ paused: Bool) {
        for tp in list where partitions[tp] != nil { partitions[tp]!.paused = paused }
        if paused {
            // Records already fetched for paused partitions are kept back until resume.
        }
        wakeFetcher()
        if !paused { wakeIterator() }
    }

    private func dropBuffered(_ predicate: (TopicPartition) -> Bool) {
        var kept: [Chunk] = []
        for (i, c) in buffered.enumerated() where i >= bufferedIndex && !predicate(c.tp) { kept.append(c) }
        buffered = kept
        bufferedIndex = 0
        for (tp, var s) in partitions where predicate(tp) {
            s.fetchPosition = s.position
            s.fetching = false
            s.epoch += 1
            partitions[tp] = s
        }
    }

    // MARK: Handing records out

    /// The next chunk of records (one partition's share of a fetch), waiting for one.
    func nextChunk() async throws(KafkaClientError) -> [ConsumerRecord]? {
        if !reAdmit.isEmpty {
            let tps = reAdmit.filter { partitions[$0] != nil }
            reAdmit = []
            shared.withLock { s in
                for tp in tps where s.assigned[tp] == nil { s.assigned[tp] = KafkaConsumer.PositionBox() }
            }
        }
        if configuration.enableAutoCommit, configuration.groupId != nil,
           monotonicNanos() - lastAutoCommit > UInt64(configuration.autoCommitIntervalMs) * 1_000_000 {
            lastAutoCommit = monotonicNanos()
            do { try await commitConsumed(nil) } catch { logger.debug("auto-commit failed: \(error)") }
        }
        while true {
            if let f = fatal {
                fatal = nil
                throw f
            }
            if closed { return nil }
            // First chunk whose partition is assigned, not paused, and current.
            var i = bufferedIndex
            while i < buffered.count {
                let c = buffered[i]
                if let state = partitions[c.tp], state.epoch == c.epoch, !state.paused {
                    buffered.remove(at: i)
                    partitions[c.tp]!.position = c.nextOffset
                    wakeFetcher()
                    if !c.records.isEmpty { return c.records }
                    continue
                }
                if partitions[c.tp] == nil || partitions[c.tp]!.epoch != c.epoch {
                    buffered.remove(at: i)
                    continue
                }
                i += 1
            }
            await withCheckedContinuation { chunkWaiter = $0 }
        }
    }

    private func wakeIterator() {
        if let w = chunkWaiter {
            chunkWaiter = nil
            w.resume()
        }
    }

    // MARK: Fetching

    private func startFetchLoop() {
        guard fetchLoopTask == nil else { return }
        fetchLoopTask = Task { await self.fetchLoop() }
    }

    private func wakeFetcher() {
        if let w = fetchWake {
            fetchWake = nil
            w.resume()
        } else {
            fetchWakePending = true
        }
    }

    private func fetchLoop() async {
        var backoffAttempt = 0
        while !closed {
            if !fetchWakePending {
                await withCheckedContinuation { fetchWake = $0 }
            }
            fetchWakePending = false
            if closed { return }
            do {
                try await resolvePositions()
                backoffAttempt = 0
            } catch {
                backoffAttempt += 1
                if !error.isRetriable {
                    fatal = error
                    wakeIterator()
                }
                logger.debug("consumer: resolving positions failed: \(error)")
                scheduleWake(after: client.configuration.retryPolicy.backoff(attempt: backoffAttempt))
                continue
            }
            await issueFetches()
        }
    }

    private func scheduleWake(after duration: Duration) {
        Task {
            try? await Task.sleep(for: duration)
            self.wakeFetcher()
        }
    }

    /// Positions of partitions that have none: committed offset, else `auto.offset.reset`.
    private func resolvePositions() async throws(KafkaClientError) {
        let missing = partitions.filter { $0.value.position == nil }.map(\.key)
        guard !missing.isEmpty else { return }
        var found: [TopicPartition: Int64] = [:]
        if let group = configuration.groupId {
            found = try await client.fetchCommitted(group: group, partitions: missing)
        }
        let rest = missing.filter { found[$0] == nil }
        if !rest.isEmpty {
            switch configuration.autoOffsetReset {
            case .none:
                throw .illegalState("no committed offset for \(rest) and auto.offset.reset=none")
            case .earliest, .latest:
                let spec: OffsetSpec = configuration.autoOffsetReset == .earliest ? .earliest : .latest
                let offsets = try await client.listOffsets(Dictionary(uniqueKeysWithValues: rest.map { ($0, spec) }))
                for (tp, o) in offsets { found[tp] = o }
            }
        }
        for (tp, o) in found where partitions[tp] != nil && partitions[tp]!.position == nil {
            partitions[tp]!.position = o
            partitions[tp]!.fetchPosition = o
        }
    }

    /// Chunks (fetch answers) a partition may have waiting before it is fetched again: one is
    /// handed out while the next is fetched (as librdkafka keeps fetching until
    /// `queued.min.messages`), so the application rarely waits for a round trip.
    static let maxWaitingChunks = 2

    /// One Fetch per leader for the partitions with few records waiting and no fetch in flight.
    private func issueFetches() async {
        let metadata = await client.core.metadata
        var byLeader: [Int32: [(TopicPartition, Int64, Int)]] = [:]
        var unknownLeader = false
        var waiting: [TopicPartition: Int] = [:]
        for c in buffered[bufferedIndex...] { waiting[c.tp, default: 0] += 1 }
        for (tp, s) in partitions where !s.paused && !s.fetching && waiting[tp, default: 0] < Self.maxWaitingChunks {
            guard let offset = s.fetchPosition else { continue }
            guard let leader = metadata.leader(for: tp) else {
                unknownLeader = true
                continue
            }
            if inFlightNodes.contains(leader) { continue }
            byLeader[leader, default: []].append((tp, offset, s.epoch))
        }
        if unknownLeader {
            let topics = Array(Set(partitions.keys.map(\.topic)))
            _ = try? await client.core.refreshMetadata(topics: topics, allowAutoCreate: false)
            scheduleWake(after: .milliseconds(client.configuration.retryBackoffMs))
        }
        for (leader, parts) in byLeader {
            inFlightNodes.insert(leader)
            for (tp, _, _) in parts { partitions[tp]?.fetching = true }
            Task { await self.fetch(from: leader, parts) }
        }
    }

    private func fetch(from leader: Int32, _ parts: [(TopicPartition, Int64, Int)]) async {
        var request = FetchRequest(
            replicaId: -1, maxWaitMs: configuration.fetchMaxWaitMs, minBytes: configuration.fetchMinBytes,
            maxBytes: configuration.fetchMaxBytes, isolationLevel: configuration.readCommitted ? 1 : 0, sessionId: 0, sessionEpoch: -1)
        var topics: [String: [FetchRequest.FetchPartition]] = [:]
        for (tp, offset, _) in parts {
            topics[tp.topic, default: []].append(.init(partition: tp.partition, fetchOffset: offset, partitionMaxBytes: configuration.maxPartitionFetchBytes))
        }
        request.topics = topics.map { .init(topic: $0.key, partitions: $0.value) }
        let result: Result<FetchResponse, KafkaClientError>
        do {
            let connection = try await client.core.connection(to: .node(leader))
            result = .success(try await connection.send(request, timeoutMs: client.configuration.requestTimeoutMs + Int(configuration.fetchMaxWaitMs)))
        } catch {
            result = .failure(error)
        }
        await handleFetch(leader: leader, parts: parts, result: result)
    }

    private func handleFetch(leader: Int32, parts: [(TopicPartition, Int64, Int)], result: Result<FetchResponse, KafkaClientError>) async {
        inFlightNodes.remove(leader)
        for (tp, _, epoch) in parts where partitions[tp]?.epoch == epoch { partitions[tp]!.fetching = false }
        let response: FetchResponse
        switch result {
        case let .failure(error):
            logger.debug("consumer: fetch from \(leader) failed: \(error)")
            if error.invalidatesMetadata { await client.core.invalidate(error) }
            _ = try? await client.core.refreshMetadata(topics: Array(Set(parts.map(\.0.topic))), allowAutoCreate: false)
            scheduleWake(after: client.configuration.retryPolicy.backoff(attempt: 1))
            return
        case let .success(r):
            response = r
        }
        if response.errorCode != 0 {
            logger.debug("consumer: fetch error \(response.errorCode)")
            scheduleWake(after: client.configuration.retryPolicy.backoff(attempt: 1))
            return
        }
        let sent = Dictionary(parts.map { ($0.0, ($0.1, $0.2)) }, uniquingKeysWith: { a, _ in a })
        var refresh = false
        var gotAny = false
        for t in response.responses {
            for p in t.partitions {
                let tp = TopicPartition(topic: t.topic, partition: p.partitionIndex)
                guard let (offset, epoch) = sent[tp], var state = partitions[tp], state.epoch == epoch, state.fetchPosition == offset else { continue }
                if let error = KafkaClientError.from(p.errorCode) {
                    if error.errorCode == .offsetOutOfRange {
                        switch configuration.autoOffsetReset {
                        case .none:
                            fatal = error
                        case .earliest, .latest:
                            state.position = nil
                            state.fetchPosition = nil
                            partitions[tp] = state
                        }
                    } else if error.invalidatesMetadata || error.isRetriable {
                        refresh = true
                    } else {
                        fatal = error
                    }
                    continue
                }
                state.highWatermark = p.highWatermark
                do {
                    let (records, next) = try decode(p.records, topic: t.topic, partition: p.partitionIndex, from: offset)
                    state.fetchPosition = next
                    partitions[tp] = state
                    if next > offset || !records.isEmpty {
                        buffered.append(Chunk(tp: tp, epoch: epoch, records: records, nextOffset: next))
                        gotAny = true
                    }
                } catch {
                    fatal = error
                }
            }
        }
        if refresh {
            await client.core.invalidate(.broker(.notLeaderOrFollower, nil))
            _ = try? await client.core.refreshMetadata(topics: Array(Set(parts.map(\.0.topic))), allowAutoCreate: false)
            scheduleWake(after: .milliseconds(client.configuration.retryBackoffMs))
        }
        if gotAny || fatal != nil { wakeIterator() }
        wakeFetcher()
    }

    /// Decodes a partition's record batches: records at or after `from`, control batches skipped.
    private func decode(_ bytes: ByteBuffer?, topic: String, partition: Int32, from offset: Int64) throws(KafkaClientError) -> ([ConsumerRecord], Int64) {
        guard let bytes, bytes.readableBytes > 0 else { return ([], offset) }
        var out: [ConsumerRecord] = []
        var next = offset
        var iterator = RecordBatchIterator(bytes)
        do {
            while let batch = try iterator.next() {
                if configuration.checkCRCs { try batch.validate() }
                if batch.nextOffset <= offset { continue }
                if batch.isControl {
                    next = max(next, batch.nextOffset)
                    continue
                }
                var records = try batch.records()
                out.reserveCapacity(out.count + records.count)
                while let r = try records.next() {
                    guard r.offset >= offset else { continue }
                    out.append(ConsumerRecord(topic: topic, partition: partition, offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers))
                }
                next = max(next, batch.nextOffset)
            }
        } catch {
            throw .protocolViolation("fetch of \(topic)-\(partition): \(error)")
        }
        if out.isEmpty && next == offset && iterator.partialTrailingBytes > 0 && bytes.readableBytes >= Int(configuration.maxPartitionFetchBytes) {
            throw .recordTooLarge(iterator.partialTrailingBytes)
        }
        return (out, next)
    }

    // MARK: Commits

    func commit(_ offsets: [TopicPartition: Int64]) async throws(KafkaClientError) {
        guard let group = configuration.groupId else { throw .invalidConfiguration("commit needs a group.id") }
        try await client.commit(group: group, generation: generationId, memberId: memberId, groupInstanceId: configuration.groupInstanceId, offsets: offsets)
    }

    /// Commits the consumed positions (of `only`, or of every assigned partition).
    func commitConsumed(_ only: Set<TopicPartition>?) async throws(KafkaClientError) {
        guard configuration.groupId != nil else { return }
        let consumed = shared.withLock { $0.consumed }
        var offsets: [TopicPartition: Int64] = [:]
        for (tp, o) in consumed where only?.contains(tp) ?? true { offsets[tp] = o }
        guard !offsets.isEmpty else { return }
        try await commit(offsets)
    }

    // MARK: Group membership

    func subscribe(_ topics: [String]) async throws(KafkaClientError) {
        guard !closed else { throw .closed }
        subscription = topics
        needsRejoin = true
        startFetchLoop()
        if groupTask == nil {
            groupTask = Task { await self.groupLoop() }
        }
    }

    private func groupLoop() async {
        var attempt = 0
        var lastHeartbeat: UInt64 = 0
        while !closed {
            do {
                if needsRejoin {
                    try await joinAndSync()
                    lastHeartbeat = monotonicNanos()
                    attempt = 0
                    continue
                }
                let interval = UInt64(configuration.heartbeatIntervalMs) * 1_000_000
                let elapsed = monotonicNanos() - lastHeartbeat
                if elapsed < interval {
                    try? await Task.sleep(nanoseconds: min(interval - elapsed, 100_000_000))
                    continue
                }
                lastHeartbeat = monotonicNanos()
                try await heartbeat()
                attempt = 0
            } catch {
                if closed { return }
                attempt += 1
                logger.debug("consumer group: \(error)")
                try? await Task.sleep(for: client.configuration.retryPolicy.backoff(attempt: attempt))
            }
        }
    }

    private func groupId() throws(KafkaClientError) -> String {
        guard let g = configuration.groupId else { throw .invalidConfiguration("no group.id") }
        return g
    }

    private func heartbeat() async throws(KafkaClientError) {
        let group = try groupId()
        let node = try await client.findCoordinator(group: group)
        let connection = try await client.core.connection(to: .node(node))
        var request = HeartbeatRequest(groupId: group, generationId: generationId, memberId: memberId)
        if try connection.version(for: .heartbeat) >= 3 { request.groupInstanceId = configuration.groupInstanceId }
        let response = try await connection.send(request)
        guard let error = KafkaClientError.from(response.errorCode) else { return }
        try await handleGroupError(error)
    }

    /// Reacts to a group error; throws when the loop should back off.
    private func handleGroupError(_ error: KafkaClientError) async throws(KafkaClientError) {
        switch error.errorCode {
        case .rebalanceInProgress?:
            needsRejoin = true
        case .unknownMemberId?, .illegalGeneration?, .fencedInstanceId?:
            if error.errorCode == .unknownMemberId { memberId = "" }
            generationId = -1
            await losePartitions()
            needsRejoin = true
        case .notCoordinator?, .coordinatorNotAvailable?, .coordinatorLoadInProgress?:
            throw error
        default:
            throw error
        }
    }

    private func losePartitions() async {
        let lost = Array(partitions.keys)
        guard !lost.isEmpty else { return }
        if let cb = configuration.onPartitionsLost ?? configuration.onPartitionsRevoked { await cb(lost.sorted()) }
        for tp in lost { partitions[tp] = nil }
        dropBuffered { _ in true }
        publishAssignment()
    }

    /// Takes partitions away: auto-commit, callback, then drop.
    private func revoke(_ list: [TopicPartition]) async {
        guard !list.isEmpty else { return }
        if configuration.enableAutoCommit {
            do { try await commitConsumed(Set(list)) } catch { logger.debug("commit before revoke failed: \(error)") }
        }
        if let cb = configuration.onPartitionsRevoked { await cb(list.sorted()) }
        let set = Set(list)
        for tp in list { partitions[tp] = nil }
        dropBuffered { set.contains($0) }
        publishAssignment()
    }

    private func joinAndSync() async throws(KafkaClientError) {
        let group = try groupId()
        // Eager protocols give everything up before joining.
        if let p = protocolName, !p.isCooperative {
            await revoke(Array(partitions.keys))
        }
        let node = try await client.findCoordinator(group: group)
        let connection = try await client.core.connection(to: .node(node))
        let joinVersion = try connection.version(for: .joinGroup)
        let owned = Array(partitions.keys)
        var protocols: [JoinGroupRequest.JoinGroupRequestProtocol] = []
        for a in configuration.assignors {
            let sub = ConsumerProtocol.Subscription(topics: subscription, ownedPartitions: a.isCooperative ? owned : [], generationId: generationId)
            protocols.append(.init(name: a.rawValue, metadata: try ConsumerProtocol.encodeSubscription(sub)))
        }
        var join = JoinGroupRequest(
            groupId: group, sessionTimeoutMs: Int32(configuration.sessionTimeoutMs), rebalanceTimeoutMs: Int32(configuration.rebalanceTimeoutMs),
            memberId: memberId, protocolType: ConsumerProtocol.protocolType, protocols: protocols)
        if joinVersion >= 5 { join.groupInstanceId = configuration.groupInstanceId }
        let joinTimeout = configuration.rebalanceTimeoutMs + 5_000
        var response = try await connection.send(join, version: joinVersion, timeoutMs: joinTimeout)
        if response.errorCode == KafkaErrorCode.memberIdRequired.rawValue {
            memberId = response.memberId
            join.memberId = memberId
            response = try await connection.send(join, version: joinVersion, timeoutMs: joinTimeout)
        }
        if let error = KafkaClientError.from(response.errorCode) {
            if error.errorCode == .unknownMemberId { memberId = "" }
            if error.errorCode == .rebalanceInProgress { return }
            throw error
        }
        memberId = response.memberId
        generationId = response.generationId
        guard let name = response.protocolName, let chosen = AssignorKind(rawValue: name) else {
            throw .protocolViolation("JoinGroup chose protocol \(response.protocolName ?? "nil") that this member did not offer")
        }
        protocolName = chosen
        var assignments: [SyncGroupRequest.SyncGroupRequestAssignment] = []
        if response.leader == memberId && !response.skipAssignment {
            var members: [AssignorMember] = []
            var topics = Set<String>()
            for m in response.members {
                let sub = try ConsumerProtocol.decodeSubscription(m.metadata)
                topics.formUnion(sub.topics)
                members.append(AssignorMember(memberId: m.memberId, groupInstanceId: m.groupInstanceId, subscription: sub))
            }
            let metadata = try await client.core.refreshMetadata(topics: Array(topics), allowAutoCreate: false)
            var counts: [String: Int] = [:]
            for t in topics { if let n = metadata.partitionCount(t) { counts[t] = n } }
            let plan = Assignors.assign(chosen, members: members, partitionsPerTopic: counts)
            for (member, parts) in plan {
                assignments.append(.init(memberId: member, assignment: try ConsumerProtocol.encodeAssignment(.init(partitions: parts))))
            }
        }
        var sync = SyncGroupRequest(groupId: group, generationId: generationId, memberId: memberId, assignments: assignments)
        let syncVersion = try connection.version(for: .syncGroup)
        if syncVersion >= 3 { sync.groupInstanceId = configuration.groupInstanceId }
        if syncVersion >= 5 {
            sync.protocolType = ConsumerProtocol.protocolType
            sync.protocolName = chosen.rawValue
        }
        let syncResponse = try await connection.send(sync, version: syncVersion, timeoutMs: joinTimeout)
        if let error = KafkaClientError.from(syncResponse.errorCode) {
            if error.errorCode == .rebalanceInProgress { return }
            try await handleGroupError(error)
            return
        }
        let assignment = try ConsumerProtocol.decodeAssignment(syncResponse.assignment)
        let new = Set(assignment.partitions)
        let current = Set(partitions.keys)
        let revoked = current.subtracting(new)
        let added = new.subtracting(current)
        needsRejoin = false
        if !revoked.isEmpty {
            await revoke(Array(revoked))
            // Cooperative: revoked partitions go to their new owner in a follow-up rebalance.
            if chosen.isCooperative { needsRejoin = true }
        }
        for tp in added { partitions[tp] = PartitionState() }
        publishAssignment()
        logger.debug("consumer \(memberId) generation \(generationId): assigned \(new.sorted())")
        if !added.isEmpty, let cb = configuration.onPartitionsAssigned { await cb(added.sorted()) }
        wakeFetcher()
    }

    func close() async {
        guard !closed else { return }
        if configuration.groupId != nil {
            if configuration.enableAutoCommit {
                do { try await commitConsumed(nil) } catch { logger.debug("final commit failed: \(error)") }
            }
            if groupTask != nil {
                if let cb = configuration.onPartitionsRevoked, !partitions.isEmpty { await cb(partitions.keys.sorted()) }
                if let group = configuration.groupId, !memberId.isEmpty {
                    do {
                        let node = try await client.findCoordinator(group: group)
                        let connection = try await client.core.connection(to: .node(node))
                        let v = try connection.version(for: .leaveGroup)
                        var request = LeaveGroupRequest(groupId: group)
                        if v >= 3 {
                            request.members = [.init(memberId: memberId, groupInstanceId: configuration.groupInstanceId)]
                        } else {
                            request.memberId = memberId
                        }
                        _ = try await connection.send(request, version: v)
                    } catch {
                        logger.debug("LeaveGroup failed: \(error)")
                    }
                }
            }
        }
        closed = true
        groupTask?.cancel()
        partitions = [:]
        buffered = []
        publishAssignment()
        wakeIterator()
        wakeFetcher()
    }
}
