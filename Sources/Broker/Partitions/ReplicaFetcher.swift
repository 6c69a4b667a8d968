import KafkaProtocol
import LogStorage
import Logging
import NIOCore
import Synchronization

/// Copies the partitions this broker follows from one leader broker, as Kafka's replica
/// fetcher thread does: a loop of replica Fetch requests (`ReplicaId` = this broker) carrying
/// each partition's log end offset and last fetched epoch. The leader long-polls; answers are
/// appended as received (batches keep the leader's offsets and epochs), the high watermark
/// follows the leader's, and a diverging epoch truncates the local tail first (KIP-320).
final class ReplicaFetcher: Sendable {
    let leaderId: Int32
    private let nodeId: Int32
    private let replicas: ReplicaManager
    private let connection: PeerConnection
    private let eventLoop: EventLoop
    private let maxWaitMs: Int32
    private let partitionMaxBytes: Int32
    private let backoff: TimeAmount
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var partitions: Set<TopicPartition> = []
        var running = false
        var stopped = false
        var lastErrorLogged: Int64 = 0
    }

    init(leaderId: Int32, nodeId: Int32, replicas: ReplicaManager, connection: PeerConnection, eventLoop: EventLoop,
         maxWaitMs: Int32, partitionMaxBytes: Int32, backoffMs: Int64, logger: Logger) {
        self.leaderId = leaderId
        self.nodeId = nodeId
        self.replicas = replicas
        self.connection = connection
        self.eventLoop = eventLoop
        self.maxWaitMs = maxWaitMs
        self.partitionMaxBytes = partitionMaxBytes
        self.backoff = .milliseconds(backoffMs)
        self.logger = logger
    }

    var address: (String, Int) { (connection.host, connection.port) }

    func setPartitions(_ partitions: Set<TopicPartition>) {
        let start = state.withLock { s -> Bool in
            s.partitions = partitions
            guard !s.running, !s.stopped, !partitions.isEmpty else { return false }
            s.running = true
            return true
        }
        if start { eventLoop.execute { [self] in fetchOnce() } }
    }

    func stop() {
        state.withLock { $0.stopped = true }
    }

    private func fetchOnce() {
        let wanted = state.withLock { s -> [TopicPartition]? in
            guard !s.stopped, !s.partitions.isEmpty else {
                s.running = false
                return nil
            }
            return s.partitions.sorted(by: <)
        }
        guard let wanted else { return }
        var request = FetchRequest()
        request.replicaId = nodeId
        request.maxWaitMs = maxWaitMs
        request.minBytes = 1
        request.maxBytes = 64 * 1024 * 1024
        var byTopic = [String: [FetchRequest.FetchPartition]]()
        var sent = [TopicPartition: (offset: Int64, partition: Partition)]()
        for tp in wanted {
            guard let partition = replicas.partition(tp), !partition.isLeader else { continue }
            let (leader, epoch) = partition.leader
            guard leader == leaderId else { continue }
            var p = FetchRequest.FetchPartition()
            p.partition = tp.partition
            p.currentLeaderEpoch = epoch
            p.fetchOffset = partition.log.logEndOffset
            p.lastFetchedEpoch = partition.log.latestEpoch ?? -1
            p.logStartOffset = partition.log.logStartOffset
            p.partitionMaxBytes = partitionMaxBytes
            byTopic[tp.topic, default: []].append(p)
            sent[tp] = (p.fetchOffset, partition)
        }
        guard !sent.isEmpty else {
            eventLoop.scheduleTask(in: backoff) { [self] in fetchOnce() }
            return
        }
        request.topics = byTopic.keys.sorted().map { FetchRequest.FetchTopic(topic: $0, partitions: byTopic[$0]!) }
        let sentPositions = sent
        connection.send(request, version: 12, timeout: .milliseconds(Int64(maxWaitMs) + 10_000))
            .hop(to: eventLoop)
            .whenComplete { [self] result in
                switch result {
                case .success(.fetch(let response)):
                    let progressed = process(response, sent: sentPositions)
                    if response.errorCode == 0 && !progressed.ok && progressed.metadataLag {
                        // Leader and follower apply a metadata change a few milliseconds apart
                        // (a new topic, a new leader epoch): ask again soon, not after the
                        // whole replica.fetch.backoff.ms, which the first acks=all writes of a
                        // new topic would wait for.
                        eventLoop.scheduleTask(in: min(backoff, .milliseconds(20))) { [self] in fetchOnce() }
                    } else if response.errorCode != 0 || !progressed.ok {
                        eventLoop.scheduleTask(in: backoff) { [self] in fetchOnce() }
                    } else {
                        fetchOnce()
                    }
                case .success:
                    logOnce("leader \(leaderId) answered a replica Fetch with another response type")
                    eventLoop.scheduleTask(in: backoff) { [self] in fetchOnce() }
                case .failure(let error):
                    logOnce("replica fetch from leader \(leaderId) at \(connection.host):\(connection.port) failed: \(error); retrying")
                    eventLoop.scheduleTask(in: backoff) { [self] in fetchOnce() }
                }
            }
    }

    private func logOnce(_ message: String) {
        let now = MetadataManager.monotonicMs()
        let log = state.withLock { s -> Bool in
            guard now - s.lastErrorLogged > 10_000 else { return false }
            s.lastErrorLogged = now
            return true
        }
        if log { logger.warning("\(message)") } else { logger.debug("\(message)") }
    }

    /// Applies one Fetch answer. `ok` is false when every partition failed (back off);
    /// `metadataLag` when the failures only say that leader and follower disagree on the
    /// metadata for now (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, leader epochs).
    private func process(_ response: FetchResponse, sent: [TopicPartition: (offset: Int64, partition: Partition)]) -> (ok: Bool, bytes: Int, metadataLag: Bool) {
        var anyOk = false
        var bytes = 0
        var metadataLag = true
        for topic in response.responses {
            for data in topic.partitions {
                let tp = TopicPartition(topic: topic.topic, partition: data.partitionIndex)
                guard let (offset, partition) = sent[tp], replicas.partition(tp) === partition, !partition.isLeader else { continue }
                let log = partition.log
                guard log.logEndOffset == offset else { continue }  // truncated meanwhile: refetch
                let code = KafkaErrorCode(rawValue: data.errorCode) ?? .unknownServerError
                do {
                    if data.divergingEpoch.epoch >= 0 || data.divergingEpoch.endOffset >= 0 {
                        let mine = log.endOffset(forEpoch: data.divergingEpoch.epoch)
                        let target = min(data.divergingEpoch.endOffset, mine.endOffset)
                        if try log.truncate(to: max(target, log.logStartOffset)) {
                            logger.info("truncated \(tp) to offset \(target): its tail diverged from leader \(leaderId)'s log (epoch \(data.divergingEpoch.epoch))",
                                        metadata: ["topic": "\(tp.topic)", "partition": "\(tp.partition)"])
                        }
                        anyOk = true
                        continue
                    }
                    switch code {
                    case .none:
                        if let records = data.records, records.readableBytes > 0 {
                            _ = try log.appendAsFollower(records)
                            bytes += records.readableBytes
                        }
                        _ = log.updateHighWatermark(min(data.highWatermark, log.logEndOffset))
                        anyOk = true
                    case .offsetOutOfRange:
                        if offset < data.logStartOffset || data.logStartOffset > log.logEndOffset {
                            try log.truncateFullyAndStartAt(max(data.logStartOffset, 0))
                            logger.info("\(tp) restarts at leader \(leaderId)'s log start offset \(data.logStartOffset)")
                        } else if data.highWatermark >= 0 && data.highWatermark < log.logEndOffset {
                            _ = try log.truncate(to: max(data.highWatermark, log.logStartOffset))
                        }
                        anyOk = true
                    default:
                        if ![.notLeaderOrFollower, .unknownTopicOrPartition, .unknownLeaderEpoch, .fencedLeaderEpoch].contains(code) {
                            metadataLag = false
                        }
                        logger.debug("replica fetch of \(tp) from \(leaderId): \(code.name)")
                    }
                } catch {
                    metadataLag = false
                    logger.error("replica fetch of \(tp) from leader \(leaderId): cannot write the local log: \(error)",
                                 metadata: ["topic": "\(tp.topic)", "partition": "\(tp.partition)"])
                }
            }
        }
        return (anyOk, bytes, metadataLag)
    }
}
