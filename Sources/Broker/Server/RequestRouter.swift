import KafkaProtocol
import Logging
import NIOCore

/// Routes each decoded request to its handler (one file per API under `Handlers/`). APIs that
/// are not implemented are answered with UNSUPPORTED_VERSION (and logged), never a dropped
/// connection.
final class RequestRouter: Sendable {
    private let brokerProvider: RuntimeBox
    let metrics: BrokerMetrics
    /// Set right after the listener is bound; `handle` answers requests that arrive before with
    /// a retriable error.
    var broker: BrokerRuntime { brokerProvider.get()! }

    /// The APIs this broker serves and the versions it advertises in ApiVersions.
    static let supported: [ApiKey: ClosedRange<Int16>] = {
        var apis: [ApiKey: ClosedRange<Int16>] = [:]
        let implemented: [ApiKey] = [
            .apiVersions, .metadata, .produce, .fetch, .listOffsets, .createTopics, .deleteTopics,
            .createPartitions, .deleteRecords, .describeConfigs, .alterConfigs, .incrementalAlterConfigs,
            .describeCluster, .describeTopicPartitions, .describeLogDirs, .describeAcls, .initProducerId,
            .describeProducers, .findCoordinator, .joinGroup, .syncGroup, .heartbeat, .leaveGroup, .offsetCommit,
            .offsetFetch, .listGroups, .describeGroups, .deleteGroups, .offsetDelete,
        ]
        // Record batches v2 (magic 2) need Produce v3+ and Fetch v4+; Kafka 4 dropped the older
        // versions too, and with them the legacy message-set formats.
        let minimum: [ApiKey: Int16] = [.produce: 3, .fetch: 4]
        for api in implemented {
            var range = max(api.validVersions.lowerBound, minimum[api] ?? 0)...api.validVersions.upperBound
            if api.latestVersionUnstable && range.upperBound > range.lowerBound {
                range = range.lowerBound...(range.upperBound - 1)
            }
            apis[api] = range
        }
        return apis
    }()

    init(brokerProvider: RuntimeBox, metrics: BrokerMetrics) {
        self.brokerProvider = brokerProvider
        self.metrics = metrics
    }

    func apiVersionsResponse() -> ApiVersionsResponse {
        var response = ApiVersionsResponse()
        response.apiKeys = Self.supported.keys.sorted { $0.rawValue < $1.rawValue }.map { api in
            let range = Self.supported[api]!
            return .init(apiKey: api.rawValue, minVersion: range.lowerBound, maxVersion: range.upperBound)
        }
        return response
    }

    func handle(_ request: KafkaRequest, context: RequestContext) -> HandlerResult {
        guard brokerProvider.get() != nil else {
            return .response(.errorResponse(apiKey: context.apiKey, version: context.apiVersion, errorCode: KafkaErrorCode.brokerNotAvailable.rawValue))
        }
        if let range = Self.supported[context.apiKey], !range.contains(context.apiVersion) {
            context.logger.warning("\(context.apiKey.name) v\(context.apiVersion) is not supported (supported: \(range)); answering UNSUPPORTED_VERSION")
            return .response(.errorResponse(apiKey: context.apiKey, version: context.apiVersion, errorCode: KafkaErrorCode.unsupportedVersion.rawValue))
        }
        switch request {
        case .apiVersions(let r): return .response(.apiVersions(handleApiVersions(r, context)))
        case .metadata(let r): return .response(.metadata(handleMetadata(r, context)))
        case .produce(let r): return handleProduce(r, context)
        case .fetch(let r): return handleFetch(r, context)
        case .listOffsets(let r): return .response(.listOffsets(handleListOffsets(r, context)))
        case .createTopics(let r): return .response(.createTopics(handleCreateTopics(r, context)))
        case .deleteTopics(let r): return .response(.deleteTopics(handleDeleteTopics(r, context)))
        case .createPartitions(let r): return .response(.createPartitions(handleCreatePartitions(r, context)))
        case .deleteRecords(let r): return .response(.deleteRecords(handleDeleteRecords(r, context)))
        case .describeConfigs(let r): return .response(.describeConfigs(handleDescribeConfigs(r, context)))
        case .alterConfigs(let r): return .response(.alterConfigs(handleAlterConfigs(r, context)))
        case .incrementalAlterConfigs(let r): return .response(.incrementalAlterConfigs(handleIncrementalAlterConfigs(r, context)))
        case .describeCluster(let r): return .response(.describeCluster(handleDescribeCluster(r, context)))
        case .describeTopicPartitions(let r): return .response(.describeTopicPartitions(handleDescribeTopicPartitions(r, context)))
        case .describeLogDirs(let r): return .response(.describeLogDirs(handleDescribeLogDirs(r, context)))
        case .describeAcls(let r): return .response(.describeAcls(handleDescribeAcls(r, context)))
        case .initProducerId(let r): return .response(.initProducerId(handleInitProducerId(r, context)))
        case .describeProducers(let r): return .response(.describeProducers(handleDescribeProducers(r, context)))
        case .findCoordinator(let r): return .response(.findCoordinator(handleFindCoordinator(r, context)))
        case .joinGroup(let r): return handleJoinGroup(r, context)
        case .syncGroup(let r): return handleSyncGroup(r, context)
        case .heartbeat(let r): return .response(.heartbeat(handleHeartbeat(r, context)))
        case .leaveGroup(let r): return .response(.leaveGroup(handleLeaveGroup(r, context)))
        case .offsetCommit(let r): return .response(.offsetCommit(handleOffsetCommit(r, context)))
        case .offsetFetch(let r): return .response(.offsetFetch(handleOffsetFetch(r, context)))
        case .listGroups(let r): return .response(.listGroups(handleListGroups(r, context)))
        case .describeGroups(let r): return .response(.describeGroups(handleDescribeGroups(r, context)))
        case .deleteGroups(let r): return .response(.deleteGroups(handleDeleteGroups(r, context)))
        case .offsetDelete(let r): return .response(.offsetDelete(handleOffsetDelete(r, context)))
        default:
            context.logger.warning("\(context.apiKey.name) is not implemented by this broker; answering UNSUPPORTED_VERSION")
            return .response(.errorResponse(apiKey: context.apiKey, version: context.apiVersion, errorCode: KafkaErrorCode.unsupportedVersion.rawValue))
        }
    }
}

extension KafkaErrorCode {
    var code: Int16 { rawValue }
}
