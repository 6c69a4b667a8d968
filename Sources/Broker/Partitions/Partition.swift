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
        var isr: [Int32]
        var replicas: [Int32]
        var settings: PartitionSettings
    }

    private let state: Mutex<State>

    init(topicPartition: TopicPartition, topicId: KafkaUUID, log: PartitionLog, image: PartitionImage,
         nodeId: Int32, settings: PartitionSettings, metrics: BrokerMetrics.TopicMetrics) {
        self.topicPartition = topicPartition
        self.topicId = topicId
        self.log = log
        self.metrics = metrics
        self.state = Mutex(State(
            leaderEpoch: image.leaderEpoch, isLeader: image.leader == nodeId, isr: image.isr, replicas: image.replicas,
            settings: settings))
        if image.leader == nodeId { try? log.assignEpochStartOffset(epoch: image.leaderEpoch, startOffset: log.logEndOffset) }
        // A single-replica partition commits on append: everything in the log is committed.
        if image.isr.count <= 1 { _ = log.updateHighWatermark(log.logEndOffset) }
    }

    var highWatermark: Int64 { log.highWatermark }
    var leaderEpoch: Int32 { state.withLock { $0.leaderEpoch } }
    var isLeader: Bool { state.withLock { $0.isLeader } }

    func update(image: PartitionImage, nodeId: Int32, settings: PartitionSettings) {
        let becameLeaderAtEpoch: Int32? = state.withLock {
            let newEpoch = image.leader == nodeId && (!$0.isLeader || $0.leaderEpoch != image.leaderEpoch)
            $0.leaderEpoch = image.leaderEpoch
            $0.isLeader = image.leader == nodeId
            $0.isr = image.isr
            $0.replicas = image.replicas
            $0.settings = settings
            return newEpoch ? image.leaderEpoch : nil
        }
        if let epoch = becameLeaderAtEpoch { try? log.assignEpochStartOffset(epoch: epoch, startOffset: log.logEndOffset) }
    }

    struct AppendResult {
        var baseOffset: Int64
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
            if isrCount <= 1 { _ = log.updateHighWatermark(info.logEndOffset) }
            metrics.bytesIn.increment(by: Int64(info.validBytes))
            metrics.recordsIn.increment(by: Int64(info.recordCount))
        }
        return .success(AppendResult(baseOffset: info.firstOffset, logAppendTime: info.logAppendTime, logStartOffset: info.logStartOffset))
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
