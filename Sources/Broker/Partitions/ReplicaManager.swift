import KafkaProtocol
import LogStorage
import Logging
import Synchronization

/// The partitions this broker hosts. Follows the metadata image: a partition is opened when
/// the image assigns it here and removed (with its log) when its topic is deleted. Lookups take
/// a short lock on the map only; partition work happens under each partition's own lock.
final class ReplicaManager: Sendable {
    let nodeId: Int32
    let delayedFetches = DelayedFetches()
    private let partitions = Mutex<[TopicPartition: Partition]>([:])
    private let logs: LogManager
    private let metrics: BrokerMetrics
    private let settingsFor: @Sendable ([String: String]) -> PartitionSettings
    private let logConfigFor: @Sendable ([String: String]) -> LogConfig
    private let logger: Logger

    init(nodeId: Int32, logs: LogManager, metrics: BrokerMetrics, logger: Logger,
         settingsFor: @escaping @Sendable ([String: String]) -> PartitionSettings,
         logConfigFor: @escaping @Sendable ([String: String]) -> LogConfig) {
        self.nodeId = nodeId
        self.logs = logs
        self.logConfigFor = logConfigFor
        self.metrics = metrics
        self.logger = logger
        self.settingsFor = settingsFor
    }

    func partition(_ tp: TopicPartition) -> Partition? {
        partitions.withLock { $0[tp] }
    }

    var all: [Partition] { partitions.withLock { Array($0.values) } }

    /// Brings the hosted partitions in line with a new metadata image.
    func apply(_ image: MetadataImage) {
        var wanted = [TopicPartition: (TopicImage, PartitionImage)]()
        for topic in image.topics.values {
            for p in topic.partitions where p.replicas.contains(nodeId) {
                wanted[TopicPartition(topic: topic.name, partition: p.partition)] = (topic, p)
            }
        }
        let existing = partitions.withLock { $0 }
        for (tp, partition) in existing {
            guard let (topic, p) = wanted[tp], topic.id == partition.topicId else {
                delayedFetches.wake(tp)
                partitions.withLock { _ = $0.removeValue(forKey: tp) }
                do {
                    try logs.deleteLog(tp)
                    metrics.removeLogSize(topic: tp.topic, partition: tp.partition)
                    logger.info("removed partition \(tp) and its log (topic deleted)")
                } catch {
                    logger.error("could not delete the log of \(tp): \(error); remove its directory by hand",
                                 metadata: ["topic": "\(tp.topic)", "partition": "\(tp.partition)"])
                }
                continue
            }
            partition.update(image: p, nodeId: nodeId, settings: settingsFor(topic.configs))
            let config = logConfigFor(topic.configs)
            if partition.log.config != config {
                do { try logs.updateConfig(config, for: tp) } catch {
                    logger.error("could not apply the new config of \(tp): \(error)", metadata: ["topic": "\(tp.topic)", "partition": "\(tp.partition)"])
                }
            }
        }
        for (tp, (topic, p)) in wanted.sorted(by: { $0.key < $1.key }) where existing[tp] == nil || existing[tp]?.topicId != topic.id {
            do {
                let log = try logs.getOrCreateLog(tp, config: logConfigFor(topic.configs))
                let partition = Partition(
                    topicPartition: tp, topicId: topic.id, log: log, image: p, nodeId: nodeId,
                    settings: settingsFor(topic.configs), metrics: metrics.topic(tp.topic))
                partitions.withLock { $0[tp] = partition }
            } catch {
                logger.error("could not open the log of \(tp): \(error); the partition stays offline on this broker",
                             metadata: ["topic": "\(tp.topic)", "partition": "\(tp.partition)"])
            }
        }
    }
}

extension ReplicaManager {
    /// Periodic work: retention, time-based flush, log size gauges.
    func runMaintenance() {
        let result = logs.runMaintenance()
        if result.segmentsDeleted > 0 { logger.info("retention deleted \(result.segmentsDeleted) segment(s)") }
        for partition in all {
            metrics.setLogSize(topic: partition.topicPartition.topic, partition: partition.topicPartition.partition, bytes: Int(partition.log.size))
        }
    }
}
