import KafkaProtocol
import NIOCore

/// A topic to create.
public struct NewTopic: Sendable, Hashable {
    public var name: String
    /// -1: the broker's `num.partitions`.
    public var partitions: Int32
    /// -1: the broker's `default.replication.factor`.
    public var replicationFactor: Int16
    public var configs: [String: String]

    public init(name: String, partitions: Int32 = -1, replicationFactor: Int16 = -1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// What a config belongs to.
public enum ConfigResource: Sendable, Hashable {
    case topic(String)
    case broker(Int32)

    var type: Int8 {
        switch self {
        case .topic: return 2
        case .broker: return 4
        }
    }

    var name: String {
        switch self {
        case let .topic(t): return t
        case let .broker(id): return String(id)
        }
    }
}

/// One config entry as the broker describes it.
public struct ConfigEntry: Sendable, Hashable {
    public var name: String
    public var value: String?
    public var isReadOnly: Bool
    public var isDefault: Bool
    public var isSensitive: Bool
    /// Kafka's ConfigSource id (1 dynamic topic, 4 static broker, 5 default, ...).
    public var source: Int8
}

/// An IncrementalAlterConfigs operation.
public enum AlterConfigOp: Sendable, Hashable {
    case set(String, String)
    case delete(String)
    case append(String, String)
    case subtract(String, String)
}

/// Which offset ListOffsets looks up.
public enum OffsetSpec: Sendable, Hashable {
    case earliest
    case latest
    /// The first offset whose timestamp is at or after this (ms).
    case timestamp(Int64)

    var raw: Int64 {
        switch self {
        case .earliest: return -2
        case .latest: return -1
        case let .timestamp(t): return t
        }
    }
}

/// A group as ListGroups reports it.
public struct GroupListing: Sendable, Hashable {
    public var groupId: String
    public var protocolType: String
    public var state: String
}

/// A group member.
public struct GroupMemberDescription: Sendable, Hashable {
    public var memberId: String
    public var groupInstanceId: String?
    public var clientId: String
    public var clientHost: String
    /// Decoded from the ConsumerProtocol assignment (empty for other protocol types).
    public var assignment: [TopicPartition]
}

/// A group as DescribeGroups reports it.
public struct GroupDescription: Sendable, Hashable {
    public var groupId: String
    public var state: String
    public var protocolType: String
    /// The assignor (for consumer groups).
    public var protocolName: String
    public var members: [GroupMemberDescription]
}

/// Lag of one partition of a consumer group.
public struct PartitionLag: Sendable, Hashable {
    public var topicPartition: TopicPartition
    /// The committed offset, nil when none.
    public var committed: Int64?
    /// The log end offset (high watermark).
    public var endOffset: Int64
    /// endOffset - committed (endOffset - earliest when nothing is committed... here: nil).
    public var lag: Int64?
    /// The member consuming the partition, if the group is active.
    public var memberId: String?
}

/// Admin operations: topics, partitions, configs, groups, offsets, lag, delete records.
/// Errors from the broker are thrown as ``KafkaClientError/broker(_:_:)`` with Kafka's code.
public struct KafkaAdmin: Sendable {
    public let client: KafkaClient

    public init(client: KafkaClient) {
        self.client = client
    }

    // MARK: Topics

    /// Creates topics. `TOPIC_ALREADY_EXISTS` is thrown unless `ignoreExisting`.
    public func createTopics(_ topics: [NewTopic], ignoreExisting: Bool = false, timeoutMs: Int32 = 30_000) async throws(KafkaClientError) {
        var request = CreateTopicsRequest(timeoutMs: timeoutMs)
        request.topics = topics.map { t in
            CreateTopicsRequest.CreatableTopic(
                name: t.name, numPartitions: t.partitions, replicationFactor: t.replicationFactor,
                configs: t.configs.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value) })
        }
        let response = try await client.retrying("CreateTopics") { () async throws(KafkaClientError) in
            try await client.send(request, to: .controller)
        }
        for r in response.topics {
            if ignoreExisting && r.errorCode == KafkaErrorCode.topicAlreadyExists.rawValue { continue }
            try KafkaClientError.check(r.errorCode, r.errorMessage.map { "\(r.name): \($0)" } ?? r.name)
        }
        _ = try? await client.metadata(topics: topics.map(\.name))
    }

    /// Creates one topic.
    public func createTopic(_ name: String, partitions: Int32 = -1, replicationFactor: Int16 = -1, configs: [String: String] = [:]) async throws(KafkaClientError) {
        try await createTopics([NewTopic(name: name, partitions: partitions, replicationFactor: replicationFactor, configs: configs)])
    }

    public func deleteTopics(_ names: [String], timeoutMs: Int32 = 30_000) async throws(KafkaClientError) {
        let connection = try await client.connection(to: .controller)
        let version = try connection.version(for: .deleteTopics)
        var request = DeleteTopicsRequest(timeoutMs: timeoutMs)
        if version >= 6 {
            request.topics = names.map { DeleteTopicsRequest.DeleteTopicState(name: $0) }
        } else {
            request.topicNames = names
        }
        let response = try await connection.send(request, version: version)
        for r in response.responses {
            try KafkaClientError.check(r.errorCode, "\(r.name ?? "?")" + (r.errorMessage.map { ": \($0)" } ?? ""))
        }
    }

    /// Grows a topic to `totalCount` partitions.
    public func createPartitions(topic: String, totalCount: Int32, timeoutMs: Int32 = 30_000) async throws(KafkaClientError) {
        let request = CreatePartitionsRequest(
            topics: [.init(name: topic, count: totalCount, assignments: nil)], timeoutMs: timeoutMs)
        let response = try await client.send(request, to: .controller)
        for r in response.results { try KafkaClientError.check(r.errorCode, r.errorMessage.map { "\(r.name): \($0)" } ?? r.name) }
        _ = try? await client.metadata(topics: [topic])
    }

    /// Every topic name (internal ones too when asked).
    public func listTopics(includeInternal: Bool = false) async throws(KafkaClientError) -> [String] {
        let m = try await client.metadata(topics: nil)
        return m.topics.values.filter { includeInternal || !$0.isInternal }.map(\.name).sorted()
    }

    /// The topics' partitions, leaders, replicas and ISR. Unknown topics throw.
    public func describeTopics(_ names: [String]) async throws(KafkaClientError) -> [TopicInfo] {
        let m = try await client.metadata(topics: names)
        var out: [TopicInfo] = []
        for n in names {
            guard let t = m.topics[n] else { throw .unknownTopic(n) }
            if let e = t.error { throw .broker(e, n) }
            out.append(t)
        }
        return out
    }

    /// Brokers, controller and cluster id.
    public func describeCluster() async throws(KafkaClientError) -> ClusterMetadata {
        var m = try await client.metadata(topics: [])
        m.topics = [:]
        return m
    }

    // MARK: Configs

    public func describeConfigs(_ resource: ConfigResource, keys: [String]? = nil) async throws(KafkaClientError) -> [ConfigEntry] {
        let request = DescribeConfigsRequest(resources: [.init(resourceType: resource.type, resourceName: resource.name, configurationKeys: keys)])
        let target: BrokerTarget = if case let .broker(id) = resource { .node(id) } else { .any }
        let response = try await client.send(request, to: target)
        guard let r = response.results.first else { throw .protocolViolation("DescribeConfigs answer without results") }
        try KafkaClientError.check(r.errorCode, r.errorMessage)
        return r.configs.map {
            ConfigEntry(name: $0.name, value: $0.value, isReadOnly: $0.readOnly, isDefault: $0.isDefault || $0.configSource == 5,
                        isSensitive: $0.isSensitive, source: $0.configSource)
        }
    }

    /// IncrementalAlterConfigs.
    public func alterConfigs(_ resource: ConfigResource, _ operations: [AlterConfigOp]) async throws(KafkaClientError) {
        let configs = operations.map { op -> IncrementalAlterConfigsRequest.AlterableConfig in
            switch op {
            case let .set(k, v): return .init(name: k, configOperation: 0, value: v)
            case let .delete(k): return .init(name: k, configOperation: 1, value: nil)
            case let .append(k, v): return .init(name: k, configOperation: 2, value: v)
            case let .subtract(k, v): return .init(name: k, configOperation: 3, value: v)
            }
        }
        let request = IncrementalAlterConfigsRequest(resources: [.init(resourceType: resource.type, resourceName: resource.name, configs: configs)])
        let target: BrokerTarget = if case let .broker(id) = resource { .node(id) } else { .controller }
        let response = try await client.send(request, to: target)
        for r in response.responses { try KafkaClientError.check(r.errorCode, r.errorMessage) }
    }

    // MARK: Offsets

    /// ListOffsets for each partition, sent to each leader.
    public func listOffsets(_ partitions: [TopicPartition], spec: OffsetSpec) async throws(KafkaClientError) -> [TopicPartition: Int64] {
        try await client.listOffsets(Dictionary(uniqueKeysWithValues: partitions.map { ($0, spec) }))
    }

    /// DeleteRecords: removes records before the offsets (-1: the high watermark). Returns the
    /// new log start offsets.
    public func deleteRecords(_ before: [TopicPartition: Int64], timeoutMs: Int32 = 30_000) async throws(KafkaClientError) -> [TopicPartition: Int64] {
        var byLeader: [Int32: [TopicPartition: Int64]] = [:]
        for (tp, offset) in before { byLeader[try await client.core.leader(for: tp), default: [:]][tp] = offset }
        var out: [TopicPartition: Int64] = [:]
        for (leader, parts) in byLeader {
            var topics: [String: [DeleteRecordsRequest.DeleteRecordsPartition]] = [:]
            for (tp, o) in parts { topics[tp.topic, default: []].append(.init(partitionIndex: tp.partition, offset: o)) }
            let request = DeleteRecordsRequest(topics: topics.map { .init(name: $0.key, partitions: $0.value) }, timeoutMs: timeoutMs)
            let response = try await client.send(request, to: .node(leader))
            for t in response.topics {
                for p in t.partitions {
                    try KafkaClientError.check(p.errorCode, "\(t.name)-\(p.partitionIndex)")
                    out[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.lowWatermark
                }
            }
        }
        return out
    }

    // MARK: Groups

    /// Every group the brokers know.
    public func listGroups() async throws(KafkaClientError) -> [GroupListing] {
        let m = try await client.metadata(topics: [])
        var out: [GroupListing] = []
        let nodes = m.brokers.isEmpty ? [Int32(-1)] : Array(m.brokers.keys)
        for node in nodes {
            let response = try await client.send(ListGroupsRequest(), to: node < 0 ? .any : .node(node))
            try KafkaClientError.check(response.errorCode)
            out += response.groups.map { GroupListing(groupId: $0.groupId, protocolType: $0.protocolType, state: $0.groupState) }
        }
        return out.sorted { $0.groupId < $1.groupId }
    }

    public func describeGroups(_ groups: [String]) async throws(KafkaClientError) -> [GroupDescription] {
        var out: [GroupDescription] = []
        for g in groups {
            let node = try await client.findCoordinator(group: g)
            let response = try await client.send(DescribeGroupsRequest(groups: [g]), to: .node(node))
            for d in response.groups {
                try KafkaClientError.check(d.errorCode, d.groupId)
                let members = d.members.map { m -> GroupMemberDescription in
                    var assignment: [TopicPartition] = []
                    if d.protocolType == "consumer", let a = try? ConsumerProtocol.decodeAssignment(m.memberAssignment) {
                        assignment = a.partitions
                    }
                    return GroupMemberDescription(memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId,
                                                  clientHost: m.clientHost, assignment: assignment)
                }
                out.append(GroupDescription(groupId: d.groupId, state: d.groupState, protocolType: d.protocolType,
                                            protocolName: d.protocolData, members: members))
            }
        }
        return out
    }

    public func deleteGroups(_ groups: [String]) async throws(KafkaClientError) {
        for g in groups {
            let node = try await client.findCoordinator(group: g)
            let response = try await client.send(DeleteGroupsRequest(groupsNames: [g]), to: .node(node))
            for r in response.results { try KafkaClientError.check(r.errorCode, r.groupId) }
        }
    }

    /// The group's committed offsets (all partitions when `partitions` is nil).
    public func committedOffsets(group: String, partitions: [TopicPartition]? = nil) async throws(KafkaClientError) -> [TopicPartition: Int64] {
        try await client.fetchCommitted(group: group, partitions: partitions)
    }

    /// Sets a group's committed offsets (the group must have no active members), as
    /// `kafka-consumer-groups --reset-offsets` does.
    public func alterGroupOffsets(group: String, offsets: [TopicPartition: Int64]) async throws(KafkaClientError) {
        try await client.commit(group: group, generation: -1, memberId: "", offsets: offsets)
    }

    /// Per partition of every topic the group committed to (or of `topics`): committed offset,
    /// end offset, lag.
    public func consumerLag(group: String, topics: [String]? = nil) async throws(KafkaClientError) -> [PartitionLag] {
        var asked: [TopicPartition]?
        if let topics {
            let m = try await client.metadata(topics: topics)
            asked = topics.flatMap { t in (m.topics[t]?.partitions ?? []).map { TopicPartition(topic: t, partition: $0.partition) } }
        }
        let committed = try await committedOffsets(group: group, partitions: asked)
        var owners: [TopicPartition: String] = [:]
        if let d = try? await describeGroups([group]).first {
            for m in d.members { for tp in m.assignment { owners[tp] = m.memberId } }
        }
        var partitions = Set(committed.keys).union(owners.keys).union(asked ?? [])
        // Include every partition of the topics involved.
        let topics = Set(partitions.map(\.topic))
        if !topics.isEmpty {
            let m = try await client.metadata(topics: Array(topics))
            for t in topics { for p in m.topics[t]?.partitions ?? [] { partitions.insert(TopicPartition(topic: t, partition: p.partition)) } }
        }
        let ends = try await listOffsets(Array(partitions), spec: .latest)
        return partitions.sorted().map { tp in
            let end = ends[tp] ?? -1
            let c = committed[tp]
            return PartitionLag(topicPartition: tp, committed: c, endOffset: end, lag: c.map { max(0, end - $0) }, memberId: owners[tp])
        }
    }
}

extension KafkaClient {
    /// ListOffsets per leader. Retries retriable errors.
    func listOffsets(_ specs: [TopicPartition: OffsetSpec]) async throws(KafkaClientError) -> [TopicPartition: Int64] {
        try await retrying("ListOffsets") { () async throws(KafkaClientError) -> [TopicPartition: Int64] in
            var byLeader: [Int32: [TopicPartition: OffsetSpec]] = [:]
            for (tp, s) in specs { byLeader[try await core.leader(for: tp), default: [:]][tp] = s }
            var out: [TopicPartition: Int64] = [:]
            for (leader, parts) in byLeader {
                var topics: [String: [ListOffsetsRequest.ListOffsetsPartition]] = [:]
                for (tp, s) in parts { topics[tp.topic, default: []].append(.init(partitionIndex: tp.partition, timestamp: s.raw)) }
                let request = ListOffsetsRequest(replicaId: -1, topics: topics.map { .init(name: $0.key, partitions: $0.value) })
                let response = try await send(request, to: .node(leader))
                for t in response.topics {
                    for p in t.partitions {
                        try KafkaClientError.check(p.errorCode, "\(t.name)-\(p.partitionIndex)")
                        out[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.offset
                    }
                }
            }
            return out
        }
    }

    /// OffsetFetch from the group's coordinator. Partitions without a commit are left out.
    func fetchCommitted(group: String, partitions: [TopicPartition]?) async throws(KafkaClientError) -> [TopicPartition: Int64] {
        try await retrying("OffsetFetch \(group)") { () async throws(KafkaClientError) -> [TopicPartition: Int64] in
            let node = try await findCoordinator(group: group)
            var request = OffsetFetchRequest(groupId: group)
            if let partitions {
                var topics: [String: [Int32]] = [:]
                for tp in partitions { topics[tp.topic, default: []].append(tp.partition) }
                request.topics = topics.map { .init(name: $0.key, partitionIndexes: $0.value) }
            } else {
                request.topics = nil
            }
            let response = try await send(request, to: .node(node))
            try KafkaClientError.check(response.errorCode, group)
            var out: [TopicPartition: Int64] = [:]
            for t in response.topics {
                for p in t.partitions {
                    try KafkaClientError.check(p.errorCode, "\(t.name)-\(p.partitionIndex)")
                    if p.committedOffset >= 0 { out[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.committedOffset }
                }
            }
            return out
        }
    }

    /// OffsetCommit to the group's coordinator.
    func commit(group: String, generation: Int32, memberId: String, groupInstanceId: String? = nil, offsets: [TopicPartition: Int64]) async throws(KafkaClientError) {
        guard !offsets.isEmpty else { return }
        try await retrying("OffsetCommit \(group)") { () async throws(KafkaClientError) in
            let node = try await findCoordinator(group: group)
            var topics: [String: [OffsetCommitRequest.OffsetCommitRequestPartition]] = [:]
            for (tp, o) in offsets { topics[tp.topic, default: []].append(.init(partitionIndex: tp.partition, committedOffset: o)) }
            let connection = try await core.connection(to: .node(node))
            let version = try connection.version(for: .offsetCommit)
            var request = OffsetCommitRequest(
                groupId: group, generationIdOrMemberEpoch: generation, memberId: memberId,
                topics: topics.map { .init(name: $0.key, partitions: $0.value) })
            if version >= 7 { request.groupInstanceId = groupInstanceId }
            let response = try await connection.send(request, version: version)
            for t in response.topics {
                for p in t.partitions { try KafkaClientError.check(p.errorCode, "\(t.name)-\(p.partitionIndex)") }
            }
        }
    }
}
