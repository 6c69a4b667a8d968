import Foundation
import KafkaProtocol
import LogStorage
import Logging
import NIOCore
import Synchronization

/// An offset a group committed for one partition.
struct CommittedOffset: Sendable, Hashable {
    var offset: Int64
    var leaderEpoch: Int32
    var metadata: String
    var commitTimestamp: Int64
    var expireTimestamp: Int64 = -1
}

/// Holds the broker's group coordinator, created on first use (so `BrokerRuntime` needs only
/// one stored property).
final class GroupCoordinatorSlot: Sendable {
    private let value = Mutex<GroupCoordinator?>(nil)
    init() {}

    func get(_ runtime: BrokerRuntime, eventLoop: EventLoop) -> GroupCoordinator {
        value.withLock { slot in
            if let c = slot { return c }
            let c = GroupCoordinator(runtime: runtime, eventLoop: eventLoop)
            slot = c
            return c
        }
    }
}

extension BrokerRuntime {
    func groupCoordinator(_ eventLoop: EventLoop) -> GroupCoordinator { groups.get(self, eventLoop: eventLoop) }
}

/// The classic group coordinator of this broker: one `ClassicGroup` state machine per group,
/// committed offsets, and their records in `__consumer_offsets`. Everything is guarded by one
/// lock; appends to the offsets partition happen under it so records keep the state's order.
final class GroupCoordinator: Sendable {
    static let topicName = "__consumer_offsets"

    let nodeId: Int32
    let numPartitions: Int32
    let replicationFactor: Int16
    let segmentBytes: Int
    let initialRebalanceDelayMs: Int64
    let minSessionTimeoutMs: Int32
    let maxSessionTimeoutMs: Int32
    let maxGroupSize: Int
    let maxMetadataBytes = 4096
    let offsetsRetentionMs: Int64
    private let replicas: ReplicaManager
    private let metadata: MetadataManager
    private let logger: Logger
    let eventLoop: EventLoop

    struct State {
        var groups: [String: ClassicGroup] = [:]
        var offsets: [String: [TopicPartition: CommittedOffset]] = [:]
        /// Offsets partitions loaded, with the leader epoch they were loaded in: a partition this
        /// broker leads again after another broker led it is read again (coordinator failover).
        var loaded: [Int32: Int32] = [:]
        var nextToken = 1
        var joinPromises: [Int: EventLoopPromise<JoinResult>] = [:]
        var syncPromises: [Int: EventLoopPromise<SyncResult>] = [:]
        var timers: [String: (deadline: Int64, task: Scheduled<Void>)] = [:]
    }

    private let state = Mutex(State())

    init(runtime: BrokerRuntime, eventLoop: EventLoop) {
        let c = runtime.config
        nodeId = runtime.nodeId
        numPartitions = Int32(max(1, c.offsetsTopicNumPartitions))
        replicationFactor = Int16(max(1, c.offsetsTopicReplicationFactor))
        segmentBytes = c.offsetsTopicSegmentBytes
        initialRebalanceDelayMs = Int64(c.groupInitialRebalanceDelayMs)
        minSessionTimeoutMs = Int32(clamping: c.groupMinSessionTimeoutMs)
        maxSessionTimeoutMs = Int32(clamping: c.groupMaxSessionTimeoutMs)
        maxGroupSize = c.groupMaxSize
        offsetsRetentionMs = Int64(c.offsetsRetentionMs)
        replicas = runtime.replicas
        metadata = runtime.metadata
        logger = runtime.logger
        self.eventLoop = eventLoop
        let interval = Int64(max(1000, c.offsetsRetentionCheckIntervalMs))
        eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(interval), delay: .milliseconds(interval)) { [weak self] task in
            guard let self else { task.cancel(); return }
            self.expireOffsets(now: LogClock.nowMillis())
        }
    }

    // MARK: retention

    /// Offsets past `offsets.retention.minutes` (KIP-211): for a group with members, none; for an
    /// empty group, counted from when it became empty (or the commit, whichever is later); an
    /// explicit v1 expire timestamp wins.
    static func expiredOffsets(_ offsets: [TopicPartition: CommittedOffset], group: ClassicGroup?, now: Int64, retentionMs: Int64) -> [TopicPartition] {
        if let group, group.phase != .empty { return [] }
        let base = group?.stateTimestamp ?? -1
        return offsets.filter { _, o in
            o.expireTimestamp >= 0 ? o.expireTimestamp <= now : max(base, o.commitTimestamp) + retentionMs <= now
        }.map(\.key)
    }

    /// Writes tombstones for expired offsets, and for empty groups left without offsets.
    func expireOffsets(now: Int64) {
        state.withLock { s in
            for (groupId, offsets) in s.offsets {
                let group = s.groups[groupId]
                let expired = Self.expiredOffsets(offsets, group: group, now: now, retentionMs: offsetsRetentionMs)
                guard !expired.isEmpty else { continue }
                var records: [(key: ByteBuffer, value: ByteBuffer?)] = expired.map { (Self.offsetKey(group: groupId, tp: $0), nil) }
                let groupGone = expired.count == offsets.count && (group == nil || group!.phase == .empty)
                if groupGone { records.append((Self.groupKey(groupId), nil)) }
                guard appendLocked(groupId: groupId, records: records) == nil else { continue }
                for tp in expired { s.offsets[groupId]?[tp] = nil }
                if groupGone {
                    s.offsets[groupId] = nil
                    s.groups[groupId] = nil
                }
                logger.info("expired \(expired.count) offsets of group \(groupId)\(groupGone ? "; the group is removed" : "")")
            }
        }
    }

    /// Requests still waiting (a join in the initial delay, a follower's sync) when the broker
    /// goes away are answered rather than leaked.
    deinit {
        let (joins, syncs, timers) = state.withLock { s in (s.joinPromises.values, s.syncPromises.values, s.timers.values) }
        for t in timers { t.task.cancel() }
        for p in joins { p.succeed(.failure(.coordinatorNotAvailable)) }
        for p in syncs { p.succeed(SyncResult(error: .coordinatorNotAvailable)) }
    }

    // MARK: placement

    /// Java's `String.hashCode` over UTF-16 code units.
    static func javaHashCode(_ s: String) -> Int32 {
        var h: Int32 = 0
        for u in s.utf16 { h = h &* 31 &+ Int32(u) }
        return h
    }

    /// Kafka's `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`.
    static func partition(for groupId: String, partitions: Int32) -> Int32 {
        let h = javaHashCode(groupId)
        let a = h == Int32.min ? 0 : abs(h)
        return a % partitions
    }

    func partition(for groupId: String) -> Int32 { Self.partition(for: groupId, partitions: numPartitions) }

    /// Creates `__consumer_offsets` if it does not exist yet. nil when it exists afterwards.
    func ensureOffsetsTopic() -> KafkaErrorCode? {
        if metadata.current().topics[Self.topicName] != nil { return nil }
        let live = metadata.current().brokers.values.filter { !$0.fenced }.count
        let rf = min(replicationFactor, Int16(max(1, live)))
        let results = metadata.createTopics(
            [TopicCreation(name: Self.topicName, partitions: numPartitions, replicationFactor: rf, assignments: [:],
                           configs: ["cleanup.policy": "compact", "segment.bytes": String(segmentBytes)])],
            validateOnly: false, logger: logger)
        if let r = results.first, let e = r.error, e != .topicAlreadyExists {
            logger.warning("cannot create \(Self.topicName): \(e.name): \(r.message ?? "")")
            return .coordinatorNotAvailable
        }
        return metadata.current().topics[Self.topicName] == nil ? .coordinatorNotAvailable : nil
    }

    /// The coordinator node for a group (this broker when it leads the group's partition), or an error.
    func coordinatorNode(for groupId: String) -> (node: Int32, error: KafkaErrorCode?) {
        if let e = ensureOffsetsTopic() { return (-1, e) }
        let p = partition(for: groupId)
        guard let image = metadata.current().topics[Self.topicName]?.partitions.first(where: { $0.partition == p }), image.leader >= 0 else {
            return (-1, .coordinatorNotAvailable)
        }
        return (image.leader, nil)
    }

    /// nil when this broker coordinates the group (its partition is loaded), otherwise the error to answer.
    private func checkCoordinator(_ groupId: String) -> KafkaErrorCode? {
        if let e = ensureOffsetsTopic() { return e }
        let tp = TopicPartition(topic: Self.topicName, partition: partition(for: groupId))
        guard let p = replicas.partition(tp) else { return .notCoordinator }
        return p.isLeader ? nil : .notCoordinator
    }

    // MARK: loading

    /// Reads the group's offsets partition from its start, once, rebuilding groups and offsets.
    private func ensureLoaded(_ s: inout State, partition index: Int32) {
        let tp = TopicPartition(topic: Self.topicName, partition: index)
        guard let partition = replicas.partition(tp) else { return }
        let epoch = partition.leaderEpoch
        if let loadedEpoch = s.loaded[index] {
            if loadedEpoch == epoch { return }
            // Another broker may have coordinated these groups meanwhile: forget and re-read.
            let numPartitions = self.numPartitions
            for id in Array(s.groups.keys) where Self.partition(for: id, partitions: numPartitions) == index { s.groups[id] = nil }
            for id in Array(s.offsets.keys) where Self.partition(for: id, partitions: numPartitions) == index { s.offsets[id] = nil }
            logger.info("coordinator for \(tp) again (leader epoch \(epoch)); reloading its groups")
        }
        s.loaded[index] = epoch
        let now = LogClock.nowMillis()
        var offset = partition.log.logStartOffset
        let end = partition.log.logEndOffset
        var groupValues: [String: GroupMetadataValue?] = [:]
        var records = 0
        while offset < end {
            guard let read = try? partition.log.read(from: offset, maxBytes: 1 << 20, upTo: nil, minOneBatch: true),
                  read.records.readableBytes > 0 else { break }
            var iterator = RecordBatchIterator(read.records)
            var advanced = false
            while let batch = try? iterator.next() {
                defer { offset = max(offset, batch.lastOffset + 1); advanced = true }
                if batch.isControl || batch.lastOffset < offset { continue }
                guard var recs = try? batch.records() else { continue }
                while let r = try? recs.next() {
                    guard r.offset >= offset, var key = r.key, let version: Int16 = key.readInteger() else { continue }
                    records += 1
                    if version <= 1 {
                        guard let k = try? OffsetCommitKey(from: &key, version: version) else { continue }
                        let tpk = TopicPartition(topic: k.topic, partition: k.partition)
                        if var value = r.value, let vv: Int16 = value.readInteger(), let v = try? OffsetCommitValue(from: &value, version: vv) {
                            s.offsets[k.group, default: [:]][tpk] = CommittedOffset(
                                offset: v.offset, leaderEpoch: v.leaderEpoch, metadata: v.metadata,
                                commitTimestamp: v.commitTimestamp, expireTimestamp: v.expireTimestamp)
                        } else {
                            s.offsets[k.group]?[tpk] = nil
                        }
                    } else if version == 2 {
                        guard let k = try? GroupMetadataKey(from: &key, version: version) else { continue }
                        if var value = r.value, let vv: Int16 = value.readInteger(), let v = try? GroupMetadataValue(from: &value, version: vv) {
                            groupValues[k.group] = .some(v)
                        } else {
                            groupValues[k.group] = .some(nil)
                        }
                    }
                }
            }
            if !advanced { break }
        }
        for (id, value) in groupValues {
            if let value {
                var g = ClassicGroup(groupId: id, initialRebalanceDelayMs: initialRebalanceDelayMs)
                g.restore(value, now: now)
                s.groups[id] = g
            } else {
                s.groups[id] = nil
            }
        }
        if records > 0 {
            logger.info("loaded \(records) group records from \(tp): \(groupValues.count) groups, \(s.offsets.count) groups with offsets")
        }
        for id in groupValues.keys { rescheduleLocked(&s, groupId: id) }
    }

    // MARK: persistence

    private func appendLocked(groupId: String, records: [(key: ByteBuffer, value: ByteBuffer?)]) -> KafkaErrorCode? {
        guard !records.isEmpty else { return nil }
        let tp = TopicPartition(topic: Self.topicName, partition: partition(for: groupId))
        guard let partition = replicas.partition(tp) else { return .notCoordinator }
        var builder = RecordBatchBuilder()
        let now = LogClock.nowMillis()
        do {
            for r in records { try builder.append(key: r.key, value: r.value, timestamp: now) }
            let batch = try builder.build()
            switch partition.appendAsLeader(batch.buffer, requiredAcks: -1) {
            case .success:
                replicas.delayedFetches.wake(tp)
                return nil
            case .failure(let f):
                logger.warning("cannot write group records of \(groupId) to \(tp): \(f.code.name): \(f.message)")
                switch f.code {
                case .notLeaderOrFollower: return .notCoordinator
                case .messageTooLarge, .recordListTooLarge: return .invalidCommitOffsetSize
                default: return .coordinatorNotAvailable
                }
            }
        } catch {
            logger.warning("cannot encode group records of \(groupId): \(error)")
            return .unknownServerError
        }
    }

    static func offsetKey(group: String, tp: TopicPartition) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(Int16(1))
        try? OffsetCommitKey(group: group, topic: tp.topic, partition: tp.partition).encode(into: &b, version: 1)
        return b
    }

    static func offsetValue(_ o: CommittedOffset) -> ByteBuffer {
        var b = ByteBuffer()
        // v1 carries the (pre-2.1) expire timestamp; v3 the leader epoch.
        let version: Int16 = o.expireTimestamp >= 0 ? 1 : 3
        b.writeInteger(version)
        try? OffsetCommitValue(offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata,
                               commitTimestamp: o.commitTimestamp, expireTimestamp: o.expireTimestamp).encode(into: &b, version: version)
        return b
    }

    static func groupKey(_ group: String) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(Int16(2))
        try? GroupMetadataKey(group: group).encode(into: &b, version: 2)
        return b
    }

    static func groupValue(_ g: ClassicGroup) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(Int16(3))
        try? g.metadataValue().encode(into: &b, version: 3)
        return b
    }

    // MARK: running the state machine

    private enum Completion {
        case join(EventLoopPromise<JoinResult>, JoinResult)
        case sync(EventLoopPromise<SyncResult>, SyncResult)
        func run() {
            switch self {
            case .join(let p, let r): p.succeed(r)
            case .sync(let p, let r): p.succeed(r)
            }
        }
    }

    private func processLocked(_ s: inout State, groupId: String, _ outputs: [GroupOutput]) -> [Completion] {
        var done: [Completion] = []
        for o in outputs {
            switch o {
            case .join(let token, let r):
                if let p = s.joinPromises.removeValue(forKey: token) { done.append(.join(p, r)) }
            case .sync(let token, let r):
                if let p = s.syncPromises.removeValue(forKey: token) { done.append(.sync(p, r)) }
            case .persistGroup:
                if let g = s.groups[groupId] {
                    _ = appendLocked(groupId: groupId, records: [(Self.groupKey(groupId), Self.groupValue(g))])
                }
            }
        }
        rescheduleLocked(&s, groupId: groupId)
        return done
    }

    private func rescheduleLocked(_ s: inout State, groupId: String) {
        let deadline = s.groups[groupId]?.nextDeadline
        if let current = s.timers[groupId] {
            if current.deadline == deadline { return }
            current.task.cancel()
            s.timers[groupId] = nil
        }
        guard let deadline else { return }
        let delay = max(0, deadline - LogClock.nowMillis())
        let task = eventLoop.scheduleTask(in: .milliseconds(delay)) { [self] in self.tick(groupId: groupId) }
        s.timers[groupId] = (deadline, task)
    }

    private func tick(groupId: String) {
        let done: [Completion] = state.withLock { s in
            s.timers[groupId] = nil
            guard var g = s.groups[groupId] else { return [] }
            let outputs = g.tick(now: LogClock.nowMillis())
            s.groups[groupId] = g
            return processLocked(&s, groupId: groupId, outputs)
        }
        for c in done { c.run() }
    }

    /// Runs one event against a group (created if `create`), with its partition loaded.
    private func withGroup<T>(_ groupId: String, create: Bool, _ body: (inout State, inout ClassicGroup?) -> (T, [GroupOutput])) -> T {
        let (result, done): (T, [Completion]) = state.withLock { s in
            ensureLoaded(&s, partition: partition(for: groupId))
            var g = s.groups[groupId]
            if g == nil && create { g = ClassicGroup(groupId: groupId, initialRebalanceDelayMs: initialRebalanceDelayMs) }
            let (result, outputs) = body(&s, &g)
            s.groups[groupId] = g
            return (result, processLocked(&s, groupId: groupId, outputs))
        }
        for c in done { c.run() }
        return result
    }

    // MARK: API

    func join(groupId: String, input: JoinInput, eventLoop: EventLoop) -> EventLoopFuture<JoinResult> {
        if groupId.isEmpty { return eventLoop.makeSucceededFuture(.failure(.invalidGroupId, memberId: input.memberId)) }
        if let e = checkCoordinator(groupId) { return eventLoop.makeSucceededFuture(.failure(e, memberId: input.memberId)) }
        if input.sessionTimeoutMs < minSessionTimeoutMs || input.sessionTimeoutMs > maxSessionTimeoutMs {
            return eventLoop.makeSucceededFuture(.failure(.invalidSessionTimeout, memberId: input.memberId))
        }
        let promise = eventLoop.makePromise(of: JoinResult.self)
        withGroup(groupId, create: input.memberId.isEmpty) { s, g -> (Void, [GroupOutput]) in
            let token = s.nextToken
            s.nextToken += 1
            s.joinPromises[token] = promise
            guard var group = g else { return ((), [.join(token: token, .failure(.unknownMemberId, memberId: input.memberId))]) }
            if input.memberId.isEmpty && group.members.count >= maxGroupSize && group.staticMemberId(input.groupInstanceId ?? "\u{0}") == nil {
                return ((), [.join(token: token, .failure(.groupMaxSizeReached, memberId: input.memberId))])
            }
            let prefix = input.groupInstanceId ?? input.clientId
            let outputs = group.join(input, token: token, now: LogClock.nowMillis()) { prefix + "-" + UUID().uuidString.lowercased() }
            g = group
            return ((), outputs)
        }
        return promise.futureResult
    }

    func sync(groupId: String, memberId: String, instanceId: String?, generationId: Int32, protocolType: String?, protocolName: String?,
              assignments: [String: ByteBuffer], eventLoop: EventLoop) -> EventLoopFuture<SyncResult> {
        if let e = checkCoordinator(groupId) { return eventLoop.makeSucceededFuture(SyncResult(error: e)) }
        let promise = eventLoop.makePromise(of: SyncResult.self)
        withGroup(groupId, create: false) { s, g -> (Void, [GroupOutput]) in
            let token = s.nextToken
            s.nextToken += 1
            s.syncPromises[token] = promise
            guard var group = g else { return ((), [.sync(token: token, SyncResult(error: .unknownMemberId))]) }
            let outputs = group.sync(memberId: memberId, instanceId: instanceId, generationId: generationId, protocolType: protocolType,
                                     protocolName: protocolName, assignments: assignments, token: token, now: LogClock.nowMillis())
            g = group
            return ((), outputs)
        }
        return promise.futureResult
    }

    func heartbeat(groupId: String, memberId: String, instanceId: String?, generationId: Int32) -> KafkaErrorCode {
        if let e = checkCoordinator(groupId) { return e }
        return withGroup(groupId, create: false) { _, g in
            guard var group = g else { return (.unknownMemberId, []) }
            let e = group.heartbeat(memberId: memberId, instanceId: instanceId, generationId: generationId, now: LogClock.nowMillis())
            g = group
            return (e, [])
        }
    }

    func leave(groupId: String, members: [(memberId: String, instanceId: String?)]) -> (KafkaErrorCode, [KafkaErrorCode]) {
        if let e = checkCoordinator(groupId) { return (e, []) }
        return withGroup(groupId, create: false) { _, g in
            guard var group = g else { return ((.none, members.map { _ in .unknownMemberId }), []) }
            let (errors, outputs) = group.leave(members, now: LogClock.nowMillis())
            g = group
            return ((.none, errors), outputs)
        }
    }

    struct CommitRequest {
        var groupId: String
        var generationId: Int32
        var memberId: String
        var instanceId: String?
        var retentionMs: Int64
        var offsets: [(TopicPartition, offset: Int64, leaderEpoch: Int32, metadata: String?, timestamp: Int64)]
    }

    /// OffsetCommit: checks membership as Kafka's classic coordinator does, writes the records, then
    /// applies them. Answers one error per partition, in request order.
    func commit(_ r: CommitRequest, topicExists: (TopicPartition) -> Bool) -> [KafkaErrorCode] {
        if r.groupId.isEmpty { return r.offsets.map { _ in .invalidGroupId } }
        if let e = checkCoordinator(r.groupId) { return r.offsets.map { _ in e } }
        return withGroup(r.groupId, create: r.generationId < 0) { s, g -> ([KafkaErrorCode], [GroupOutput]) in
            guard var group = g else { return (r.offsets.map { _ in .illegalGeneration }, []) }
            let now = LogClock.nowMillis()
            var groupError: KafkaErrorCode = .none
            if group.phase == .dead {
                groupError = .coordinatorNotAvailable
            } else if let instance = r.instanceId, let current = group.staticMemberId(instance), current != r.memberId {
                groupError = .fencedInstanceId
            } else if r.generationId < 0 && group.phase == .empty {
                groupError = .none
            } else if group.phase == .completingRebalance {
                groupError = .rebalanceInProgress
            } else if group.member(r.memberId) == nil {
                groupError = .unknownMemberId
            } else if r.generationId != group.generationId {
                groupError = .illegalGeneration
            } else {
                _ = group.heartbeat(memberId: r.memberId, instanceId: r.instanceId, generationId: r.generationId, now: now)
            }
            g = group
            if groupError != .none { return (r.offsets.map { _ in groupError }, []) }
            var errors = [KafkaErrorCode]()
            var accepted: [(TopicPartition, CommittedOffset)] = []
            for o in r.offsets {
                if !topicExists(o.0) { errors.append(.unknownTopicOrPartition); continue }
                if (o.metadata?.utf8.count ?? 0) > maxMetadataBytes { errors.append(.offsetMetadataTooLarge); continue }
                let ts = o.timestamp >= 0 ? o.timestamp : now
                let value = CommittedOffset(offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata ?? "", commitTimestamp: ts,
                                            expireTimestamp: r.retentionMs >= 0 ? ts + r.retentionMs : -1)
                accepted.append((o.0, value))
                errors.append(.none)
            }
            if let e = appendLocked(groupId: r.groupId, records: accepted.map { (Self.offsetKey(group: r.groupId, tp: $0.0), Self.offsetValue($0.1)) }) {
                return (errors.map { $0 == .none ? e : $0 }, [])
            }
            for (tp, v) in accepted { s.offsets[r.groupId, default: [:]][tp] = v }
            return (errors, [])
        }
    }

    /// OffsetFetch for one group: nil topics = every committed partition.
    func fetchOffsets(groupId: String, partitions: [TopicPartition]?) -> (KafkaErrorCode, [(TopicPartition, CommittedOffset?)]) {
        if let e = checkCoordinator(groupId) { return (e, []) }
        return withGroup(groupId, create: false) { s, _ in
            let committed = s.offsets[groupId] ?? [:]
            if let partitions { return ((.none, partitions.map { ($0, committed[$0]) }), []) }
            let all = committed.sorted { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }.map { ($0.key, Optional($0.value)) }
            return ((.none, all), [])
        }
    }

    struct GroupListing {
        var groupId: String
        var protocolType: String
        var state: String
    }

    /// Every group this broker coordinates (loading every partition it leads first).
    func listGroups() -> [GroupListing] {
        _ = ensureOffsetsTopic()
        return state.withLock { s in
            for p in 0..<numPartitions {
                if replicas.partition(TopicPartition(topic: Self.topicName, partition: p))?.isLeader == true { ensureLoaded(&s, partition: p) }
            }
            var ids = Set(s.groups.keys)
            ids.formUnion(s.offsets.filter { !$0.value.isEmpty }.keys)
            return ids.sorted().map { id in
                let g = s.groups[id]
                return GroupListing(groupId: id, protocolType: g?.protocolType ?? "", state: (g?.phase ?? .empty).rawValue)
            }
        }
    }

    func describe(groupId: String) -> (KafkaErrorCode, ClassicGroup?) {
        if let e = checkCoordinator(groupId) { return (e, nil) }
        return withGroup(groupId, create: false) { _, g in ((.none, g), []) }
    }

    func deleteGroup(_ groupId: String) -> KafkaErrorCode {
        if let e = checkCoordinator(groupId) { return e }
        return withGroup(groupId, create: false) { s, g in
            let offsets = s.offsets[groupId] ?? [:]
            guard g != nil || !offsets.isEmpty else { return (.groupIdNotFound, []) }
            if let group = g, group.phase != .empty && group.phase != .dead { return (.nonEmptyGroup, []) }
            var records: [(key: ByteBuffer, value: ByteBuffer?)] = offsets.keys.map { (Self.offsetKey(group: groupId, tp: $0), nil) }
            records.append((Self.groupKey(groupId), nil))
            if let e = appendLocked(groupId: groupId, records: records) { return (e, []) }
            s.offsets[groupId] = nil
            g = nil
            return (.none, [])
        }
    }

    /// OffsetDelete: removes offsets of partitions whose topics the group does not subscribe to.
    func deleteOffsets(groupId: String, partitions: [TopicPartition]) -> (KafkaErrorCode, [KafkaErrorCode]) {
        if let e = checkCoordinator(groupId) { return (e, []) }
        return withGroup(groupId, create: false) { s, g in
            let offsets = s.offsets[groupId] ?? [:]
            guard g != nil || !offsets.isEmpty else { return ((.groupIdNotFound, []), []) }
            var subscribed = Set<String>()
            if let group = g, group.phase != .empty, group.phase != .dead {
                if group.protocolType != "consumer" { return ((.nonEmptyGroup, []), []) }
                for m in group.members { subscribed.formUnion(Self.subscribedTopics(m.metadata(for: group.protocolName))) }
            }
            var errors = [KafkaErrorCode]()
            var deleting = [TopicPartition]()
            for tp in partitions {
                if subscribed.contains(tp.topic) { errors.append(.groupSubscribedToTopic); continue }
                errors.append(.none)
                if offsets[tp] != nil { deleting.append(tp) }
            }
            if let e = appendLocked(groupId: groupId, records: deleting.map { (Self.offsetKey(group: groupId, tp: $0), nil) }) {
                return ((e, []), [])
            }
            for tp in deleting { s.offsets[groupId]?[tp] = nil }
            return ((.none, errors), [])
        }
    }

    /// The topics of a ConsumerProtocolSubscription (every version starts with version, topics).
    static func subscribedTopics(_ metadata: ByteBuffer) -> [String] {
        var b = metadata
        guard let _: Int16 = b.readInteger(), let count: Int32 = b.readInteger(), count >= 0 else { return [] }
        var topics = [String]()
        for _ in 0..<count {
            guard let len: Int16 = b.readInteger(), len >= 0, let t = b.readString(length: Int(len)) else { break }
            topics.append(t)
        }
        return topics
    }
}
