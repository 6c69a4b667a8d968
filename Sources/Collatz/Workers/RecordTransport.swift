import NIOCore

/// The two sides of Kafka the workers need, as small protocols: the workers' logic is tested
/// against in-memory fakes, and `KafkaTransport.swift` adapts the Swift Kafka client to them.

/// One record to publish.
public struct OutgoingRecord: Sendable {
    public var topic: String
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [(key: String, value: ByteBuffer)]

    public init(topic: String, key: ByteBuffer?, value: ByteBuffer?, headers: [(key: String, value: ByteBuffer)] = []) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Where the producer worker (and the sink's dead letters) publish.
public protocol RecordPublisher: Sendable {
    /// Creates `topic` unless it exists (an existing topic is left as it is).
    func createTopicIfMissing(_ topic: String, partitions: Int32, replicationFactor: Int16) async throws
    /// Accepts a record for sending; may return before the broker acknowledged it (failures
    /// then surface from `flush`). Suspends while the send buffer is full.
    func publish(_ record: OutgoingRecord) async throws
    /// Returns once every accepted record is acknowledged; throws the first failure.
    func flush() async throws
    /// Flushes what it can and releases the connections.
    func close() async
}

/// A partition of a topic.
public struct PartitionKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    public var description: String { "\(topic)-\(partition)" }
}

/// One consumed record.
public struct IncomingRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since 1970 (CreateTime or LogAppendTime).
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
    }

    public var partitionKey: PartitionKey { PartitionKey(topic: topic, partition: partition) }
}

/// Where the sink reads: a consumer group member with manual commits.
public protocol RecordBatchSource: Sendable {
    /// Joins, fetches and calls `deliver` for every record, in order per partition, until
    /// `close()` or cancellation. `deliver` may suspend (backpressure).
    func run(deliver: @escaping @Sendable (IncomingRecord) async throws -> Void) async throws
    /// Stops fetching from every assigned partition (the group membership stays alive).
    func pause() async
    func resume() async
    /// The partitions this member owns now.
    func assignment() async -> Set<PartitionKey>
    /// Commits "everything before these offsets is done".
    func commit(_ offsets: [PartitionKey: Int64]) async throws
    /// Leaves the group (no commit of its own) and ends `run`.
    func close() async
}
