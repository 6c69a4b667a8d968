import KafkaProtocol
import LogStorage
import NIOCore

/// The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), committed offsets
/// (OffsetCommit, OffsetFetch, OffsetDelete) and group administration (ListGroups,
/// DescribeGroups, DeleteGroups), served by `GroupCoordinator`.
extension RequestRouter {
    private func coordinator(_ context: RequestContext) -> GroupCoordinator { broker.groupCoordinator(context.eventLoop) }

    func handleJoinGroup(_ request: JoinGroupRequest, _ context: RequestContext) -> HandlerResult {
        let version = context.apiVersion
        let input = JoinInput(
            memberId: request.memberId, groupInstanceId: version >= 5 ? request.groupInstanceId : nil,
            clientId: context.clientId ?? "", clientHost: "/" + Self.hostOnly(context.clientAddress),
            sessionTimeoutMs: request.sessionTimeoutMs,
            rebalanceTimeoutMs: version >= 1 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
            protocolType: request.protocolType, protocols: request.protocols.map { ($0.name, $0.metadata) },
            requireKnownMemberId: version >= 4, supportsSkipAssignment: version >= 9)
        let future = coordinator(context).join(groupId: request.groupId, input: input, eventLoop: context.eventLoop)
        return .deferred(future.map { r in
            var response = JoinGroupResponse()
            response.errorCode = r.error.code
            response.generationId = r.error == .none ? r.generationId : -1
            response.memberId = r.memberId
            response.leader = r.error == .none ? r.leader : ""
            if version >= 7 {
                response.protocolType = r.error == .none ? r.protocolType : nil
                response.protocolName = r.error == .none ? r.protocolName : nil
            } else {
                response.protocolName = r.error == .none ? (r.protocolName ?? "") : ""
            }
            if version >= 9 { response.skipAssignment = r.skipAssignment }
            response.members = r.members.map {
                .init(memberId: $0.memberId, groupInstanceId: version >= 5 ? $0.groupInstanceId : nil, metadata: $0.metadata)
            }
            if r.error != .none && r.error != .memberIdRequired {
                context.logger.debug("JoinGroup \(request.groupId) member \(request.memberId): \(r.error.name)")
            }
            return .joinGroup(response)
        })
    }

    func handleSyncGroup(_ request: SyncGroupRequest, _ context: RequestContext) -> HandlerResult {
        let version = context.apiVersion
        var assignments: [String: ByteBuffer] = [:]
        for a in request.assignments { assignments[a.memberId] = a.assignment }
        let future = coordinator(context).sync(
            groupId: request.groupId, memberId: request.memberId, instanceId: version >= 3 ? request.groupInstanceId : nil,
            generationId: request.generationId, protocolType: version >= 5 ? request.protocolType : nil,
            protocolName: version >= 5 ? request.protocolName : nil, assignments: assignments, eventLoop: context.eventLoop)
        return .deferred(future.map { r in
            var response = SyncGroupResponse()
            response.errorCode = r.error.code
            if version >= 5 && r.error == .none {
                response.protocolType = r.protocolType
                response.protocolName = r.protocolName
            }
            response.assignment = r.assignment
            return .syncGroup(response)
        })
    }

    func handleHeartbeat(_ request: HeartbeatRequest, _ context: RequestContext) -> HeartbeatResponse {
        let e = coordinator(context).heartbeat(
            groupId: request.groupId, memberId: request.memberId,
            instanceId: context.apiVersion >= 3 ? request.groupInstanceId : nil, generationId: request.generationId)
        var response = HeartbeatResponse()
        response.errorCode = e.code
        return response
    }

    func handleLeaveGroup(_ request: LeaveGroupRequest, _ context: RequestContext) -> LeaveGroupResponse {
        var response = LeaveGroupResponse()
        if context.apiVersion < 3 {
            let (top, errors) = coordinator(context).leave(groupId: request.groupId, members: [(request.memberId, nil)])
            response.errorCode = top != .none ? top.code : (errors.first ?? .none).code
            return response
        }
        let identities = request.members.map { (memberId: $0.memberId, instanceId: $0.groupInstanceId) }
        let (top, errors) = coordinator(context).leave(groupId: request.groupId, members: identities)
        response.errorCode = top.code
        if top == .none {
            response.members = zip(request.members, errors).map {
                .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, errorCode: $1.code)
            }
        }
        return response
    }

    private func topicExists(_ tp: TopicPartition) -> Bool {
        guard let t = broker.metadata.current().topics[tp.topic] else { return false }
        return tp.partition >= 0 && Int(tp.partition) < t.partitions.count
    }

    func handleOffsetCommit(_ request: OffsetCommitRequest, _ context: RequestContext) -> HandlerResult {
        let version = context.apiVersion
        var offsets: [(TopicPartition, offset: Int64, leaderEpoch: Int32, metadata: String?, timestamp: Int64)] = []
        for t in request.topics {
            for p in t.partitions {
                offsets.append((TopicPartition(topic: t.name, partition: p.partitionIndex), p.committedOffset,
                                version >= 6 ? p.committedLeaderEpoch : -1, p.committedMetadata, version == 1 ? p.commitTimestamp : -1))
            }
        }
        let commit = GroupCoordinator.CommitRequest(
            groupId: request.groupId, generationId: version >= 1 ? request.generationIdOrMemberEpoch : -1,
            memberId: version >= 1 ? request.memberId : "", instanceId: version >= 7 ? request.groupInstanceId : nil,
            retentionMs: (2...4).contains(version) ? request.retentionTimeMs : -1, offsets: offsets)
        let errors = coordinator(context).commit(commit) { topicExists($0) }
        var response = OffsetCommitResponse()
        var i = 0
        for t in request.topics {
            var rt = OffsetCommitResponse.OffsetCommitResponseTopic(name: t.name)
            for p in t.partitions {
                rt.partitions.append(.init(partitionIndex: p.partitionIndex, errorCode: errors[i].code))
                i += 1
            }
            response.topics.append(rt)
        }
        // Replicated `__consumer_offsets`: the commit is answered once the partition's ISR has it,
        // so a new coordinator finds it after a failover.
        let tp = TopicPartition(topic: GroupCoordinator.topicName, partition: coordinator(context).partition(for: request.groupId))
        guard broker.cluster != nil, errors.contains(where: { $0 == .none }), let partition = broker.replicas.partition(tp),
              partition.highWatermark < partition.log.logEndOffset else {
            return .response(.offsetCommit(response))
        }
        let answer = response
        let future = partition.awaitHighWatermark(partition.log.logEndOffset, eventLoop: context.eventLoop, timeout: .seconds(5))
            .map { code -> KafkaResponse in
                guard code != .none && code != .notEnoughReplicasAfterAppend else { return .offsetCommit(answer) }
                var failed = answer
                let mapped: KafkaErrorCode = code == .notLeaderOrFollower ? .notCoordinator : .requestTimedOut
                for t in failed.topics.indices {
                    for p in failed.topics[t].partitions.indices where failed.topics[t].partitions[p].errorCode == 0 {
                        failed.topics[t].partitions[p].errorCode = mapped.code
                    }
                }
                return .offsetCommit(failed)
            }
        return .deferred(future)
    }

    func handleOffsetFetch(_ request: OffsetFetchRequest, _ context: RequestContext) -> OffsetFetchResponse {
        let version = context.apiVersion
        var response = OffsetFetchResponse()
        let c = coordinator(context)
        if version >= 8 {
            for g in request.groups {
                let wanted = g.topics.map { ts in ts.flatMap { t in t.partitionIndexes.map { TopicPartition(topic: t.name, partition: $0) } } }
                let (e, offsets) = c.fetchOffsets(groupId: g.groupId, partitions: wanted)
                var rg = OffsetFetchResponse.OffsetFetchResponseGroup(groupId: g.groupId, errorCode: e.code)
                if e == .none {
                    var byTopic: [(String, [OffsetFetchResponse.OffsetFetchResponsePartitions])] = []
                    for (tp, o) in offsets {
                        let p = OffsetFetchResponse.OffsetFetchResponsePartitions(
                            partitionIndex: tp.partition, committedOffset: o?.offset ?? -1, committedLeaderEpoch: o?.leaderEpoch ?? -1,
                            metadata: o?.metadata ?? "", errorCode: 0)
                        if let i = byTopic.firstIndex(where: { $0.0 == tp.topic }) { byTopic[i].1.append(p) } else { byTopic.append((tp.topic, [p])) }
                    }
                    rg.topics = byTopic.map { .init(name: $0.0, partitions: $0.1) }
                }
                response.groups.append(rg)
            }
            return response
        }
        let topics = version >= 2 ? request.topics : (request.topics ?? [])
        let wanted = topics.map { ts in ts.flatMap { t in t.partitionIndexes.map { TopicPartition(topic: t.name, partition: $0) } } }
        let (e, offsets) = c.fetchOffsets(groupId: request.groupId, partitions: wanted)
        var byTopic: [(String, [OffsetFetchResponse.OffsetFetchResponsePartition])] = []
        let rows: [(TopicPartition, CommittedOffset?)] = e == .none || version >= 2 ? offsets : (wanted ?? []).map { ($0, nil) }
        for (tp, o) in rows {
            let p = OffsetFetchResponse.OffsetFetchResponsePartition(
                partitionIndex: tp.partition, committedOffset: o?.offset ?? -1, committedLeaderEpoch: version >= 5 ? (o?.leaderEpoch ?? -1) : -1,
                metadata: o?.metadata ?? "", errorCode: version < 2 ? e.code : 0)
            if let i = byTopic.firstIndex(where: { $0.0 == tp.topic }) { byTopic[i].1.append(p) } else { byTopic.append((tp.topic, [p])) }
        }
        response.topics = byTopic.map { .init(name: $0.0, partitions: $0.1) }
        if version >= 2 { response.errorCode = e.code }
        return response
    }

    func handleListGroups(_ request: ListGroupsRequest, _ context: RequestContext) -> ListGroupsResponse {
        let version = context.apiVersion
        let states = Set((version >= 4 ? request.statesFilter : []).map { $0.lowercased() })
        let types = Set((version >= 5 ? request.typesFilter : []).map { $0.lowercased() })
        var response = ListGroupsResponse()
        for g in coordinator(context).listGroups() {
            if !states.isEmpty && !states.contains(g.state.lowercased()) { continue }
            if !types.isEmpty && !types.contains("classic") { continue }
            var listed = ListGroupsResponse.ListedGroup(groupId: g.groupId, protocolType: g.protocolType)
            if version >= 4 { listed.groupState = g.state }
            if version >= 5 { listed.groupType = "classic" }
            response.groups.append(listed)
        }
        return response
    }

    func handleDescribeGroups(_ request: DescribeGroupsRequest, _ context: RequestContext) -> DescribeGroupsResponse {
        var response = DescribeGroupsResponse()
        let c = coordinator(context)
        for id in request.groups {
            var d = DescribeGroupsResponse.DescribedGroup(groupId: id)
            let (e, group) = c.describe(groupId: id)
            d.errorCode = e.code
            if e == .none {
                if let g = group {
                    d.groupState = g.phase.rawValue
                    d.protocolType = g.protocolType ?? ""
                    let stable = g.phase == .stable
                    d.protocolData = stable ? (g.protocolName ?? "") : ""
                    d.members = g.members.map { m in
                        .init(memberId: m.memberId, groupInstanceId: context.apiVersion >= 4 ? m.groupInstanceId : nil,
                              clientId: m.clientId, clientHost: m.clientHost,
                              memberMetadata: stable ? m.metadata(for: g.protocolName) : ByteBuffer(),
                              memberAssignment: stable ? m.assignment : ByteBuffer())
                    }
                } else {
                    d.groupState = GroupPhase.dead.rawValue
                }
            }
            response.groups.append(d)
        }
        return response
    }

    func handleDeleteGroups(_ request: DeleteGroupsRequest, _ context: RequestContext) -> DeleteGroupsResponse {
        var response = DeleteGroupsResponse()
        let c = coordinator(context)
        response.results = request.groupsNames.map { .init(groupId: $0, errorCode: c.deleteGroup($0).code) }
        return response
    }

    func handleOffsetDelete(_ request: OffsetDeleteRequest, _ context: RequestContext) -> OffsetDeleteResponse {
        var response = OffsetDeleteResponse()
        var partitions: [TopicPartition] = []
        for t in request.topics { for p in t.partitions { partitions.append(TopicPartition(topic: t.name, partition: p.partitionIndex)) } }
        let (e, errors) = coordinator(context).deleteOffsets(groupId: request.groupId, partitions: partitions)
        response.errorCode = e.code
        guard e == .none else { return response }
        var i = 0
        for t in request.topics {
            var rt = OffsetDeleteResponse.OffsetDeleteResponseTopic(name: t.name)
            for p in t.partitions {
                let known = topicExists(TopicPartition(topic: t.name, partition: p.partitionIndex))
                rt.partitions.append(.init(partitionIndex: p.partitionIndex, errorCode: known ? errors[i].code : KafkaErrorCode.unknownTopicOrPartition.code))
                i += 1
            }
            response.topics.append(rt)
        }
        return response
    }

    /// FindCoordinator: a group maps to its `__consumer_offsets` partition, whose leader is the
    /// coordinator (the topic is created on first need). Transaction coordinators are not served.
    func handleFindCoordinator(_ request: FindCoordinatorRequest, _ context: RequestContext) -> FindCoordinatorResponse {
        let version = context.apiVersion
        let keyType = version >= 1 ? request.keyType : 0
        let keys = version >= 4 ? request.coordinatorKeys : [request.key]
        let image = { self.broker.metadata.current() }
        let answers = keys.map { key -> FindCoordinatorResponse.Coordinator in
            var c = FindCoordinatorResponse.Coordinator(key: key, nodeId: -1, host: "", port: -1, errorCode: 0, errorMessage: nil)
            switch keyType {
            case 0:
                let (node, error) = coordinator(context).coordinatorNode(for: key)
                if let error {
                    c.errorCode = error.code
                    c.errorMessage = error.name
                } else if let b = broker.aliveBrokers(image(), listener: context.listenerName).first(where: { $0.id == node }) {
                    c.nodeId = b.id
                    c.host = b.host
                    c.port = b.port
                } else {
                    c.errorCode = KafkaErrorCode.coordinatorNotAvailable.code
                    c.errorMessage = "the coordinator node \(node) is not available"
                }
            case 1:
                c.errorCode = KafkaErrorCode.coordinatorNotAvailable.code
                c.errorMessage = "transaction coordinators are not available on this broker yet"
            default:
                c.errorCode = KafkaErrorCode.invalidRequest.code
                c.errorMessage = "unknown coordinator key type \(keyType)"
            }
            return c
        }
        var response = FindCoordinatorResponse()
        if version >= 4 {
            response.coordinators = answers
        } else if let a = answers.first {
            response.errorCode = a.errorCode
            response.errorMessage = version >= 1 ? a.errorMessage : nil
            response.nodeId = a.nodeId
            response.host = a.host
            response.port = a.port
        }
        return response
    }

    static func hostOnly(_ address: String) -> String {
        if let i = address.lastIndex(of: ":"), !address.hasPrefix("[") || address[..<i].hasSuffix("]") {
            return String(address[..<i]).trimmingCharacters(in: ["[", "]"])
        }
        return address
    }
}
