import KafkaProtocol
import LogStorage
import Logging
import NIOCore

/// The active controller's cluster duties, as KRaft's QuorumController has them: broker
/// registrations and heartbeats (fencing a broker whose session expires), leader election from
/// the ISR (never an out-of-sync replica: `unclean.leader.election.enable=false`), ISR changes
/// asked for by partition leaders (AlterPartition), and preferred-leader elections. Every
/// change is a metadata record committed through the quorum, so every node applies the same.
extension MetadataManager {
    static func monotonicMs() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000) }

    struct RegistrationResult: Sendable {
        var error: KafkaErrorCode = .none
        var brokerEpoch: Int64 = -1
    }

    /// BrokerRegistration: a broker (re)starting. A new incarnation of a known broker is treated
    /// as a restart: it leaves every ISR it was in (unless it is the last member) and loses
    /// leadership, so a replica that lost its disk can never lead with an empty log; it rejoins
    /// the ISR once it has caught up (AlterPartition from the leader).
    func registerBroker(id: Int32, incarnationId: KafkaUUID, endpoints: [ListenerEndpoint], rack: String?, logger: Logger) -> RegistrationResult {
        controllerLock.withLock { _ in
            let image = current()
            if let existing = image.brokers[id], existing.incarnationId == incarnationId {
                brokerContacts.withLock { $0[id] = Self.monotonicMs() }
                return RegistrationResult(brokerEpoch: existing.epoch)
            }
            var record = RegisterBrokerRecord()
            record.brokerId = id
            record.incarnationId = incarnationId
            record.brokerEpoch = max(image.offset, 0) + 1
            record.endPoints = endpoints.map { .init(name: $0.name, host: $0.host, port: UInt16(clamping: $0.port), securityProtocol: 0) }
            record.fenced = false
            record.rack = rack
            var records: [MetadataRecord] = []
            if image.brokers[id] != nil {
                records += leaveIsrAndLeadership(of: id, image: image, reason: "restarted (new incarnation)")
            }
            records.append(.registerBroker(record))
            var after = image
            for r in records { after.apply(r) }
            records += electLeaderless(image: after)
            do {
                try commit(records)
                brokerContacts.withLock { $0[id] = Self.monotonicMs() }
                logger.info("controller: registered broker \(id) at \(endpoints.map { "\($0.name)://\($0.host):\($0.port)" }.joined(separator: ",")) (epoch \(record.brokerEpoch))")
                return RegistrationResult(brokerEpoch: record.brokerEpoch)
            } catch {
                return RegistrationResult(error: Self.failure(error).0)
            }
        }
    }

    struct HeartbeatResult: Sendable {
        var error: KafkaErrorCode = .none
        var fenced = true
    }

    /// BrokerHeartbeat: keeps a broker's session; a fenced broker that heartbeats again is
    /// unfenced (and leaderless partitions whose ISR holds it get it as leader).
    func brokerHeartbeat(id: Int32, brokerEpoch: Int64, logger: Logger) -> HeartbeatResult {
        let image = current()
        guard let broker = image.brokers[id] else { return HeartbeatResult(error: .brokerIdNotRegistered) }
        if brokerEpoch >= 0 && brokerEpoch != broker.epoch { return HeartbeatResult(error: .staleBrokerEpoch) }
        brokerContacts.withLock { $0[id] = Self.monotonicMs() }
        guard broker.fenced else { return HeartbeatResult(fenced: false) }
        return controllerLock.withLock { _ in
            let image = current()
            guard let broker = image.brokers[id], broker.fenced else { return HeartbeatResult(fenced: false) }
            var records: [MetadataRecord] = [.unfenceBroker(UnfenceBrokerRecord(id: id, epoch: broker.epoch))]
            var after = image
            for r in records { after.apply(r) }
            records += electLeaderless(image: after)
            do {
                try commit(records)
                logger.info("controller: broker \(id) is back (heartbeat); unfenced")
                return HeartbeatResult(fenced: false)
            } catch {
                return HeartbeatResult(error: Self.failure(error).0)
            }
        }
    }

    /// Called when this node becomes the active controller: every registered broker gets a fresh
    /// session, as the new controller has no heartbeat history.
    func resetBrokerSessions() {
        let now = Self.monotonicMs()
        let ids = current().brokers.keys
        brokerContacts.withLock { map in
            map = [:]
            for id in ids { map[id] = now }
        }
    }

    /// Fences brokers whose session expired (no heartbeat for `broker.session.timeout.ms`):
    /// their partitions get new leaders from the ISR and they leave the ISRs.
    /// `quorumSilenceMs`: how long each voter has not fetched from the quorum leader; a voter
    /// (in combined mode, the same process as its broker) silent for `quorumSilenceLimitMs` is
    /// fenced too, which is how a kill -9 is noticed in about a second instead of a session.
    func fenceExpiredBrokers(quorumSilenceMs: [Int32: Int64] = [:], quorumSilenceLimitMs: Int64 = .max, logger: Logger) {
        let now = Self.monotonicMs()
        let image = current()
        let contacts = brokerContacts.withLock { $0 }
        let expired = image.brokers.values.filter { b in
            guard !b.fenced, b.id != settings.nodeId else { return false }
            return now - (contacts[b.id] ?? now) > settings.brokerSessionTimeoutMs
                || (quorumSilenceMs[b.id] ?? 0) > quorumSilenceLimitMs
        }.map(\.id).sorted()
        guard !expired.isEmpty else { return }
        controllerLock.withLock { _ in
            var image = current()
            var records = [MetadataRecord]()
            for id in expired where image.brokers[id]?.fenced == false {
                let fence: MetadataRecord = .fenceBroker(FenceBrokerRecord(id: id, epoch: image.brokers[id]?.epoch ?? 0))
                image.apply(fence)
                records.append(fence)
                let moves = leaveIsrAndLeadership(of: id, image: image, reason: "fenced")
                for r in moves { image.apply(r) }
                records += moves
            }
            do {
                try commit(records)
                logger.warning("controller: fenced broker(s) \(expired): no heartbeat for \(settings.brokerSessionTimeoutMs) ms (broker.session.timeout.ms) or no quorum fetch for \(quorumSilenceLimitMs) ms; their partitions moved to in-sync replicas")
            } catch {
                logger.debug("controller: could not fence \(expired): \(error)")
            }
        }
    }

    /// Partition changes taking `broker` out of every ISR (keeping the last member) and moving
    /// its leaderships to another in-sync, unfenced replica (or to none, -1, if there is none).
    func leaveIsrAndLeadership(of broker: Int32, image: MetadataImage, reason: String) -> [MetadataRecord] {
        var records = [MetadataRecord]()
        for topic in image.topics.values.sorted(by: { $0.name < $1.name }) {
            for p in topic.partitions where p.isr.contains(broker) || p.leader == broker {
                var change = PartitionChangeRecord()
                change.partitionId = p.partition
                change.topicId = topic.id
                let newIsr = p.isr.count > 1 ? p.isr.filter { $0 != broker } : p.isr
                if newIsr != p.isr { change.isr = newIsr }
                if p.leader == broker {
                    let candidate = p.replicas.first { $0 != broker && newIsr.contains($0) && image.brokers[$0]?.fenced == false }
                    change.leader = candidate ?? -1
                }
                if change.isr != nil || change.leader != -2 { records.append(.partitionChange(change)) }
            }
        }
        return records
    }

    /// Leaderless partitions (leader -1) whose ISR holds an unfenced broker get it as leader.
    func electLeaderless(image: MetadataImage) -> [MetadataRecord] {
        var records = [MetadataRecord]()
        for topic in image.topics.values.sorted(by: { $0.name < $1.name }) {
            for p in topic.partitions where p.leader == -1 {
                if let candidate = p.replicas.first(where: { p.isr.contains($0) && image.brokers[$0]?.fenced == false }) {
                    var change = PartitionChangeRecord()
                    change.partitionId = p.partition
                    change.topicId = topic.id
                    change.leader = candidate
                    records.append(.partitionChange(change))
                }
            }
        }
        return records
    }

    /// Preferred leaders: partitions whose first replica is in sync and alive but not leading
    /// get it back as leader (`auto.leader.rebalance.enable`, ElectLeaders with type PREFERRED).
    func electPreferredLeaders(only: Set<TopicPartition>? = nil, logger: Logger) -> [TopicPartition: KafkaErrorCode] {
        controllerLock.withLock { _ in
            let image = current()
            var records = [MetadataRecord]()
            var results = [TopicPartition: KafkaErrorCode]()
            for topic in image.topics.values.sorted(by: { $0.name < $1.name }) {
                for p in topic.partitions {
                    let tp = TopicPartition(topic: topic.name, partition: p.partition)
                    if let only, !only.contains(tp) { continue }
                    guard let preferred = p.replicas.first else { continue }
                    if p.leader == preferred { results[tp] = .electionNotNeeded; continue }
                    guard p.isr.contains(preferred), image.brokers[preferred]?.fenced == false else {
                        results[tp] = .preferredLeaderNotAvailable
                        continue
                    }
                    var change = PartitionChangeRecord()
                    change.partitionId = p.partition
                    change.topicId = topic.id
                    change.leader = preferred
                    records.append(.partitionChange(change))
                    results[tp] = KafkaErrorCode.none
                }
            }
            guard !records.isEmpty else { return results }
            do {
                try commit(records)
                logger.info("controller: moved \(records.count) partition leadership(s) back to their preferred replicas")
            } catch {
                let code = Self.failure(error).0
                for (tp, c) in results where c == KafkaErrorCode.none { results[tp] = code }
            }
            return results
        }
    }

    struct AlterPartitionOutcome: Sendable {
        var error: KafkaErrorCode
        var partition: PartitionImage?
    }

    struct AlterPartitionItem: Sendable {
        var topicId: KafkaUUID
        var topicName: String?
        var partition: Int32
        var leaderEpoch: Int32
        var partitionEpoch: Int32
        var newIsr: [Int32]
    }

    /// AlterPartition from a partition leader, for many partitions at once: each a new ISR at
    /// the leader's epoch and the partition epoch it knows; stale ones are refused (the partition
    /// epoch is the version check). The accepted changes are committed together.
    func alterPartitions(_ items: [AlterPartitionItem], leaderId: Int32, logger: Logger) -> [AlterPartitionOutcome] {
        controllerLock.withLock { _ in
            let image = current()
            var outcomes = [AlterPartitionOutcome]()
            var records = [MetadataRecord]()
            var accepted = [(index: Int, name: String, partition: Int32)]()
            for item in items {
                let (outcome, record, name) = checkAlterPartition(item, leaderId: leaderId, image: image, logger: logger)
                if let record, let name {
                    accepted.append((outcomes.count, name, item.partition))
                    records.append(record)
                }
                outcomes.append(outcome)
            }
            guard !records.isEmpty else { return outcomes }
            do {
                try commit(records)
                let after = current()
                for a in accepted {
                    outcomes[a.index].partition = after.topics[a.name]?.partitions.first { $0.partition == a.partition }
                }
                logger.info("controller: ISR changes for \(accepted.map { "\($0.name)-\($0.partition)" }.joined(separator: ", ")) (leader \(leaderId))")
            } catch {
                let code = Self.failure(error).0
                for a in accepted { outcomes[a.index].error = code }
            }
            return outcomes
        }
    }

    /// Checks one AlterPartition item; the record to write when it is accepted.
    private func checkAlterPartition(_ item: AlterPartitionItem, leaderId: Int32, image: MetadataImage, logger: Logger)
        -> (AlterPartitionOutcome, MetadataRecord?, String?) {
        let (topicId, topicName, partition, leaderEpoch, partitionEpoch, newIsr) =
            (item.topicId, item.topicName, item.partition, item.leaderEpoch, item.partitionEpoch, item.newIsr)
        do {
            let name = topicName.flatMap { image.topics[$0] != nil ? $0 : nil } ?? image.topicNames[topicId]
            guard let name, let topic = image.topics[name], let p = topic.partitions.first(where: { $0.partition == partition }) else {
                return (AlterPartitionOutcome(error: .unknownTopicOrPartition), nil, nil)
            }
            guard p.leader == leaderId else { return (AlterPartitionOutcome(error: .notLeaderOrFollower, partition: p), nil, nil) }
            guard leaderEpoch == p.leaderEpoch else { return (AlterPartitionOutcome(error: .fencedLeaderEpoch, partition: p), nil, nil) }
            guard partitionEpoch == p.partitionEpoch else { return (AlterPartitionOutcome(error: .invalidUpdateVersion, partition: p), nil, nil) }
            guard newIsr.contains(leaderId), Set(newIsr).isSubset(of: Set(p.replicas)) else {
                return (AlterPartitionOutcome(error: .invalidRequest, partition: p), nil, nil)
            }
            if let ineligible = newIsr.first(where: { !p.isr.contains($0) && image.brokers[$0]?.fenced != false }) {
                logger.info("controller: AlterPartition for \(name)-\(partition) adds fenced broker \(ineligible); refused")
                return (AlterPartitionOutcome(error: .ineligibleReplica, partition: p), nil, nil)
            }
            if newIsr.sorted() == p.isr.sorted() { return (AlterPartitionOutcome(error: .none, partition: p), nil, nil) }
            var change = PartitionChangeRecord()
            change.partitionId = partition
            change.topicId = topic.id
            change.isr = newIsr.sorted()
            return (AlterPartitionOutcome(error: .none, partition: p), .partitionChange(change), name)
        }
    }
}
