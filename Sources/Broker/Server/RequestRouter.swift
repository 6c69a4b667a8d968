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
            // The cluster's own RPCs (controller listener) and the quorum's description.
            .vote, .beginQuorumEpoch, .endQuorumEpoch, .brokerRegistration, .brokerHeartbeat, .alterPartition,
            .describeQuorum, .electLeaders, .allocateProducerIds, .offsetForLeaderEpoch, .fetchSnapshot,
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

    /// The cluster's own RPCs: served on the controller listener only (as KRaft's controllers
    /// do), never to a client that reached a broker listener; ApiVersions there does not list them.
    static let controllerOnly: Set<ApiKey> = [
        .vote, .beginQuorumEpoch, .endQuorumEpoch, .fetchSnapshot, .brokerRegistration, .brokerHeartbeat,
        .alterPartition, .allocateProducerIds,
    ]

    /// The APIs served on `listener` (all of them when nil, or on the controller listener).
    func apiVersionsResponse(listener: String? = nil) -> ApiVersionsResponse {
        let clientListener = listener.map { !isControllerListener($0) } ?? false
        var response = ApiVersionsResponse()
        response.apiKeys = Self.supported.keys.filter { !(clientListener && Self.controllerOnly.contains($0)) }
            .sorted { $0.rawValue < $1.rawValue }.map { api in
            let range = Self.supported[api]!
            return .init(apiKey: api.rawValue, minVersion: range.lowerBound, maxVersion: range.upperBound)
        }
        return response
    }

    /// APIs whose handlers may write metadata through the quorum (and so wait for a commit):
    /// in a cluster they run on the controller thread pool, never on a network thread.
    static let controllerBound: Set<ApiKey> = [
        .metadata, .createTopics, .deleteTopics, .createPartitions, .alterConfigs, .incrementalAlterConfigs,
        .initProducerId, .findCoordinator, .electLeaders, .allocateProducerIds,
    ]

    /// Admin APIs a node that is not the active controller forwards to it.
    static let forwarded: Set<ApiKey> = [
        .createTopics, .deleteTopics, .createPartitions, .alterConfigs, .incrementalAlterConfigs, .electLeaders,
        .describeQuorum,
    ]

    func isControllerListener(_ name: String) -> Bool {
        guard let broker = brokerProvider.get() else { return false }
        return broker.config.controllerListenerNames.contains { $0.caseInsensitiveCompare(name) == .orderedSame }
    }

    func handle(_ request: KafkaRequest, context: RequestContext) -> HandlerResult {
        guard let broker = brokerProvider.get() else {
            return .response(.errorResponse(apiKey: context.apiKey, version: context.apiVersion, errorCode: KafkaErrorCode.brokerNotAvailable.rawValue))
        }
        if let range = Self.supported[context.apiKey], !range.contains(context.apiVersion) {
            context.logger.warning("\(context.apiKey.name) v\(context.apiVersion) is not supported (supported: \(range)); answering UNSUPPORTED_VERSION")
            return .response(.errorResponse(apiKey: context.apiKey, version: context.apiVersion, errorCode: KafkaErrorCode.unsupportedVersion.rawValue))
        }
        let onControllerListener = isControllerListener(context.listenerName)
        if Self.controllerOnly.contains(context.apiKey), !onControllerListener {
            context.logger.warning("\(context.apiKey.name) arrived on listener \(context.listenerName), but the cluster's own RPCs are served on the controller listener only (controller.listener.names=\(broker.config.controllerListenerNames.joined(separator: ","))); answering UNSUPPORTED_VERSION")
            return .response(.errorResponse(apiKey: context.apiKey, version: context.apiVersion, errorCode: KafkaErrorCode.unsupportedVersion.rawValue))
        }
        if let cluster = broker.cluster {
            switch request {
            case .vote, .beginQuorumEpoch, .endQuorumEpoch:
                return handleQuorumRequest(request, context)
            case .fetch(let r) where RaftWire.isMetadataFetch(r) && onControllerListener:
                return handleQuorumRequest(request, context)
            case .fetchSnapshot(let r):
                return handleFetchSnapshot(r, context)
            default:
                break
            }
            if Self.forwarded.contains(context.apiKey), !cluster.isActiveController,
               let forwarded = forward(request, version: context.apiVersion, cluster: cluster) {
                // The controller went away (or is being replaced) under the request: NOT_CONTROLLER
                // on every item, which clients retry after refreshing metadata.
                let version = context.apiVersion
                let logger = context.logger
                return .deferred(forwarded.hop(to: context.eventLoop).flatMapErrorThrowing { error in
                    logger.warning("could not forward \(context.apiKey) to the active controller: \(error); answering NOT_CONTROLLER so the client retries")
                    return .refusing(request, version: version, error: .notController,
                                     message: "the active controller could not be reached (\(error)); retry")
                })
            }
            if Self.controllerBound.contains(context.apiKey) {
                let future = cluster.controllerPool.runIfActive(eventLoop: context.eventLoop) { [self] () -> HandlerResult in
                    dispatch(request, context)
                }.flatMap { result -> EventLoopFuture<KafkaResponse> in
                    switch result {
                    case .response(let r): return context.eventLoop.makeSucceededFuture(r)
                    case .deferred(let f): return f
                    case .noResponse: return context.eventLoop.makeFailedFuture(PeerError("no response"))
                    }
                }
                return .deferred(future)
            }
        }
        return dispatch(request, context)
    }

    /// Sends a client's admin request on to the active controller; nil when none is known.
    private func forward(_ request: KafkaRequest, version: Int16, cluster: ClusterNode) -> EventLoopFuture<KafkaResponse>? {
        let image = broker.metadata.current()
        switch request {
        case .createTopics(let r): return cluster.forwardToController(r, version: version, image: image)
        case .deleteTopics(let r): return cluster.forwardToController(r, version: version, image: image)
        case .createPartitions(let r): return cluster.forwardToController(r, version: version, image: image)
        case .alterConfigs(let r): return cluster.forwardToController(r, version: version, image: image)
        case .incrementalAlterConfigs(let r): return cluster.forwardToController(r, version: version, image: image)
        case .electLeaders(let r): return cluster.forwardToController(r, version: version, image: image)
        case .describeQuorum(let r): return cluster.forwardToController(r, version: version, image: image)
        default: return nil
        }
    }

    private func dispatch(_ request: KafkaRequest, _ context: RequestContext) -> HandlerResult {
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
        case .offsetCommit(let r): return handleOffsetCommit(r, context)
        case .offsetFetch(let r): return .response(.offsetFetch(handleOffsetFetch(r, context)))
        case .listGroups(let r): return .response(.listGroups(handleListGroups(r, context)))
        case .describeGroups(let r): return .response(.describeGroups(handleDescribeGroups(r, context)))
        case .deleteGroups(let r): return .response(.deleteGroups(handleDeleteGroups(r, context)))
        case .offsetDelete(let r): return .response(.offsetDelete(handleOffsetDelete(r, context)))
        case .brokerRegistration(let r): return handleBrokerRegistration(r, context)
        case .brokerHeartbeat(let r): return handleBrokerHeartbeat(r, context)
        case .alterPartition(let r): return handleAlterPartition(r, context)
        case .offsetForLeaderEpoch(let r): return .response(.offsetForLeaderEpoch(handleOffsetForLeaderEpoch(r, context)))
        case .allocateProducerIds: return .response(.allocateProducerIds(handleAllocateProducerIds(context)))
        case .describeQuorum(let r): return .response(.describeQuorum(handleDescribeQuorum(r, context)))
        case .electLeaders(let r): return .response(.electLeaders(handleElectLeaders(r, context)))
        case .vote, .beginQuorumEpoch, .endQuorumEpoch: return handleQuorumRequest(request, context)
        case .fetchSnapshot(let r): return handleFetchSnapshot(r, context)
        default:
            context.logger.warning("\(context.apiKey.name) is not implemented by this broker; answering UNSUPPORTED_VERSION")
            return .response(.errorResponse(apiKey: context.apiKey, version: context.apiVersion, errorCode: KafkaErrorCode.unsupportedVersion.rawValue))
        }
    }
}

extension KafkaErrorCode {
    var code: Int16 { rawValue }
}
