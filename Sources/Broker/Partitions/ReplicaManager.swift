import KafkaProtocol
import LogStorage
import Logging
import NIOCore
import Synchronization

/// The partitions this broker hosts. Follows the metadata image: a partition is opened when
/// the image assigns it here and removed (with its log) when its topic is deleted. Lookups take
/// a short lock on the map only; partition work happens under each partition's own lock.
final class ReplicaManager: Sendable {
    let nodeId: Int32
    let delayedFetches = DelayedFetches()
    private let partitions = Mutex<[TopicPartition: Partition]>([:])
    let logs: LogManager
    private let metrics: BrokerMetrics
    private let settingsFor: @Sendable ([String: String]) -> PartitionSettings
    private let logConfigFor: @Sendable ([String: String]) -> LogConfig
    private let logger: Logger
    private let runtimeBox = RuntimeBox()
    private let fetchers = Mutex<[Int32: ReplicaFetcher]>([:])
    private let replicationTask = Mutex<RepeatedTask?>(nil)
    /// ISR changes waiting to go to the controller in one AlterPartition request.
    private let pendingIsrChanges = Mutex<(changes: [TopicPartition: (Partition, [Int32])], scheduled: Bool)>(([:], false))

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

    /// When this broker last started leading a partition (monotonic ms).
    let lastLeadershipGainMs = Atomic<Int64>(Int64.min / 2)

    /// The partitions this broker leads that have `replica` among their replicas.
    func ledPartitions(withReplica replica: Int32) -> [TopicPartition] {
        all.filter { $0.isLeader && $0.replicaIds.contains(replica) }.map(\.topicPartition)
    }

    /// Brings the hosted partitions in line with a new metadata image.
    func apply(_ image: MetadataImage) {
        applyPartitions(image)
        updateFetchers(image)
    }

    private func applyPartitions(_ image: MetadataImage) {
        // In a cluster this process leads nothing until the controller has registered this
        // incarnation (which takes the leaderships of the broker's previous life away): a broker
        // restarted with an empty disk must never answer followers as their leader.
        var mayLead = true
        if let cluster = runtimeBox.get()?.cluster {
            let me = image.brokers[nodeId]
            mayLead = me?.incarnationId == cluster.incarnationId && me?.fenced == false
        }
        var wanted = [TopicPartition: (TopicImage, PartitionImage)]()
        for topic in image.topics.values {
            for var p in topic.partitions where p.replicas.contains(nodeId) {
                if !mayLead && p.leader == nodeId { p.leader = -1 }
                wanted[TopicPartition(topic: topic.name, partition: p.partition)] = (topic, p)
            }
        }
        let existing = partitions.withLock { $0 }
        let ledBefore = Set(existing.filter { $0.value.isLeader }.map(\.key))
        defer {
            let ledNow = partitions.withLock { $0.filter { $0.value.isLeader }.map(\.key) }
            if ledNow.contains(where: { !ledBefore.contains($0) }) {
                lastLeadershipGainMs.store(MetadataManager.monotonicMs(), ordering: .releasing)
                delayedFetches.completeFollowerFetches()
            }
        }
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
    /// After a metadata snapshot from the leader replaced the image: logs on this disk of
    /// partitions the cluster no longer places here (their topic was deleted, or the replica
    /// moved, while this node was away and the records saying so were compacted into the
    /// snapshot) are deleted, as Kafka deletes stray replicas.
    func deleteStrayLogs(_ image: MetadataImage) {
        let hosted = partitions.withLock { Set($0.keys) }
        for tp in logs.topicPartitions where tp != LocalMetadataLog.topicPartition && !hosted.contains(tp) {
            let placed = image.topics[tp.topic]?.partitions.first { $0.partition == tp.partition }?.replicas.contains(nodeId) ?? false
            guard !placed else { continue }
            do {
                try logs.deleteLog(tp)
                metrics.removeLogSize(topic: tp.topic, partition: tp.partition)
                logger.notice("deleted stray log \(tp): the metadata snapshot from the controller no longer places it on this broker",
                              metadata: ["topic": "\(tp.topic)", "partition": "\(tp.partition)"])
            } catch {
                logger.error("could not delete stray log \(tp): \(error); remove its directory by hand",
                             metadata: ["topic": "\(tp.topic)", "partition": "\(tp.partition)"])
            }
        }
    }

    /// Called once the runtime exists: in a cluster, starts the leader's ISR checks.
    func attach(runtime: BrokerRuntime) {
        runtimeBox.set(runtime)
        guard runtime.cluster != nil else { return }
        let task = runtime.replicationLoop.scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: .milliseconds(500)) { [self] _ in
                replicationTick()
            }
        replicationTask.withLock { $0 = task }
        updateFetchers(runtime.metadata.current())
    }

    func stopFetchers() {
        replicationTask.withLock { $0?.cancel() }
        let all = fetchers.withLock { f -> [ReplicaFetcher] in
            let values = Array(f.values)
            f = [:]
            return values
        }
        for f in all { f.stop() }
    }

    /// Leaders: shrink ISRs of lagging followers.
    private func replicationTick() {
        for partition in all where partition.isLeader {
            if let newIsr = partition.isrToShrink(nodeId: nodeId) {
                logger.warning("\(partition.topicPartition): follower(s) \(Set(partition.isr).subtracting(newIsr).sorted()) not caught up for replica.lag.time.max.ms; asking the controller to shrink the ISR to \(newIsr)",
                               metadata: ["topic": "\(partition.topicPartition.topic)", "partition": "\(partition.topicPartition.partition)"])
                requestIsrChange(partition, newIsr: newIsr)
            }
        }
    }

    /// Queues an ISR change for `partition`; changes made within a few milliseconds go to the
    /// controller together, in one AlterPartition request (as Kafka's leaders batch them).
    func requestIsrChange(_ partition: Partition, newIsr: [Int32]) {
        guard let runtime = runtimeBox.get(), runtime.cluster != nil else { return }
        let schedule = pendingIsrChanges.withLock { p -> Bool in
            p.changes[partition.topicPartition] = (partition, newIsr)
            defer { p.scheduled = true }
            return !p.scheduled
        }
        if schedule {
            runtime.replicationLoop.scheduleTask(in: .milliseconds(10)) { [self] in sendIsrChanges() }
        }
    }

    private func sendIsrChanges() {
        let batch = pendingIsrChanges.withLock { p -> [(Partition, [Int32])] in
            defer { p = ([:], false) }
            return Array(p.changes.values)
        }
        guard !batch.isEmpty, let cluster = runtimeBox.get()?.cluster else { return }
        let changes = batch.map { (partition, newIsr) -> ClusterNode.IsrChange in
            let (partitionEpoch, leaderEpoch) = partition.partitionEpochAndLeaderEpoch
            return .init(topic: partition.topicPartition.topic, topicId: partition.topicId, partition: partition.topicPartition.partition,
                         leaderEpoch: leaderEpoch, partitionEpoch: partitionEpoch, newIsr: newIsr)
        }
        cluster.alterPartitions(changes).whenComplete { [logger] result in
            switch result {
            case .success(let codes):
                let failed = zip(batch, codes).filter { $0.1 != .none }
                for ((partition, _), _) in failed { partition.alterPartitionFailed() }
                if let ((first, isr), code) = failed.first {
                    logger.info("AlterPartition: \(failed.count) of \(batch.count) ISR change(s) refused (first: \(first.topicPartition) to \(isr): \(code.name)); will retry")
                }
            case .failure(let error):
                for (partition, _) in batch { partition.alterPartitionFailed() }
                logger.info("AlterPartition for \(batch.count) partition(s) failed: \(error); will retry")
            }
        }
    }

    /// One fetcher per leader broker, fetching every partition this broker follows from it.
    private func updateFetchers(_ image: MetadataImage) {
        guard let runtime = runtimeBox.get(), let cluster = runtime.cluster else { return }
        var byLeader = [Int32: Set<TopicPartition>]()
        for partition in all where !partition.isLeader {
            let leader = partition.leader.id
            guard leader >= 0, leader != nodeId else { continue }
            byLeader[leader, default: []].insert(partition.topicPartition)
        }
        let config = runtime.config
        let listener = config.interBrokerListenerName
        fetchers.withLock { map in
            for (leader, fetcher) in map where byLeader[leader] == nil || image.brokers[leader].map({ b in let e = b.through(listener); return (e.host, Int(e.port)) != fetcher.address }) == true {
                fetcher.setPartitions([])
                fetcher.stop()
                map.removeValue(forKey: leader)
            }
            for (leader, partitions) in byLeader {
                guard let broker = image.brokers[leader]?.through(listener) else { continue }
                let fetcher = map[leader] ?? {
                    let f = ReplicaFetcher(
                        leaderId: leader, nodeId: nodeId, replicas: self,
                        connection: cluster.peers.connection(to: leader, host: broker.host, port: Int(broker.port), purpose: "replica"),
                        eventLoop: runtime.replicationLoop, maxWaitMs: Int32(clamping: config.replicaFetchWaitMaxMs),
                        partitionMaxBytes: Int32(clamping: config.replicaFetchMaxBytes),
                        backoffMs: Int64(min(config.replicaFetchBackoffMs, 500)), logger: logger)
                    map[leader] = f
                    return f
                }()
                fetcher.setPartitions(partitions)
            }
        }
    }

    /// Periodic work: retention, time-based flush, log size gauges.
    func runMaintenance() {
        let result = logs.runMaintenance()
        if result.segmentsDeleted > 0 { logger.info("retention deleted \(result.segmentsDeleted) segment(s)") }
        for partition in all {
            metrics.setLogSize(topic: partition.topicPartition.topic, partition: partition.topicPartition.partition, bytes: Int(partition.log.size))
        }
    }
}
