import KafkaProtocol
import LogStorage
import Logging
import NIOCore
import Synchronization

/// Per-partition settings resolved from topic overrides and broker defaults.
struct PartitionSettings: Sendable {
    var minInsyncReplicas: Int
    var logAppendTime: Bool
    /// `message.timestamp.before.max.ms` / `after.max.ms` (CreateTime topics).
    var timestampBeforeMaxMs: Int64
    var timestampAfterMaxMs: Int64
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    var replicaLagTimeMaxMs: Int64 = 30_000
}

/// One partition this broker hosts: its log (which owns offsets, the high watermark checkpoint
/// and producer state) plus the replication state Kafka keeps beside it (leader epoch, ISR).
/// Each partition has its own lock; nothing is shared across partitions on the produce or fetch
/// path.
final class Partition: Sendable {
    let topicPartition: TopicPartition
    let topicId: KafkaUUID
    let log: PartitionLog
    let metrics: BrokerMetrics.TopicMetrics

    private struct State {
        var leaderEpoch: Int32
        var isLeader: Bool
        var leaderId: Int32
        var isr: [Int32]
        var replicas: [Int32]
        var partitionEpoch: Int32
        var settings: PartitionSettings
        /// Leader: what each follower's fetches said (log end offset, when it was last caught up).
        var followers: [Int32: FollowerState] = [:]
        /// Leader: the ISR asked for in an AlterPartition not answered yet.
        var pendingIsr: [Int32]?
        var pendingIsrSince: Int64 = 0
        /// When the last AlterPartition was refused or failed (retries wait a little).
        var lastAlterFailureMs: Int64 = -1_000_000
        /// Leader: where this leader epoch began (a follower must reach it to join the ISR).
        var leaderEpochStartOffset: Int64 = 0
        /// acks=all produces waiting for the high watermark.
        var waiters: [HighWatermarkWaiter] = []
    }

    struct FollowerState {
        var logEndOffset: Int64 = -1
        var lastCaughtUpMs: Int64
        var lastFetchMs: Int64
    }

    struct HighWatermarkWaiter {
        var offset: Int64
        var promise: EventLoopPromise<KafkaErrorCode>
    }

    private let state: Mutex<State>

    init(topicPartition: TopicPartition, topicId: KafkaUUID, log: PartitionLog, image: PartitionImage,
         nodeId: Int32, settings: PartitionSettings, metrics: BrokerMetrics.TopicMetrics) {
        self.topicPartition = topicPartition
        self.topicId = topicId
        self.log = log
        self.metrics = metrics
        let now = MetadataManager.monotonicMs()
        var s = State(
            leaderEpoch: image.leaderEpoch, isLeader: image.leader == nodeId, leaderId: image.leader, isr: image.isr,
            replicas: image.replicas, partitionEpoch: image.partitionEpoch, settings: settings)
        if image.leader == nodeId {
            try? log.assignEpochStartOffset(epoch: image.leaderEpoch, startOffset: log.logEndOffset)
            s.leaderEpochStartOffset = log.logEndOffset
            for r in image.replicas where r != nodeId { s.followers[r] = FollowerState(lastCaughtUpMs: now, lastFetchMs: now) }
        }
        self.state = Mutex(s)
        // A single-replica partition commits on append: everything in the log is committed.
        if image.isr.count <= 1 && image.leader == nodeId { _ = log.updateHighWatermark(log.logEndOffset) }
    }

    var highWatermark: Int64 { log.highWatermark }
    var leaderEpoch: Int32 { state.withLock { $0.leaderEpoch } }
    var isLeader: Bool { state.withLock { $0.isLeader } }
    /// The assigned replicas (from the metadata image).
    var replicaIds: [Int32] { state.withLock { $0.replicas } }
    /// The leader the metadata names (-1: none), and its epoch.
    var leader: (id: Int32, epoch: Int32) { state.withLock { ($0.leaderId, $0.leaderEpoch) } }
    var isr: [Int32] { state.withLock { $0.isr } }

    /// Follows the metadata image. Returns true when this broker just became a follower (the
    /// caller starts fetching from the new leader).
    @discardableResult
    func update(image: PartitionImage, nodeId: Int32, settings: PartitionSettings) -> Bool {
        let now = MetadataManager.monotonicMs()
        var orphans: [HighWatermarkWaiter] = []
        let (becameLeaderAtEpoch, becameFollower) = state.withLock { s -> (Int32?, Bool) in
            let leaderNow = image.leader == nodeId
            let newEpoch = leaderNow && (!s.isLeader || s.leaderEpoch != image.leaderEpoch)
            let lostLeadership = s.isLeader && !leaderNow
            s.leaderEpoch = image.leaderEpoch
            s.isLeader = leaderNow
            s.leaderId = image.leader
            s.isr = image.isr
            s.replicas = image.replicas
            s.settings = settings
            if image.partitionEpoch != s.partitionEpoch { s.pendingIsr = nil }
            s.partitionEpoch = image.partitionEpoch
            if newEpoch {
                s.followers = [:]
                for r in image.replicas where r != nodeId { s.followers[r] = FollowerState(lastCaughtUpMs: now, lastFetchMs: now) }
                s.pendingIsr = nil
            }
            if !leaderNow {
                orphans = s.waiters
                s.waiters = []
                s.followers = [:]
                s.pendingIsr = nil
            }
            return (newEpoch ? image.leaderEpoch : nil, lostLeadership || (!leaderNow && image.leader >= 0))
        }
        for w in orphans { w.promise.succeed(.notLeaderOrFollower) }
        if let epoch = becameLeaderAtEpoch {
            let end = log.logEndOffset
            try? log.assignEpochStartOffset(epoch: epoch, startOffset: end)
            state.withLock { $0.leaderEpochStartOffset = end }
        }
        if isLeader { maybeAdvanceHighWatermark() }
        return becameFollower
    }

    struct AppendResult {
        var baseOffset: Int64
        var lastOffset: Int64
        var logAppendTime: Int64
        var logStartOffset: Int64
    }

    struct AppendFailure: Error {
        var code: KafkaErrorCode
        var message: String
        var batchIndex: Int32?
    }

    /// Appends a Produce request's records as leader. The log checks every batch (CRC, size,
    /// idempotent sequence), assigns offsets and the leader epoch in the batch headers and writes
    /// the bytes as received; a retried idempotent batch is answered with its original offset.
    func appendAsLeader(_ records: ByteBuffer?, requiredAcks: Int16) -> Result<AppendResult, AppendFailure> {
        guard let records, records.readableBytes > 0 else {
            return .failure(AppendFailure(code: .corruptMessage, message: "the produce request holds no record batch"))
        }
        let (isLeader, epoch, isrCount, settings) = state.withLock { ($0.isLeader, $0.leaderEpoch, $0.isr.count, $0.settings) }
        guard isLeader else {
            return .failure(AppendFailure(code: .notLeaderOrFollower, message: "this broker does not lead \(topicPartition)"))
        }
        if requiredAcks == -1 && isrCount < settings.minInsyncReplicas {
            return .failure(AppendFailure(code: .notEnoughReplicas,
                message: "the ISR of \(topicPartition) has \(isrCount) replicas, fewer than min.insync.replicas=\(settings.minInsyncReplicas)"))
        }
        if !settings.logAppendTime, let failure = checkTimestamps(records, settings: settings) {
            return .failure(failure)
        }
        let info: LogAppendInfo
        do {
            info = try log.appendAsLeader(records, leaderEpoch: epoch, logAppendTime: settings.logAppendTime)
        } catch {
            let code = KafkaErrorCode(rawValue: error.kafkaErrorCode) ?? .unknownServerError
            return .failure(AppendFailure(code: code, message: error.description, batchIndex: code == .messageTooLarge || code == .corruptMessage ? 0 : nil))
        }
        if !info.isDuplicate {
            if isrCount <= 1 { _ = log.updateHighWatermark(info.logEndOffset) } else { maybeAdvanceHighWatermark() }
            metrics.bytesIn.increment(by: Int64(info.validBytes))
            metrics.recordsIn.increment(by: Int64(info.recordCount))
        }
        return .success(AppendResult(baseOffset: info.firstOffset, lastOffset: info.lastOffset, logAppendTime: info.logAppendTime, logStartOffset: info.logStartOffset))
    }

    /// INVALID_TIMESTAMP for batches whose timestamps are too far from the broker's clock, read
    /// from batch headers only (first and max timestamp).
    private func checkTimestamps(_ records: ByteBuffer, settings: PartitionSettings) -> AppendFailure? {
        guard settings.timestampBeforeMaxMs < Int64.max || settings.timestampAfterMaxMs < Int64.max else { return nil }
        let now = LogClock.nowMillis()
        var iterator = RecordBatchIterator(records, allowPartialTrailingBatch: false)
        var index: Int32 = 0
        while let batch = try? iterator.next() {
            let newest = batch.maxTimestamp
            let oldest = batch.baseTimestamp
            if newest >= 0 && newest > now &+ settings.timestampAfterMaxMs {
                return AppendFailure(code: .invalidTimestamp, message:
                    "timestamp \(newest) of batch \(index) is more than message.timestamp.after.max.ms=\(settings.timestampAfterMaxMs) ahead of the broker's clock (\(now))", batchIndex: index)
            }
            if oldest >= 0 && oldest < now &- settings.timestampBeforeMaxMs {
                return AppendFailure(code: .invalidTimestamp, message:
                    "timestamp \(oldest) of batch \(index) is more than message.timestamp.before.max.ms=\(settings.timestampBeforeMaxMs) behind the broker's clock (\(now))", batchIndex: index)
            }
            index += 1
        }
        return nil
    }

    struct ReadResult {
        var records: ByteBuffer
        var highWatermark: Int64
        var logStartOffset: Int64
    }

    /// Reads for a consumer (up to the high watermark) or a follower (up to the log end).
    func read(offset: Int64, maxBytes: Int, minOneBatch: Bool, isFollower: Bool) throws(LogStorageError) -> ReadResult {
        let hw = log.highWatermark
        let result = try log.read(from: offset, maxBytes: maxBytes, upTo: isFollower ? nil : hw, minOneBatch: minOneBatch)
        if result.records.readableBytes > 0 {
            metrics.bytesOut.increment(by: Int64(result.records.readableBytes))
            metrics.recordsOut.increment(by: Int64(result.recordCount))
        }
        return ReadResult(records: result.records, highWatermark: hw, logStartOffset: result.logStartOffset)
    }

    /// DeleteRecords: -1 means up to the high watermark.
    func deleteRecords(before offset: Int64) throws -> Int64 {
        let hw = log.highWatermark
        let target = offset == -1 ? hw : offset
        guard target >= 0 && target <= hw else { throw KafkaErrorCode.offsetOutOfRange }
        return try log.deleteRecords(before: target)
    }
}

// MARK: - Replication (leader side)

extension Partition {
    /// What the leader decided after a follower's fetch.
    struct FollowerFetchOutcome {
        var highWatermarkMoved = false
        /// An ISR to ask the controller for (the follower caught up).
        var expandIsr: [Int32]?
    }

    /// A replica Fetch from `replica` at `fetchOffset` (its log end): the leader records it,
    /// moves the high watermark when the whole ISR holds more, and adds a caught-up follower to
    /// the ISR (through the controller).
    func recordFollowerFetch(replica: Int32, fetchOffset: Int64) -> FollowerFetchOutcome {
        let now = MetadataManager.monotonicMs()
        let leo = log.logEndOffset
        let hw = log.highWatermark
        let expand = state.withLock { s -> [Int32]? in
            guard s.isLeader, s.replicas.contains(replica) else { return nil }
            var f = s.followers[replica] ?? FollowerState(lastCaughtUpMs: now, lastFetchMs: now)
            f.logEndOffset = fetchOffset
            f.lastFetchMs = now
            if fetchOffset >= leo { f.lastCaughtUpMs = now }
            s.followers[replica] = f
            guard !s.isr.contains(replica), s.pendingIsr == nil, now - s.lastAlterFailureMs >= 500,
                  fetchOffset >= hw, fetchOffset >= s.leaderEpochStartOffset else { return nil }
            let newIsr = (s.isr + [replica]).sorted()
            s.pendingIsr = newIsr
            s.pendingIsrSince = now
            return newIsr
        }
        let moved = maybeAdvanceHighWatermark()
        return FollowerFetchOutcome(highWatermarkMoved: moved, expandIsr: expand)
    }

    /// Leader: the high watermark is the smallest log end offset in the ISR (plus members being
    /// added). Never moves back. Completes acks=all waiters it passes. True when it moved.
    @discardableResult
    func maybeAdvanceHighWatermark() -> Bool {
        let leo = log.logEndOffset
        let (candidate, minIsr, isrCount) = state.withLock { s -> (Int64?, Int, Int) in
            guard s.isLeader else { return (nil, 0, 0) }
            let members = Set(s.isr + (s.pendingIsr ?? []))
            var low = leo
            for m in members where s.replicas.contains(m) {
                guard let f = s.followers[m] else { continue }  // this broker
                low = min(low, max(f.logEndOffset, 0))
            }
            return (low, s.settings.minInsyncReplicas, s.isr.count)
        }
        guard let candidate else { return false }
        let before = log.highWatermark
        var moved = false
        if candidate > before {
            _ = log.updateHighWatermark(candidate)
            moved = true
        }
        let hw = log.highWatermark
        let done = state.withLock { s -> [HighWatermarkWaiter] in
            let ready = s.waiters.filter { $0.offset <= hw }
            s.waiters.removeAll { $0.offset <= hw }
            return ready
        }
        let code: KafkaErrorCode = isrCount < minIsr ? .notEnoughReplicasAfterAppend : .none
        for w in done { w.promise.succeed(code) }
        return moved
    }

    /// acks=all: succeeds with NONE once the high watermark passes `offset` (the batch's last
    /// offset + 1), NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below
    /// min.insync.replicas meanwhile, NOT_LEADER_OR_FOLLOWER if leadership moved, and
    /// REQUEST_TIMED_OUT after `timeout`.
    func awaitHighWatermark(_ offset: Int64, eventLoop: EventLoop, timeout: TimeAmount) -> EventLoopFuture<KafkaErrorCode> {
        let promise = eventLoop.makePromise(of: KafkaErrorCode.self)
        let immediate: KafkaErrorCode? = state.withLock { s in
            guard s.isLeader else { return .notLeaderOrFollower }
            if log.highWatermark >= offset { return s.isr.count < s.settings.minInsyncReplicas ? .notEnoughReplicasAfterAppend : KafkaErrorCode.none }
            s.waiters.append(HighWatermarkWaiter(offset: offset, promise: promise))
            return nil
        }
        if let immediate {
            promise.succeed(immediate)
            return promise.futureResult
        }
        eventLoop.scheduleTask(in: timeout) { [self] in
            let expired = state.withLock { s -> Bool in
                let before = s.waiters.count
                s.waiters.removeAll { $0.promise.futureResult === promise.futureResult }
                return s.waiters.count < before
            }
            if expired { promise.succeed(.requestTimedOut) }
        }
        return promise.futureResult
    }

    /// Leader, periodically: followers not caught up for `replica.lag.time.max.ms` leave the
    /// ISR (returns the smaller ISR to ask the controller for); a stuck AlterPartition is retried.
    func isrToShrink(nodeId: Int32) -> [Int32]? {
        let now = MetadataManager.monotonicMs()
        return state.withLock { s -> [Int32]? in
            guard s.isLeader else { return nil }
            if s.pendingIsr != nil {
                if now - s.pendingIsrSince < 5_000 { return nil }
                s.pendingIsr = nil
            }
            if now - s.lastAlterFailureMs < 500 { return nil }
            let lagging = s.isr.filter { r in
                r != nodeId && now - (s.followers[r]?.lastCaughtUpMs ?? now) > s.settings.replicaLagTimeMaxMs
            }
            guard !lagging.isEmpty else { return nil }
            let newIsr = s.isr.filter { !lagging.contains($0) }
            s.pendingIsr = newIsr
            s.pendingIsrSince = now
            return newIsr
        }
    }

    /// The AlterPartition was answered with an error: forget it, so a later round may retry.
    func alterPartitionFailed() {
        let now = MetadataManager.monotonicMs()
        state.withLock {
            $0.pendingIsr = nil
            $0.lastAlterFailureMs = now
        }
    }

    var partitionEpochAndLeaderEpoch: (partitionEpoch: Int32, leaderEpoch: Int32) {
        state.withLock { ($0.partitionEpoch, $0.leaderEpoch) }
    }

    /// What a follower must truncate to: Kafka's KIP-320 check of the follower's last fetched
    /// epoch against this leader's epoch cache. nil when the follower's log is consistent.
    func divergence(lastFetchedEpoch: Int32, fetchOffset: Int64) -> (epoch: Int32, endOffset: Int64)? {
        guard lastFetchedEpoch >= 0 else { return nil }
        let (epoch, end) = log.endOffset(forEpoch: lastFetchedEpoch)
        if epoch != lastFetchedEpoch || end < fetchOffset { return (epoch, end) }
        return nil
    }
}
