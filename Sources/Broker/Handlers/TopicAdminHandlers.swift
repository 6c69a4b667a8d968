import KafkaProtocol

extension RequestRouter {
    /// CreateTopics: validates names, partitions, replication factor, assignments and configs;
    /// `validateOnly` checks without creating. Results carry Kafka's error codes and messages.
    func handleCreateTopics(_ request: CreateTopicsRequest, _ context: RequestContext) -> CreateTopicsResponse {
        let creations = request.topics.map { t in
            TopicCreation(
                name: t.name, partitions: t.numPartitions, replicationFactor: t.replicationFactor,
                assignments: Dictionary(t.assignments.map { ($0.partitionIndex, $0.brokerIds) }, uniquingKeysWith: { a, _ in a }),
                configs: Dictionary(t.configs.compactMap { c in c.value.map { (c.name, $0) } }, uniquingKeysWith: { _, b in b }))
        }
        let results = broker.metadata.createTopics(creations, validateOnly: request.validateOnly, logger: context.logger)
        var response = CreateTopicsResponse()
        response.topics = results.map { r in
            var result = CreateTopicsResponse.CreatableTopicResult(
                name: r.name, topicId: r.topicId, errorCode: r.error?.code ?? 0, errorMessage: r.message)
            if r.error == nil {
                result.numPartitions = r.partitions
                result.replicationFactor = r.replicationFactor
                let overrides = creations.first { $0.name == r.name }?.configs ?? [:]
                result.configs = broker.describeTopicConfigs(overrides: overrides).map {
                    .init(name: $0.name, value: $0.value, readOnly: $0.readOnly, configSource: $0.source, isSensitive: $0.isSensitive)
                }
            } else {
                result.numPartitions = -1
                result.replicationFactor = -1
                if r.error != .topicAlreadyExists {
                    context.logger(topic: r.name).warning("CreateTopics refused topic \(r.name): \(r.error!.name): \(r.message ?? "")")
                }
            }
            return result
        }
        return response
    }

    /// DeleteTopics by name (v0-5) or by id (v6+).
    func handleDeleteTopics(_ request: DeleteTopicsRequest, _ context: RequestContext) -> DeleteTopicsResponse {
        let image = broker.metadata.current()
        var response = DeleteTopicsResponse()
        var names = request.topicNames
        var unknownIds = [KafkaUUID]()
        for t in request.topics {
            if let name = t.name {
                names.append(name)
            } else if let name = image.topicNames[t.topicId] {
                names.append(name)
            } else {
                unknownIds.append(t.topicId)
            }
        }
        guard broker.deleteTopicEnabled else {
            response.responses = names.map {
                .init(name: $0, errorCode: KafkaErrorCode.topicDeletionDisabled.code, errorMessage: "delete.topic.enable is false on this broker")
            }
            return response
        }
        for name in names where image.topics[name]?.isInternal == true {
            response.responses.append(.init(name: name, topicId: image.topics[name]!.id,
                errorCode: KafkaErrorCode.invalidRequest.code, errorMessage: "internal topic \(name) cannot be deleted"))
        }
        let deletable = names.filter { image.topics[$0]?.isInternal != true }
        for r in broker.metadata.deleteTopics(names: deletable, logger: context.logger) {
            response.responses.append(.init(name: r.name, topicId: r.topicId, errorCode: r.error?.code ?? 0, errorMessage: r.message))
        }
        for id in unknownIds {
            response.responses.append(.init(name: nil, topicId: id, errorCode: KafkaErrorCode.unknownTopicId.code, errorMessage: "no topic has id \(id)"))
        }
        return response
    }

    /// CreatePartitions: grows topics (never shrinks), optionally with manual assignments.
    func handleCreatePartitions(_ request: CreatePartitionsRequest, _ context: RequestContext) -> CreatePartitionsResponse {
        var response = CreatePartitionsResponse()
        response.results = request.topics.map { t in
            let (error, message) = broker.metadata.createPartitions(
                topic: t.name, count: t.count, assignments: t.assignments?.map(\.brokerIds),
                validateOnly: request.validateOnly, logger: context.logger)
            if error != .none { context.logger(topic: t.name).warning("CreatePartitions refused for \(t.name): \(error.name): \(message ?? "")") }
            return .init(name: t.name, errorCode: error.code, errorMessage: message)
        }
        return response
    }

    /// DescribeCluster: the brokers and the controller, for admin clients and kafka-ui.
    func handleDescribeCluster(_ request: DescribeClusterRequest, _ context: RequestContext) -> DescribeClusterResponse {
        let image = broker.metadata.current()
        var response = DescribeClusterResponse()
        response.endpointType = request.endpointType
        response.clusterId = broker.clusterId
        response.controllerId = broker.controllerId
        response.brokers = broker.aliveBrokers(image, listener: context.listenerName).map { .init(brokerId: $0.id, host: $0.host, port: $0.port, rack: $0.rack) }
        if request.endpointType == 2 {  // controllers
            response.errorCode = KafkaErrorCode.unsupportedEndpointType.code
            response.errorMessage = "this broker does not expose controller endpoints"
        }
        return response
    }

    /// DescribeAcls: authorization is not enabled, as Kafka answers when no authorizer is set.
    func handleDescribeAcls(_ request: DescribeAclsRequest, _ context: RequestContext) -> DescribeAclsResponse {
        var response = DescribeAclsResponse()
        response.errorCode = KafkaErrorCode.securityDisabled.code
        response.errorMessage = "No Authorizer is configured on the broker"
        return response
    }
}
