import KafkaProtocol
import LogStorage

extension RequestRouter {
    /// ListOffsets: -2 earliest, -1 latest (high watermark for consumers), -3 the record with the
    /// largest timestamp, otherwise the first offset whose timestamp is at least the one asked.
    func handleListOffsets(_ request: ListOffsetsRequest, _ context: RequestContext) -> ListOffsetsResponse {
        var response = ListOffsetsResponse()
        let isFollower = request.replicaId >= 0
        for topic in request.topics {
            var topicResponse = ListOffsetsResponse.ListOffsetsTopicResponse(name: topic.name)
            for p in topic.partitions {
                var result = ListOffsetsResponse.ListOffsetsPartitionResponse(partitionIndex: p.partitionIndex, timestamp: -1, offset: -1, leaderEpoch: -1)
                guard let partition = broker.replicas.partition(TopicPartition(topic: topic.name, partition: p.partitionIndex)) else {
                    let known = broker.metadata.current().topics[topic.name] != nil
                    result.errorCode = (known ? KafkaErrorCode.notLeaderOrFollower : .unknownTopicOrPartition).code
                    topicResponse.partitions.append(result)
                    continue
                }
                guard partition.isLeader else {
                    result.errorCode = KafkaErrorCode.notLeaderOrFollower.code
                    topicResponse.partitions.append(result)
                    continue
                }
                let epoch = partition.leaderEpoch
                if p.currentLeaderEpoch >= 0 && p.currentLeaderEpoch < epoch && context.apiVersion >= 4 {
                    result.errorCode = KafkaErrorCode.fencedLeaderEpoch.code
                    topicResponse.partitions.append(result)
                    continue
                }
                do {
                    var offset: Int64 = -1
                    var timestamp: Int64 = -1
                    switch p.timestamp {
                    case -2:
                        offset = partition.log.logStartOffset
                    case -1:
                        offset = isFollower ? partition.log.logEndOffset : partition.highWatermark
                    case -3:
                        if let found = try partition.log.maxTimestampAndOffset() {
                            offset = found.offset
                            timestamp = found.timestamp
                        }
                    default:
                        if let found = try partition.log.offsetForTimestamp(p.timestamp), found.offset < partition.highWatermark {
                            offset = found.offset
                            timestamp = found.timestamp
                        }
                    }
                    if context.apiVersion == 0 {
                        result.oldStyleOffsets = offset >= 0 ? [offset] : []
                    } else {
                        result.offset = offset
                        result.timestamp = timestamp
                        if context.apiVersion >= 4 { result.leaderEpoch = offset >= 0 ? epoch : -1 }
                    }
                } catch {
                    result.errorCode = KafkaErrorCode.kafkaStorageError.code
                    context.logger(topic: topic.name, partition: p.partitionIndex).error("ListOffsets failed: \(error)")
                }
                topicResponse.partitions.append(result)
            }
            response.topics.append(topicResponse)
        }
        return response
    }
}
