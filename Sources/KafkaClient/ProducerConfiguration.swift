import KafkaProtocol
import NIOCore

/// `acks`: how many replicas must have a record before the broker answers.
public enum Acks: Int16, Sendable, Hashable {
    /// acks=0: no answer at all; offsets are reported as -1.
    case none = 0
    /// acks=1: the leader has it.
    case leader = 1
    /// acks=all (-1): every in-sync replica has it.
    case all = -1
}

/// Producer settings (Kafka's names in the comments; defaults as librdkafka's where they differ
/// from Java's for throughput: `batch.size` 1 MB).
public struct ProducerConfiguration: Sendable {
    /// `acks`.
    public var acks: Acks = .all
    /// `enable.idempotence`: producer id + per-partition sequence numbers, so retries never
    /// duplicate or reorder. Needs acks=all; with other acks it is turned off.
    public var enableIdempotence: Bool = true
    /// `linger.ms`: how long a batch waits for more records before it is sent.
    public var lingerMs: Int = 5
    /// `batch.size`: the largest batch (uncompressed bytes) per partition.
    public var batchSize: Int = 1_000_000
    /// `buffer.memory`: records waiting to be sent or acknowledged; `send`/`produce` wait
    /// (back-pressure) while it is full.
    public var bufferMemory: Int = 64 * 1024 * 1024
    /// `compression.type`: none or gzip.
    public var compression: CompressionCodec = .none
    /// gzip level, -1 for zlib's default.
    public var compressionLevel: Int = -1
    /// `max.in.flight.requests.per.connection` (at most 5 with idempotence).
    public var maxInFlightRequestsPerConnection: Int = 5
    /// `delivery.timeout.ms`: a record fails if not acknowledged within this time of `send`.
    public var deliveryTimeoutMs: Int = 120_000
    /// `request.timeout.ms` for Produce requests (also the broker-side `timeoutMs`).
    public var requestTimeoutMs: Int = 30_000
    /// `max.request.size`.
    public var maxRequestSize: Int = 1_048_576 * 16
    /// `partitioner`.
    public var partitioner: Partitioner = .murmur2Random
    /// `transactional.id` is not supported (transactions are a later issue).
    public init() {}

    func validated() throws(KafkaClientError) -> ProducerConfiguration {
        var c = self
        guard c.batchSize > 0, c.bufferMemory >= c.batchSize, c.lingerMs >= 0, c.maxInFlightRequestsPerConnection >= 1 else {
            throw .invalidConfiguration("batch.size > 0, buffer.memory >= batch.size, linger.ms >= 0, max.in.flight >= 1")
        }
        guard c.compression.isSupported else { throw .invalidConfiguration("compression \(c.compression) is not supported") }
        if c.acks != .all { c.enableIdempotence = false }
        if c.enableIdempotence { c.maxInFlightRequestsPerConnection = min(5, c.maxInFlightRequestsPerConnection) }
        return c
    }
}

/// A record to send.
public struct ProducerRecord: Sendable {
    public var topic: String
    /// An explicit partition; nil: the partitioner decides.
    public var partition: Int32?
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
    /// Milliseconds since the epoch; nil: now.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32? = nil, key: ByteBuffer? = nil, value: ByteBuffer?, headers: [RecordHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    /// Text key and value (UTF-8).
    public init(topic: String, partition: Int32? = nil, key: String?, value: String?, headers: [RecordHeader] = [], timestamp: Int64? = nil) {
        self.init(topic: topic, partition: partition, key: key.map { ByteBuffer(string: $0) }, value: value.map { ByteBuffer(string: $0) }, headers: headers, timestamp: timestamp)
    }

    /// Bytes the record takes in a batch, roughly (for `batch.size` and `buffer.memory`).
    var estimatedSize: Int {
        var n = 21 + (key?.readableBytes ?? 0) + (value?.readableBytes ?? 0)
        for h in headers { n += 10 + h.key.utf8.count + (h.value?.readableBytes ?? 0) }
        return n
    }
}

/// Where an acknowledged record landed.
public struct RecordMetadata: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// -1 with acks=0 (and for a retried batch the broker recognised as a duplicate).
    public var offset: Int64
    public var timestamp: Int64
}
