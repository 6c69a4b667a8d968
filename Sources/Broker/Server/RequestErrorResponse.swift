import KafkaProtocol

extension KafkaResponse {
    /// The APIs `refusing` answers item by item (the others get the generic refusal).
    static let refusedPerItem: Set<ApiKey> = [
        .createTopics, .deleteTopics, .createPartitions, .alterConfigs, .incrementalAlterConfigs, .electLeaders, .describeQuorum,
    ]

    /// A response that refuses `request` as a whole with `error`, with one entry per topic,
    /// partition or resource the request named, so a client sees the error on each item it
    /// asked about (a CreateTopics answer with no topics reads as "nothing failed" to a client).
    /// APIs without per-item results get the generated whole-request refusal.
    static func refusing(_ request: KafkaRequest, version: Int16, error: KafkaErrorCode, message: String) -> KafkaResponse {
        let code = error.rawValue
        switch request {
        case .createTopics(let r):
            var response = CreateTopicsResponse()
            response.topics = r.topics.map { .init(name: $0.name, errorCode: code, errorMessage: message) }
            return .createTopics(response)
        case .deleteTopics(let r):
            var response = DeleteTopicsResponse()
            let named: [DeleteTopicsResponse.DeletableTopicResult] = version >= 6
                ? r.topics.map { .init(name: $0.name, topicId: $0.topicId, errorCode: code, errorMessage: message) }
                : r.topicNames.map { .init(name: $0, errorCode: code, errorMessage: message) }
            response.responses = named
            return .deleteTopics(response)
        case .createPartitions(let r):
            var response = CreatePartitionsResponse()
            response.results = r.topics.map { .init(name: $0.name, errorCode: code, errorMessage: message) }
            return .createPartitions(response)
        case .alterConfigs(let r):
            var response = AlterConfigsResponse()
            response.responses = r.resources.map {
                .init(errorCode: code, errorMessage: message, resourceType: $0.resourceType, resourceName: $0.resourceName)
            }
            return .alterConfigs(response)
        case .incrementalAlterConfigs(let r):
            var response = IncrementalAlterConfigsResponse()
            response.responses = r.resources.map {
                .init(errorCode: code, errorMessage: message, resourceType: $0.resourceType, resourceName: $0.resourceName)
            }
            return .incrementalAlterConfigs(response)
        case .electLeaders(let r):
            var response = ElectLeadersResponse()
            if version >= 1 { response.errorCode = code }
            response.replicaElectionResults = (r.topicPartitions ?? []).map { t in
                .init(topic: t.topic, partitionResult: t.partitions.map { .init(partitionId: $0, errorCode: code, errorMessage: message) })
            }
            return .electLeaders(response)
        case .describeQuorum:
            var response = DescribeQuorumResponse()
            response.errorCode = code
            response.errorMessage = message
            return .describeQuorum(response)
        default:
            return .errorResponse(apiKey: request.apiKey, version: version, errorCode: code)
        }
    }
}
