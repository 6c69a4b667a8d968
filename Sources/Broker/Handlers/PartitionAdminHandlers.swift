import KafkaProtocol
import LogStorage
import NIOCore

extension RequestRouter {
    /// DeleteRecords: moves each partition's log start offset forward (-1: to the high watermark).
    func handleDeleteRecords(_ request: DeleteRecordsRequest, _ context: RequestContext) -> DeleteRecordsResponse {
        var response = DeleteRecordsResponse()
        for topic in request.topics {
            var t = DeleteRecordsResponse.DeleteRecordsTopicResult(name: topic.name)
            for p in topic.partitions {
                var r = DeleteRecordsResponse.DeleteRecordsPartitionResult(partitionIndex: p.partitionIndex, lowWatermark: -1)
                if let partition = broker.replicas.partition(TopicPartition(topic: topic.name, partition: p.partitionIndex)) {
                    do {
                        r.lowWatermark = try partition.deleteRecords(before: p.offset)
                    } catch let code as KafkaErrorCode {
                        r.errorCode = code.code
                    } catch {
                        r.errorCode = KafkaErrorCode.kafkaStorageError.code
                        context.logger(topic: topic.name, partition: p.partitionIndex).error("DeleteRecords failed: \(error)")
                    }
                } else {
                    r.errorCode = KafkaErrorCode.unknownTopicOrPartition.code
                }
                t.partitions.append(r)
            }
            response.topics.append(t)
        }
        return response
    }

    /// DescribeTopicPartitions (KIP-966): partitions of the named topics (or all), paged by cursor.
    func handleDescribeTopicPartitions(_ request: DescribeTopicPartitionsRequest, _ context: RequestContext) -> DescribeTopicPartitionsResponse {
        let image = broker.metadata.current()
        var response = DescribeTopicPartitionsResponse()
        let names = request.topics.isEmpty ? image.topics.keys.sorted() : request.topics.map(\.name).sorted()
        var budget = request.responsePartitionLimit > 0 ? Int(request.responsePartitionLimit) : 2000
        for name in names {
            if let cursor = request.cursor, name < cursor.topicName { continue }
            guard let topic = image.topics[name] else {
                response.topics.append(.init(errorCode: KafkaErrorCode.unknownTopicOrPartition.code, name: name))
                continue
            }
            var t = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic(name: name, topicId: topic.id, isInternal: topic.isInternal)
            for p in topic.partitions {
                if let cursor = request.cursor, name == cursor.topicName, p.partition < cursor.partitionIndex { continue }
                if budget == 0 {
                    response.nextCursor = .init(topicName: name, partitionIndex: p.partition)
                    break
                }
                budget -= 1
                t.partitions.append(.init(partitionIndex: p.partition, leaderId: p.leader, leaderEpoch: p.leaderEpoch,
                                          replicaNodes: p.replicas, isrNodes: p.isr, eligibleLeaderReplicas: [], lastKnownElr: []))
            }
            response.topics.append(t)
            if response.nextCursor != nil { break }
        }
        return response
    }

    /// DescribeLogDirs: partition sizes per log directory.
    func handleDescribeLogDirs(_ request: DescribeLogDirsRequest, _ context: RequestContext) -> DescribeLogDirsResponse {
        var byTopic = [String: [DescribeLogDirsResponse.DescribeLogDirsPartition]]()
        let filter: [String: Set<Int32>]? = request.topics.map { Dictionary($0.map { ($0.topic, Set($0.partitions)) }, uniquingKeysWith: { a, b in a.union(b) }) }
        for partition in broker.replicas.all {
            let tp = partition.topicPartition
            if let filter, !(filter[tp.topic]?.contains(tp.partition) ?? false) { continue }
            byTopic[tp.topic, default: []].append(.init(
                partitionIndex: tp.partition, partitionSize: Int64(partition.log.size),
                offsetLag: 0, isFutureKey: false))
        }
        var result = DescribeLogDirsResponse.DescribeLogDirsResult(logDir: broker.logDirs.first ?? "", totalBytes: -1, usableBytes: -1)
        result.topics = byTopic.keys.sorted().map { .init(name: $0, partitions: byTopic[$0]!.sorted { $0.partitionIndex < $1.partitionIndex }) }
        var response = DescribeLogDirsResponse()
        response.results = [result]
        return response
    }

    /// InitProducerId for idempotent producers (transactions are a later issue). Ids come from
    /// blocks allocated through the metadata log, so they are never reused after a restart.
    func handleInitProducerId(_ request: InitProducerIdRequest, _ context: RequestContext) -> InitProducerIdResponse {
        var response = InitProducerIdResponse()
        if request.transactionalId != nil {
            response.errorCode = KafkaErrorCode.transactionalIdAuthorizationFailed.code
            response.producerId = -1
            response.producerEpoch = -1
            context.logger.warning("InitProducerId with a transactional id: transactions are not supported yet")
            return response
        }
        if request.producerId >= 0 && request.producerEpoch >= 0 && request.producerEpoch < Int16.max - 1 {
            // KIP-360: an idempotent producer may bump its own epoch.
            response.producerId = request.producerId
            response.producerEpoch = request.producerEpoch + 1
            return response
        }
        do {
            response.producerId = try broker.producerIds.next()
            response.producerEpoch = 0
        } catch {
            response.errorCode = KafkaErrorCode.coordinatorNotAvailable.code
            response.producerId = -1
            response.producerEpoch = -1
            context.logger.error("cannot allocate a producer id: \(error)")
        }
        return response
    }

    /// DescribeProducers: the idempotent producers a partition knows.
    func handleDescribeProducers(_ request: DescribeProducersRequest, _ context: RequestContext) -> DescribeProducersResponse {
        var response = DescribeProducersResponse()
        for topic in request.topics {
            var t = DescribeProducersResponse.TopicResponse(name: topic.name)
            for index in topic.partitionIndexes {
                var r = DescribeProducersResponse.PartitionResponse(partitionIndex: index)
                if let partition = broker.replicas.partition(TopicPartition(topic: topic.name, partition: index)) {
                    r.activeProducers = partition.log.producerStates.values.sorted { $0.producerId < $1.producerId }.map {
                        .init(producerId: $0.producerId, producerEpoch: Int32($0.producerEpoch),
                              lastSequence: $0.batches.last?.lastSequence ?? -1, lastTimestamp: $0.lastTimestamp,
                              coordinatorEpoch: $0.coordinatorEpoch, currentTxnStartOffset: $0.currentTxnFirstOffset ?? -1)
                    }
                } else {
                    r.errorCode = KafkaErrorCode.unknownTopicOrPartition.code
                }
                t.partitions.append(r)
            }
            response.topics.append(t)
        }
        return response
    }
}

extension RequestRouter {
    /// OffsetForLeaderEpoch (KIP-101/320): where a leader epoch ends in the leader's log, so that
    /// a consumer (or an older follower) can tell whether its position survived a leader change.
    func handleOffsetForLeaderEpoch(_ request: OffsetForLeaderEpochRequest, _ context: RequestContext) -> OffsetForLeaderEpochResponse {
        var response = OffsetForLeaderEpochResponse()
        let image = broker.metadata.current()
        for topic in request.topics {
            var t = OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(topic: topic.topic)
            for p in topic.partitions {
                var r = OffsetForLeaderEpochResponse.EpochEndOffset(partition: p.partition)
                let tp = TopicPartition(topic: topic.topic, partition: p.partition)
                guard let partition = broker.replicas.partition(tp) else {
                    r.errorCode = (image.topics[topic.topic] == nil ? KafkaErrorCode.unknownTopicOrPartition : .notLeaderOrFollower).code
                    t.partitions.append(r)
                    continue
                }
                let epoch = partition.leaderEpoch
                if !partition.isLeader {
                    r.errorCode = KafkaErrorCode.notLeaderOrFollower.code
                } else if p.currentLeaderEpoch >= 0 && p.currentLeaderEpoch < epoch {
                    r.errorCode = KafkaErrorCode.fencedLeaderEpoch.code
                } else if p.currentLeaderEpoch > epoch {
                    r.errorCode = KafkaErrorCode.unknownLeaderEpoch.code
                } else {
                    let (found, end) = partition.log.endOffset(forEpoch: p.leaderEpoch)
                    r.leaderEpoch = found
                    r.endOffset = end
                }
                t.partitions.append(r)
            }
            response.topics.append(t)
        }
        return response
    }
}
