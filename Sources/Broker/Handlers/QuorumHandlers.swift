import KafkaProtocol
import LogStorage
import Logging
import MetadataQuorum
import NIOCore

extension RequestRouter {
    /// Vote, BeginQuorumEpoch, EndQuorumEpoch and Fetch on `__cluster_metadata-0`: handed to this
    /// node's quorum member; its answer is the response.
    func handleQuorumRequest(_ request: KafkaRequest, _ context: RequestContext) -> HandlerResult {
        let apiKey = context.apiKey, version = context.apiVersion
        guard let cluster = broker.cluster else {
            context.logger.warning("\(apiKey.name) for the metadata quorum, but this node runs as a single-node cluster (no controller.quorum.voters)")
            return .response(.errorResponse(apiKey: apiKey, version: version, errorCode: KafkaErrorCode.clusterAuthorizationFailed.rawValue))
        }
        guard let (from, message) = RaftWire.message(of: request) else {
            return .response(.errorResponse(apiKey: apiKey, version: version, errorCode: KafkaErrorCode.invalidRequest.rawValue))
        }
        let future = cluster.driver.receive(from: from, message).flatMapThrowing { reply -> KafkaResponse in
            if case .endQuorumEpoch = message {
                var response = EndQuorumEpochResponse()
                response.topics = [.init(topicName: RaftWire.topic, partitions: [.init(partitionIndex: 0)])]
                return .endQuorumEpoch(response)
            }
            guard let reply, let response = try RaftWire.response(reply) else {
                return .errorResponse(apiKey: apiKey, version: version, errorCode: KafkaErrorCode.notLeaderOrFollower.rawValue)
            }
            return response
        }
        return .deferred(future.hop(to: context.eventLoop))
    }

    /// FetchSnapshot: a follower downloads the leader's metadata snapshot, chunk by chunk.
    func handleFetchSnapshot(_ request: FetchSnapshotRequest, _ context: RequestContext) -> HandlerResult {
        guard let cluster = broker.cluster else {
            context.logger.warning("FetchSnapshot, but this node runs as a single-node cluster (no controller.quorum.voters)")
            return .response(.fetchSnapshot(FetchSnapshotResponse(errorCode: KafkaErrorCode.clusterAuthorizationFailed.rawValue)))
        }
        if let id = request.clusterId, id != broker.clusterId {
            context.logger.warning("FetchSnapshot from node \(request.replicaId) of cluster \(id), but this is cluster \(broker.clusterId)")
            return .response(.fetchSnapshot(FetchSnapshotResponse(errorCode: KafkaErrorCode.inconsistentClusterId.rawValue)))
        }
        guard request.topics.count == 1, request.topics[0].name == RaftWire.topic,
              request.topics[0].partitions.count == 1, let p = request.topics[0].partitions.first, p.partition == 0 else {
            return .response(.fetchSnapshot(FetchSnapshotResponse(errorCode: KafkaErrorCode.invalidRequest.rawValue)))
        }
        let id = EpochEndOffset(epoch: p.snapshotId.epoch, endOffset: p.snapshotId.endOffset)
        let future = cluster.driver.serveSnapshot(id, position: p.position, maxBytes: Int(max(1, request.maxBytes)),
                                                  currentLeaderEpoch: p.currentLeaderEpoch).map { partition -> KafkaResponse in
            var response = FetchSnapshotResponse()
            response.topics = [.init(name: RaftWire.topic, partitions: [partition])]
            return .fetchSnapshot(response)
        }
        return .deferred(future.hop(to: context.eventLoop))
    }

    func handleBrokerRegistration(_ request: BrokerRegistrationRequest, _ context: RequestContext) -> HandlerResult {
        guard let cluster = broker.cluster, cluster.isActiveController else {
            return .response(.brokerRegistration(BrokerRegistrationResponse(errorCode: KafkaErrorCode.notController.rawValue)))
        }
        let endpoints = request.listeners.map { ListenerEndpoint(name: $0.name, host: $0.host, port: Int32($0.port)) }
        guard !endpoints.isEmpty else {
            return .response(.brokerRegistration(BrokerRegistrationResponse(errorCode: KafkaErrorCode.invalidRequest.rawValue)))
        }
        let metadata = broker.metadata, logger = broker.logger
        let future = cluster.controllerPool.runIfActive(eventLoop: context.eventLoop) {
            metadata.registerBroker(id: request.brokerId, incarnationId: request.incarnationId, endpoints: endpoints,
                                    rack: request.rack, logger: logger)
        }.map { result -> KafkaResponse in
            .brokerRegistration(BrokerRegistrationResponse(errorCode: result.error.rawValue, brokerEpoch: result.brokerEpoch))
        }
        return .deferred(future)
    }

    func handleBrokerHeartbeat(_ request: BrokerHeartbeatRequest, _ context: RequestContext) -> HandlerResult {
        guard let cluster = broker.cluster, cluster.isActiveController else {
            var r = BrokerHeartbeatResponse()
            r.errorCode = KafkaErrorCode.notController.rawValue
            return .response(.brokerHeartbeat(r))
        }
        let metadata = broker.metadata, logger = broker.logger
        let future = cluster.controllerPool.runIfActive(eventLoop: context.eventLoop) {
            metadata.brokerHeartbeat(id: request.brokerId, brokerEpoch: request.brokerEpoch, logger: logger)
        }.map { result -> KafkaResponse in
            var r = BrokerHeartbeatResponse()
            r.errorCode = result.error.rawValue
            r.isFenced = result.fenced
            r.isCaughtUp = true
            return .brokerHeartbeat(r)
        }
        return .deferred(future)
    }

    func handleAlterPartition(_ request: AlterPartitionRequest, _ context: RequestContext) -> HandlerResult {
        guard let cluster = broker.cluster, cluster.isActiveController else {
            var r = AlterPartitionResponse()
            r.errorCode = KafkaErrorCode.notController.rawValue
            return .response(.alterPartition(r))
        }
        let metadata = broker.metadata, logger = broker.logger, version = context.apiVersion
        let future = cluster.controllerPool.runIfActive(eventLoop: context.eventLoop) { () -> KafkaResponse in
            var items = [MetadataManager.AlterPartitionItem]()
            for topic in request.topics {
                for p in topic.partitions {
                    items.append(.init(topicId: topic.topicId, topicName: version < 2 ? topic.topicName : nil, partition: p.partitionIndex,
                                       leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch,
                                       newIsr: version >= 3 ? p.newIsrWithEpochs.map(\.brokerId) : p.newIsr))
                }
            }
            var outcomes = metadata.alterPartitions(items, leaderId: request.brokerId, logger: logger)[...]
            var response = AlterPartitionResponse()
            for topic in request.topics {
                var t = AlterPartitionResponse.TopicData(topicName: topic.topicName, topicId: topic.topicId)
                for p in topic.partitions {
                    let outcome = outcomes.removeFirst()
                    var r = AlterPartitionResponse.PartitionData(partitionIndex: p.partitionIndex, errorCode: outcome.error.rawValue)
                    if let state = outcome.partition {
                        r.leaderId = state.leader
                        r.leaderEpoch = state.leaderEpoch
                        r.isr = state.isr
                        r.partitionEpoch = state.partitionEpoch
                    }
                    t.partitions.append(r)
                }
                response.topics.append(t)
            }
            return .alterPartition(response)
        }
        return .deferred(future)
    }

    /// DescribeQuorum (kafka-metadata-quorum.sh, kafka-ui): the quorum's leader, epoch, high
    /// watermark and each voter's log end offset as the leader knows it.
    func handleDescribeQuorum(_ request: DescribeQuorumRequest, _ context: RequestContext) -> DescribeQuorumResponse {
        var response = DescribeQuorumResponse()
        var p = DescribeQuorumResponse.PartitionData(partitionIndex: 0)
        if let cluster = broker.cluster {
            let status = cluster.driver.status()
            guard status.role == .leader else {
                response.errorCode = KafkaErrorCode.notLeaderOrFollower.rawValue
                response.errorMessage = "node \(broker.nodeId) is not the metadata quorum leader" + (status.leaderId.map { "; ask node \($0)" } ?? "")
                return response
            }
            p.leaderId = status.leaderId ?? -1
            p.leaderEpoch = status.epoch
            p.highWatermark = status.highWatermark
            p.currentVoters = cluster.driver.voters.map { v in
                DescribeQuorumResponse.ReplicaState(replicaId: v.id, logEndOffset: status.voterEndOffsets[v.id] ?? -1)
            }
            if context.apiVersion >= 2 { response.nodes = cluster.driver.voters.map { v in
                .init(nodeId: v.id, listeners: [.init(name: broker.config.controllerListenerNames.first ?? "CONTROLLER", host: v.host, port: UInt16(clamping: v.port))])
            } }
        } else {
            p.leaderId = broker.nodeId
            p.leaderEpoch = 1
            p.highWatermark = max(broker.metadata.current().offset + 1, 0)
            p.currentVoters = [.init(replicaId: broker.nodeId, logEndOffset: p.highWatermark)]
        }
        response.topics = [.init(topicName: RaftWire.topic, partitions: [p])]
        return response
    }
}

extension RequestRouter {
    /// ElectLeaders (kafka-leader-election.sh): PREFERRED elections move leadership back to each
    /// partition's first replica when it is in sync; UNCLEAN is refused, as
    /// `unclean.leader.election.enable=false` promises.
    func handleElectLeaders(_ request: ElectLeadersRequest, _ context: RequestContext) -> ElectLeadersResponse {
        var response = ElectLeadersResponse()
        if request.electionType != 0 {
            response.errorCode = KafkaErrorCode.invalidRequest.rawValue
            context.logger.warning("ElectLeaders with election type \(request.electionType) (unclean) refused: Petrel never elects an out-of-sync replica")
            return response
        }
        let only: Set<TopicPartition>? = request.topicPartitions.map { list in
            Set(list.flatMap { t in t.partitions.map { TopicPartition(topic: t.topic, partition: $0) } })
        }
        let results = broker.metadata.electPreferredLeaders(only: only, logger: broker.logger)
        var byTopic = [String: [ElectLeadersResponse.PartitionResult]]()
        let wanted = only ?? Set(results.keys)
        for tp in wanted.sorted(by: <) {
            let code = results[tp] ?? .unknownTopicOrPartition
            byTopic[tp.topic, default: []].append(.init(partitionId: tp.partition, errorCode: code.rawValue,
                                                        errorMessage: code == .none ? nil : code.name))
        }
        response.replicaElectionResults = byTopic.keys.sorted().map { .init(topic: $0, partitionResult: byTopic[$0]!) }
        return response
    }
}

extension RequestRouter {
    /// AllocateProducerIds (from another broker): a block of 1000 ids written to the metadata log.
    func handleAllocateProducerIds(_ context: RequestContext) -> AllocateProducerIdsResponse {
        var response = AllocateProducerIdsResponse()
        guard let cluster = broker.cluster, cluster.isActiveController else {
            response.errorCode = KafkaErrorCode.notController.rawValue
            return response
        }
        do {
            response.producerIdStart = try broker.metadata.allocateProducerIds(count: 1000)
            response.producerIdLen = 1000
        } catch {
            response.errorCode = MetadataManager.failure(error).0.rawValue
        }
        return response
    }
}
