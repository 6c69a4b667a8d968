import KafkaProtocol
import NIOCore

/// Kafka's ConsumerProtocol: the subscription a member sends in JoinGroup and the assignment
/// the leader sends in SyncGroup (`int16 version` then the versioned struct), so Swift,
/// Java and librdkafka members can share one group.
public enum ConsumerProtocol {
    public static let protocolType = "consumer"

    /// A member's subscription as the leader sees it.
    public struct Subscription: Sendable, Hashable {
        public var topics: [String]
        public var ownedPartitions: [TopicPartition]
        /// -1 when the member did not send it (versions before 2).
        public var generationId: Int32
        public var userData: ByteBuffer?
        public var rackId: String?

        public init(topics: [String], ownedPartitions: [TopicPartition] = [], generationId: Int32 = -1, userData: ByteBuffer? = nil, rackId: String? = nil) {
            self.topics = topics
            self.ownedPartitions = ownedPartitions
            self.generationId = generationId
            self.userData = userData
            self.rackId = rackId
        }
    }

    public struct Assignment: Sendable, Hashable {
        public var partitions: [TopicPartition]
        public var userData: ByteBuffer?

        public init(partitions: [TopicPartition], userData: ByteBuffer? = nil) {
            self.partitions = partitions
            self.userData = userData
        }
    }

    static func group(_ parts: [TopicPartition]) -> [(String, [Int32])] {
        var byTopic: [String: [Int32]] = [:]
        for tp in parts { byTopic[tp.topic, default: []].append(tp.partition) }
        return byTopic.keys.sorted().map { ($0, byTopic[$0]!.sorted()) }
    }

    public static func encodeSubscription(_ s: Subscription, version: Int16 = 3) throws(KafkaClientError) -> ByteBuffer {
        var m = ConsumerProtocolSubscription()
        m.topics = s.topics.sorted()
        m.userData = s.userData
        if version >= 1 { m.ownedPartitions = group(s.ownedPartitions).map { .init(topic: $0.0, partitions: $0.1) } }
        if version >= 2 { m.generationId = s.generationId }
        if version >= 3 { m.rackId = s.rackId }
        var buffer = ByteBuffer()
        buffer.writeInteger(version)
        do { try m.encode(into: &buffer, version: version) } catch { throw .protocolViolation("subscription: \(error)") }
        return buffer
    }

    /// Decodes any version; versions above the known ones are read as the latest known (their
    /// extra fields are appended, as Kafka's compatibility rules promise).
    public static func decodeSubscription(_ bytes: ByteBuffer) throws(KafkaClientError) -> Subscription {
        var buffer = bytes
        guard let version = buffer.readInteger(as: Int16.self), version >= 0 else {
            throw .protocolViolation("subscription without a version")
        }
        let v = min(version, ConsumerProtocolSubscription.validVersions.upperBound)
        let m: ConsumerProtocolSubscription
        do { m = try ConsumerProtocolSubscription(from: &buffer, version: v) } catch { throw .protocolViolation("subscription v\(version): \(error)") }
        let owned = m.ownedPartitions.flatMap { t in t.partitions.map { TopicPartition(topic: t.topic, partition: $0) } }
        return Subscription(topics: m.topics, ownedPartitions: owned, generationId: m.generationId, userData: m.userData, rackId: m.rackId)
    }

    public static func encodeAssignment(_ a: Assignment, version: Int16 = 1) throws(KafkaClientError) -> ByteBuffer {
        var m = ConsumerProtocolAssignment()
        m.assignedPartitions = group(a.partitions).map { .init(topic: $0.0, partitions: $0.1) }
        m.userData = a.userData
        var buffer = ByteBuffer()
        buffer.writeInteger(version)
        do { try m.encode(into: &buffer, version: version) } catch { throw .protocolViolation("assignment: \(error)") }
        return buffer
    }

    /// An empty buffer is an empty assignment (what brokers send to members left out).
    public static func decodeAssignment(_ bytes: ByteBuffer) throws(KafkaClientError) -> Assignment {
        if bytes.readableBytes == 0 { return Assignment(partitions: []) }
        var buffer = bytes
        guard let version = buffer.readInteger(as: Int16.self), version >= 0 else {
            throw .protocolViolation("assignment without a version")
        }
        let v = min(version, ConsumerProtocolAssignment.validVersions.upperBound)
        let m: ConsumerProtocolAssignment
        do { m = try ConsumerProtocolAssignment(from: &buffer, version: v) } catch { throw .protocolViolation("assignment v\(version): \(error)") }
        return Assignment(partitions: m.assignedPartitions.flatMap { t in t.partitions.map { TopicPartition(topic: t.topic, partition: $0) } }, userData: m.userData)
    }
}

/// The partition assignment strategies (`partition.assignment.strategy`), with Kafka's names.
public enum AssignorKind: String, Sendable, Hashable, CaseIterable {
    case range = "range"
    case roundRobin = "roundrobin"
    case cooperativeSticky = "cooperative-sticky"

    /// Whether the group uses the incremental (cooperative) rebalance protocol with it.
    public var isCooperative: Bool { self == .cooperativeSticky }
}

/// A group member as the assignor sees it.
public struct AssignorMember: Sendable, Hashable {
    public var memberId: String
    public var groupInstanceId: String?
    public var subscription: ConsumerProtocol.Subscription

    public init(memberId: String, groupInstanceId: String? = nil, subscription: ConsumerProtocol.Subscription) {
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
        self.subscription = subscription
    }

    /// Java sorts members by group instance id when present, else member id.
    var sortKey: String { groupInstanceId ?? memberId }
}

/// Pure assignment functions, as Kafka's `RangeAssignor`, `RoundRobinAssignor` and
/// `CooperativeStickyAssignor` compute them. Every member gets an entry (maybe empty).
public enum Assignors {
    public static func assign(
        _ kind: AssignorKind, members: [AssignorMember], partitionsPerTopic: [String: Int]
    ) -> [String: [TopicPartition]] {
        switch kind {
        case .range: return range(members: members, partitionsPerTopic: partitionsPerTopic)
        case .roundRobin: return roundRobin(members: members, partitionsPerTopic: partitionsPerTopic)
        case .cooperativeSticky: return cooperativeSticky(members: members, partitionsPerTopic: partitionsPerTopic)
        }
    }

    /// Per topic: members subscribed to it sorted, each gets a contiguous range; the first
    /// `partitions % members` get one extra.
    public static func range(members: [AssignorMember], partitionsPerTopic: [String: Int]) -> [String: [TopicPartition]] {
        var result = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, [TopicPartition]()) })
        let sorted = members.sorted { ($0.sortKey, $0.memberId) < ($1.sortKey, $1.memberId) }
        for topic in partitionsPerTopic.keys.sorted() {
            let n = partitionsPerTopic[topic] ?? 0
            let consumers = sorted.filter { $0.subscription.topics.contains(topic) }
            guard !consumers.isEmpty, n > 0 else { continue }
            let per = n / consumers.count
            let extra = n % consumers.count
            for (i, c) in consumers.enumerated() {
                let start = per * i + min(i, extra)
                let length = per + (i + 1 > extra ? 0 : 1)
                for p in start..<(start + length) { result[c.memberId, default: []].append(TopicPartition(topic: topic, partition: Int32(p))) }
            }
        }
        return result
    }

    /// All partitions (topics sorted) dealt in turn to the sorted members subscribed to them.
    public static func roundRobin(members: [AssignorMember], partitionsPerTopic: [String: Int]) -> [String: [TopicPartition]] {
        var result = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, [TopicPartition]()) })
        let sorted = members.sorted { ($0.sortKey, $0.memberId) < ($1.sortKey, $1.memberId) }
        guard !sorted.isEmpty else { return result }
        var next = 0
        for topic in partitionsPerTopic.keys.sorted() {
            for p in 0..<(partitionsPerTopic[topic] ?? 0) {
                for step in 0..<sorted.count {
                    let c = sorted[(next + step) % sorted.count]
                    if c.subscription.topics.contains(topic) {
                        result[c.memberId, default: []].append(TopicPartition(topic: topic, partition: Int32(p)))
                        next = (next + step + 1) % sorted.count
                        break
                    }
                }
            }
        }
        return result
    }

    /// Sticky and balanced: members keep what they own (claims of the highest generation win),
    /// over-full members give up partitions, free partitions go to the least loaded subscribed
    /// member. Cooperative: a partition that changes owner is left unassigned this round (its old
    /// owner revokes it and rejoins; the next round gives it to the new owner).
    public static func cooperativeSticky(members: [AssignorMember], partitionsPerTopic: [String: Int]) -> [String: [TopicPartition]] {
        let sticky = stickyAssignment(members: members, partitionsPerTopic: partitionsPerTopic)
        // Who owned what (validated as in the sticky step).
        var previousOwner: [TopicPartition: String] = [:]
        for m in members { for tp in m.subscription.ownedPartitions { previousOwner[tp] = m.memberId } }
        var result: [String: [TopicPartition]] = [:]
        for (member, parts) in sticky {
            result[member] = parts.filter { tp in
                guard let owner = previousOwner[tp] else { return true }
                return owner == member
            }
        }
        return result
    }

    /// The eager sticky assignment the cooperative variant starts from.
    static func stickyAssignment(members: [AssignorMember], partitionsPerTopic: [String: Int]) -> [String: [TopicPartition]] {
        var assignment = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, [TopicPartition]()) })
        let subscribed = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, Set($0.subscription.topics)) })
        var all: [TopicPartition] = []
        for topic in partitionsPerTopic.keys.sorted() {
            for p in 0..<(partitionsPerTopic[topic] ?? 0) { all.append(TopicPartition(topic: topic, partition: Int32(p))) }
        }
        let valid = Set(all)
        // 1. Keep valid claims; on conflicts the highest generation wins (then member id).
        var claimed: [TopicPartition: (gen: Int32, member: String)] = [:]
        for m in members.sorted(by: { $0.memberId < $1.memberId }) {
            for tp in m.subscription.ownedPartitions where valid.contains(tp) && subscribed[m.memberId]!.contains(tp.topic) {
                if let c = claimed[tp], c.gen >= m.subscription.generationId { continue }
                claimed[tp] = (m.subscription.generationId, m.memberId)
            }
        }
        for (tp, c) in claimed { assignment[c.member, default: []].append(tp) }
        // 2. Over-full members give up partitions beyond their fair share.
        let eligibleCount = { (member: String) -> Int in all.filter { subscribed[member]!.contains($0.topic) }.count }
        let memberCount = max(1, members.count)
        let ceilShare = (all.count + memberCount - 1) / memberCount
        var free: [TopicPartition] = all.filter { claimed[$0] == nil }
        for m in assignment.keys.sorted() {
            var parts = assignment[m]!.sorted()
            let cap = min(ceilShare, eligibleCount(m))
            if parts.count > cap {
                free.append(contentsOf: parts[cap...])
                parts = Array(parts[..<cap])
            }
            assignment[m] = parts
        }
        // 3. Free partitions to the least loaded member subscribed to the topic.
        for tp in free.sorted() {
            let candidates = assignment.keys.filter { subscribed[$0]!.contains(tp.topic) }
            guard let target = candidates.min(by: { (assignment[$0]!.count, $0) < (assignment[$1]!.count, $1) }) else { continue }
            assignment[target]!.append(tp)
        }
        // 4. Balance: move from the most to the least loaded while they differ by 2 or more.
        var moved = true
        var guardCount = 0
        while moved && guardCount < all.count * 2 {
            moved = false
            guardCount += 1
            let byLoad = assignment.keys.sorted { (assignment[$0]!.count, $0) < (assignment[$1]!.count, $1) }
            outer: for high in byLoad.reversed() {
                for low in byLoad where assignment[high]!.count - assignment[low]!.count >= 2 {
                    if let i = assignment[high]!.lastIndex(where: { subscribed[low]!.contains($0.topic) }) {
                        let tp = assignment[high]!.remove(at: i)
                        assignment[low]!.append(tp)
                        moved = true
                        break outer
                    }
                }
            }
        }
        return assignment.mapValues { $0.sorted() }
    }
}
