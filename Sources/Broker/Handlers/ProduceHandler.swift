import KafkaProtocol
import LogStorage
import NIOCore

extension RequestRouter {
    /// Produce: appends each partition's batches as received (offsets assigned in place, CRC
    /// checked, nothing re-encoded). acks=0 gets no response; acks=1 and acks=-1 are answered
    /// once the write is in the log and, for -1, in every ISR member (this broker alone until
    /// replication lands).
    func handleProduce(_ request: ProduceRequest, _ context: RequestContext) -> HandlerResult {
        let acks = request.acks
        var response = ProduceResponse()
        let validAcks = acks == 0 || acks == 1 || acks == -1
        if request.transactionalId != nil {
            context.logger.warning("transactional produce is not supported yet; answering TRANSACTIONAL_ID_AUTHORIZATION_FAILED")
        }
        // acks=all: partitions whose answer waits for the high watermark (the ISR has the batch).
        var waits: [(topic: Int, partition: Int, future: EventLoopFuture<KafkaErrorCode>)] = []
        let timeout = TimeAmount.milliseconds(Int64(max(request.timeoutMs, 1)))
        for topic in request.topicData {
            var topicResponse = ProduceResponse.TopicProduceResponse(name: topic.name)
            for data in topic.partitionData {
                var result = ProduceResponse.PartitionProduceResponse(index: data.index, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1)
                let tp = TopicPartition(topic: topic.name, partition: data.index)
                if !validAcks {
                    result.errorCode = KafkaErrorCode.invalidRequiredAcks.code
                } else if request.transactionalId != nil {
                    result.errorCode = KafkaErrorCode.transactionalIdAuthorizationFailed.code
                } else if let partition = broker.replicas.partition(tp) {
                    switch partition.appendAsLeader(data.records, requiredAcks: acks) {
                    case .success(let appended):
                        result.baseOffset = appended.baseOffset
                        result.logAppendTimeMs = appended.logAppendTime
                        result.logStartOffset = appended.logStartOffset
                        broker.replicas.delayedFetches.wake(tp)
                        if acks == -1 && partition.highWatermark <= appended.lastOffset {
                            waits.append((response.responses.count, topicResponse.partitionResponses.count,
                                          partition.awaitHighWatermark(appended.lastOffset + 1, eventLoop: context.eventLoop, timeout: timeout)))
                        }
                    case .failure(let failure):
                        result.errorCode = failure.code.code
                        if context.apiVersion >= 8 {
                            result.errorMessage = failure.message
                            if let index = failure.batchIndex {
                                result.recordErrors = [.init(batchIndex: index, batchIndexErrorMessage: failure.message)]
                            }
                        }
                        context.logger(topic: tp.topic, partition: tp.partition)
                            .warning("produce to \(tp) refused: \(failure.code.name): \(failure.message)")
                    }
                } else {
                    let known = broker.metadata.current().topics[topic.name] != nil
                    result.errorCode = (known ? KafkaErrorCode.notLeaderOrFollower : .unknownTopicOrPartition).code
                }
                topicResponse.partitionResponses.append(result)
            }
            response.responses.append(topicResponse)
        }
        if acks == 0 { return .noResponse }
        guard !waits.isEmpty else { return .response(.produce(response)) }
        let logger = context.logger
        let futures = waits.map(\.future)
        let positions = waits.map { ($0.topic, $0.partition) }
        let base = response
        return .deferred(EventLoopFuture.whenAllSucceed(futures, on: context.eventLoop).map { codes -> KafkaResponse in
            var answer = base
            for (i, code) in codes.enumerated() where code != .none {
                let (t, p) = positions[i]
                answer.responses[t].partitionResponses[p].errorCode = code.code
                // Kafka's error answers carry no offsets: nothing was acknowledged.
                answer.responses[t].partitionResponses[p].baseOffset = -1
                answer.responses[t].partitionResponses[p].logAppendTimeMs = -1
                logger.warning("acks=all produce to \(answer.responses[t].name)-\(answer.responses[t].partitionResponses[p].index) not confirmed by the ISR: \(code.name)")
            }
            return .produce(answer)
        })
    }
}
