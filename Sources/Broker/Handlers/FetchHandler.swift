import KafkaProtocol
import LogStorage
import NIOCore

extension RequestRouter {
    /// Fetch: reads whole batches as stored (no re-encoding) up to the high watermark (consumers)
    /// or the log end (followers), honouring partition and response byte limits; waits up to
    /// MaxWaitMs for MinBytes (long poll). Fetch sessions are not kept: session id 0 tells
    /// clients to send full fetch requests, which every client supports.
    func handleFetch(_ request: FetchRequest, _ context: RequestContext) -> HandlerResult {
        let replicaId = context.apiVersion >= 15 ? request.replicaState.replicaId : request.replicaId
        let isFollower = replicaId >= 0
        let image = broker.metadata.current()

        // Resolve names (v13+ sends topic ids) once.
        struct Wanted: Sendable {
            var topicIndex: Int
            var name: String?
            var partition: FetchRequest.FetchPartition
        }
        var wanted = [Wanted]()
        for (i, topic) in request.topics.enumerated() {
            let name: String? = context.apiVersion >= 13 ? image.topicNames[topic.topicId] : topic.topic
            for p in topic.partitions { wanted.append(Wanted(topicIndex: i, name: name, partition: p)) }
        }
        let responseMaxBytes = context.apiVersion >= 3 ? max(Int(request.maxBytes), 0) : Int.max
        let version = context.apiVersion
        let topics = request.topics
        let replicas = broker.replicas
        let minBytes = max(Int(request.minBytes), 1)
        let items = wanted

        // A follower's fetch tells the leader how far its log reaches (before any waiting).
        var diverging: [Int: (epoch: Int32, endOffset: Int64)] = [:]
        if isFollower {
            for (i, item) in items.enumerated() {
                guard let name = item.name, let partition = replicas.partition(TopicPartition(topic: name, partition: item.partition.partition)),
                      partition.isLeader, item.partition.currentLeaderEpoch == partition.leaderEpoch || item.partition.currentLeaderEpoch < 0 else { continue }
                if let d = partition.divergence(lastFetchedEpoch: item.partition.lastFetchedEpoch, fetchOffset: item.partition.fetchOffset) {
                    diverging[i] = d
                    continue
                }
                let outcome = partition.recordFollowerFetch(replica: replicaId, fetchOffset: item.partition.fetchOffset)
                if outcome.highWatermarkMoved { replicas.delayedFetches.wake(partition.topicPartition) }
                if let newIsr = outcome.expandIsr { replicas.requestIsrChange(partition, newIsr: newIsr) }
            }
        }
        let divergingEpochs = diverging

        let attempt: @Sendable (Bool) -> KafkaResponse? = { force in
            var response = FetchResponse()
            var total = 0
            var anyError = false
            var topicResponses = [FetchResponse.FetchableTopicResponse]()
            var current = -1
            for (index, item) in items.enumerated() {
                if item.topicIndex != current {
                    current = item.topicIndex
                    topicResponses.append(.init(topic: version < 13 ? (item.name ?? topics[item.topicIndex].topic) : "",
                                                topicId: version >= 13 ? topics[item.topicIndex].topicId : .zero))
                }
                var data = FetchResponse.PartitionData(partitionIndex: item.partition.partition)
                data.abortedTransactions = version >= 4 ? [] : nil
                guard let name = item.name else {
                    data.errorCode = KafkaErrorCode.unknownTopicId.code
                    anyError = true
                    topicResponses[topicResponses.count - 1].partitions.append(data)
                    continue
                }
                guard let partition = replicas.partition(TopicPartition(topic: name, partition: item.partition.partition)) else {
                    data.errorCode = (image.topics[name] == nil ? KafkaErrorCode.unknownTopicOrPartition : .notLeaderOrFollower).code
                    anyError = true
                    topicResponses[topicResponses.count - 1].partitions.append(data)
                    continue
                }
                let leaderEpoch = partition.leaderEpoch
                if !partition.isLeader {
                    data.errorCode = KafkaErrorCode.notLeaderOrFollower.code
                    anyError = true
                } else if let d = divergingEpochs[index] {
                    data.divergingEpoch = .init(epoch: d.epoch, endOffset: d.endOffset)
                    data.highWatermark = partition.highWatermark
                    data.logStartOffset = partition.log.logStartOffset
                    anyError = true
                } else if item.partition.currentLeaderEpoch >= 0 && item.partition.currentLeaderEpoch < leaderEpoch && version >= 9 {
                    data.errorCode = KafkaErrorCode.fencedLeaderEpoch.code
                    anyError = true
                } else if item.partition.currentLeaderEpoch > leaderEpoch && version >= 9 {
                    data.errorCode = KafkaErrorCode.unknownLeaderEpoch.code
                    anyError = true
                } else {
                    let budget = min(Int(item.partition.partitionMaxBytes), max(responseMaxBytes - total, 0))
                    do {
                        let read = try partition.read(offset: item.partition.fetchOffset, maxBytes: budget,
                                                      minOneBatch: total == 0, isFollower: isFollower)
                        data.highWatermark = read.highWatermark
                        data.lastStableOffset = read.highWatermark
                        data.logStartOffset = read.logStartOffset
                        data.records = read.records
                        total += read.records.readableBytes
                    } catch let error as LogStorageError {
                        data.errorCode = error.kafkaErrorCode
                        data.highWatermark = partition.highWatermark
                        data.logStartOffset = partition.log.logStartOffset
                        anyError = true
                    } catch {
                        data.errorCode = KafkaErrorCode.kafkaStorageError.code
                        data.highWatermark = partition.highWatermark
                        data.logStartOffset = partition.log.logStartOffset
                        anyError = true
                    }
                }
                if data.records == nil { data.records = ByteBuffer() }
                topicResponses[topicResponses.count - 1].partitions.append(data)
            }
            guard force || anyError || total >= minBytes else { return nil }
            response.responses = topicResponses
            return .fetch(response)
        }

        if let immediate = attempt(request.maxWaitMs <= 0) {
            return .response(immediate)
        }
        // Shortly after this broker started leading partitions, a follower that does not fetch
        // every partition led here with it as a replica has not applied that metadata yet:
        // answer now, so its next fetch carries them (bounded in time: a follower that can never
        // fetch one, e.g. a log it cannot open, must not spin).
        if isFollower, MetadataManager.monotonicMs() - replicas.lastLeadershipGainMs.load(ordering: .acquiring) < 3_000 {
            let fetched = Set(items.compactMap { w in w.name.map { TopicPartition(topic: $0, partition: w.partition.partition) } })
            if replicas.ledPartitions(withReplica: replicaId).contains(where: { !fetched.contains($0) }), let now = attempt(true) {
                return .response(now)
            }
        }
        let promise = context.eventLoop.makePromise(of: KafkaResponse.self)
        let partitions = items.compactMap { w in w.name.map { TopicPartition(topic: $0, partition: w.partition.partition) } }
        let waiter = DelayedFetches.Waiter(eventLoop: context.eventLoop, partitions: partitions, isFollower: isFollower, promise: promise, attempt: attempt)
        replicas.delayedFetches.add(waiter, maxWait: .milliseconds(Int64(request.maxWaitMs)))
        // An append may have landed between the first attempt and registration.
        waiter.tryComplete(force: false)
        return .deferred(promise.futureResult)
    }
}
