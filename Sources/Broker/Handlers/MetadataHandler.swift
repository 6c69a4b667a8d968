import KafkaProtocol

extension RequestRouter {
    /// Metadata: brokers, controller, and topics with their partitions. A null topic list means
    /// all topics; unknown topics are created when `auto.create.topics.enable` and the client
    /// allows it (v4+), as Kafka does.
    func handleMetadata(_ request: MetadataRequest, _ context: RequestContext) -> MetadataResponse {
        var image = broker.metadata.current()
        var response = MetadataResponse()
        response.clusterId = broker.clusterId
        response.controllerId = broker.controllerId
        response.brokers = broker.aliveBrokers(image, listener: context.listenerName).map {
            .init(nodeId: $0.id, host: $0.host, port: $0.port, rack: $0.rack)
        }
        if let requested = request.topics {
            var names = [String]()
            var unknownIds = [KafkaUUID]()
            for topic in requested {
                if let name = topic.name {
                    names.append(name)
                } else if let name = image.topicNames[topic.topicId] {
                    names.append(name)
                } else {
                    unknownIds.append(topic.topicId)
                }
            }
            let allowCreate = broker.autoCreateTopicsEnabled && (context.apiVersion < 4 || request.allowAutoTopicCreation)
            let missing = names.filter { image.topics[$0] == nil }
            if allowCreate && !missing.isEmpty {
                let results = broker.metadata.createTopics(
                    missing.map { TopicCreation(name: $0, partitions: -1, replicationFactor: -1, assignments: [:], configs: [:]) },
                    validateOnly: false, logger: context.logger)
                for result in results where result.error != nil && result.error != .topicAlreadyExists {
                    context.logger.warning("auto-creating topic \(result.name) failed: \(result.message ?? "\(result.error!)")")
                }
                image = broker.metadata.current()
            }
            for name in names {
                response.topics.append(topicMetadata(name: name, image: image, created: missing.contains(name)))
            }
            for id in unknownIds {
                response.topics.append(.init(errorCode: KafkaErrorCode.unknownTopicId.code, name: nil, topicId: id))
            }
        } else {
            for name in image.topics.keys.sorted() {
                response.topics.append(topicMetadata(name: name, image: image, created: false))
            }
        }
        return response
    }

    func topicMetadata(name: String, image: MetadataImage, created: Bool) -> MetadataResponse.MetadataResponseTopic {
        guard let topic = image.topics[name] else {
            let error: KafkaErrorCode = TopicNames.validate(name) == nil ? .unknownTopicOrPartition : .invalidTopicException
            return .init(errorCode: error.code, name: name)
        }
        var result = MetadataResponse.MetadataResponseTopic(name: name, topicId: topic.id, isInternal: topic.isInternal)
        result.partitions = topic.partitions.map { p in
            let leaderAlive = image.brokers[p.leader].map { !$0.fenced } ?? (p.leader == broker.nodeId)
            return .init(
                errorCode: leaderAlive ? 0 : KafkaErrorCode.leaderNotAvailable.code,
                partitionIndex: p.partition, leaderId: leaderAlive ? p.leader : -1, leaderEpoch: p.leaderEpoch,
                replicaNodes: p.replicas, isrNodes: p.isr,
                offlineReplicas: p.replicas.filter { image.brokers[$0]?.fenced ?? ($0 != broker.nodeId) })
        }
        return result
    }
}

/// Kafka's rules for topic names.
enum TopicNames {
    static let maxLength = 249

    /// nil when valid, otherwise why not.
    static func validate(_ name: String) -> String? {
        if name.isEmpty { return "topic name is empty" }
        if name == "." || name == ".." { return "topic name cannot be \".\" or \"..\"" }
        if name.utf8.count > maxLength { return "topic name is longer than \(maxLength) characters" }
        for c in name.utf8 {
            let ok = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39)
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
            if !ok { return "topic name \"\(name)\" has characters other than ASCII letters, digits, '.', '_' and '-'" }
        }
        return nil
    }
}
