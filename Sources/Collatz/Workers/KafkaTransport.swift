import KafkaClient
import KafkaProtocol
import Logging
import NIOCore

/// `RecordPublisher` over the Swift Kafka client: fire-and-forget `produce` (batched, murmur2
/// partitioner: the same partition for a key as Java clients and kafka-python), `flush` for
/// acknowledgements, Admin for the topic.
public final class KafkaRecordPublisher: RecordPublisher {
    public let client: KafkaClient
    public let producer: KafkaProducer
    let admin: KafkaAdmin
    let ownsClient: Bool

    public init(client: KafkaClient, configuration: ProducerConfiguration = ProducerConfiguration(),
                ownsClient: Bool = true, logger: Logger? = nil) throws {
        self.client = client
        self.producer = try KafkaProducer(client: client, configuration: configuration, logger: logger)
        self.admin = KafkaAdmin(client: client)
        self.ownsClient = ownsClient
    }

    public func createTopicIfMissing(_ topic: String, partitions: Int32, replicationFactor: Int16) async throws {
        try await admin.createTopics([NewTopic(name: topic, partitions: partitions, replicationFactor: replicationFactor)],
                                     ignoreExisting: true)
    }

    public func publish(_ record: OutgoingRecord) async throws {
        try await producer.produce(ProducerRecord(
            topic: record.topic, key: record.key, value: record.value,
            headers: record.headers.map { RecordHeader(key: $0.key, value: $0.value) }))
    }

    public func flush() async throws { try await producer.flush() }

    public func close() async {
        await producer.close()
        if ownsClient { await client.shutdown() }
    }
}

/// `RecordBatchSource` over the Swift Kafka client's group consumer, with auto-commit off.
public final class KafkaRecordSource: RecordBatchSource {
    public let client: KafkaClient
    public let consumer: KafkaConsumer
    let topics: [String]
    let ownsClient: Bool

    /// `configuration.enableAutoCommit` is forced off: the sink commits after ClickHouse acked.
    public init(client: KafkaClient, topics: [String], configuration: ConsumerConfiguration, ownsClient: Bool = true,
                logger: Logger? = nil) {
        var configuration = configuration
        configuration.enableAutoCommit = false
        self.client = client
        self.consumer = KafkaConsumer(client: client, configuration: configuration, logger: logger)
        self.topics = topics
        self.ownsClient = ownsClient
    }

    public func run(deliver: @escaping @Sendable (IncomingRecord) async throws -> Void) async throws {
        try await consumer.subscribe(topics)
        for try await r in consumer.records {
            try await deliver(IncomingRecord(topic: r.topic, partition: r.partition, offset: r.offset,
                                             timestamp: r.timestamp, key: r.key, value: r.value))
        }
    }

    public func pause() async { await consumer.pause(await consumer.assignment()) }
    public func resume() async { await consumer.resume(await consumer.assignment()) }

    public func assignment() async -> Set<PartitionKey> {
        Set(await consumer.assignment().map { PartitionKey(topic: $0.topic, partition: $0.partition) })
    }

    public func commit(_ offsets: [PartitionKey: Int64]) async throws {
        var map = [TopicPartition: Int64]()
        for (k, v) in offsets { map[TopicPartition(topic: k.topic, partition: k.partition)] = v }
        try await consumer.commit(map)
    }

    public func close() async {
        await consumer.close()
        if ownsClient { await client.shutdown() }
    }
}
