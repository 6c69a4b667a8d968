import KafkaProtocol
import NIOCore

/// `auto.offset.reset`: where to start without a committed offset (or after OFFSET_OUT_OF_RANGE).
public enum AutoOffsetReset: String, Sendable, Hashable {
    case earliest, latest
    /// Throw instead.
    case none
}

/// Consumer settings (Kafka's names in the comments).
public struct ConsumerConfiguration: Sendable {
    /// `group.id`; nil: no group (manual assignment only, no commits).
    public var groupId: String?
    /// `group.instance.id` (static membership).
    public var groupInstanceId: String?
    /// `auto.offset.reset`.
    public var autoOffsetReset: AutoOffsetReset = .latest
    /// `enable.auto.commit` and `auto.commit.interval.ms`.
    public var enableAutoCommit: Bool = true
    public var autoCommitIntervalMs: Int = 5_000
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `max.poll.interval.ms` (the rebalance timeout).
    public var sessionTimeoutMs: Int = 45_000
    public var heartbeatIntervalMs: Int = 3_000
    public var rebalanceTimeoutMs: Int = 300_000
    /// `partition.assignment.strategy`, in order of preference.
    public var assignors: [AssignorKind] = [.range, .cooperativeSticky]
    /// `fetch.min.bytes`, `fetch.max.bytes`, `max.partition.fetch.bytes`, `fetch.max.wait.ms`.
    public var fetchMinBytes: Int32 = 1
    public var fetchMaxBytes: Int32 = 52_428_800
    public var maxPartitionFetchBytes: Int32 = 1_048_576
    public var fetchMaxWaitMs: Int32 = 500
    /// `isolation.level`: read_committed (1) hides aborted transactional records' offsets beyond the LSO.
    public var readCommitted: Bool = false
    /// `check.crcs`.
    public var checkCRCs: Bool = false
    /// Called with the partitions about to be taken away (before they are lost, so that a worker
    /// can commit), and with newly assigned ones. Auto-commit (when on) commits before
    /// `onPartitionsRevoked` runs.
    public var onPartitionsRevoked: (@Sendable ([TopicPartition]) async -> Void)?
    public var onPartitionsAssigned: (@Sendable ([TopicPartition]) async -> Void)?
    /// Called when partitions were lost without a chance to commit (session expired, fenced).
    public var onPartitionsLost: (@Sendable ([TopicPartition]) async -> Void)?

    public init(groupId: String? = nil) {
        self.groupId = groupId
    }
}

/// One consumed record.
public struct ConsumerRecord: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch (create or log-append time, per the topic).
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}
