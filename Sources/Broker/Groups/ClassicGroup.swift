import Foundation
import KafkaProtocol
import NIOCore

/// Kafka's classic group states.
enum GroupPhase: String, Sendable, CaseIterable {
    case empty = "Empty"
    case preparingRebalance = "PreparingRebalance"
    case completingRebalance = "CompletingRebalance"
    case stable = "Stable"
    case dead = "Dead"
}

struct GroupMember: Sendable {
    var memberId: String
    var groupInstanceId: String?
    var clientId: String
    var clientHost: String
    var sessionTimeoutMs: Int32
    var rebalanceTimeoutMs: Int32
    var protocolType: String
    var protocols: [(name: String, metadata: ByteBuffer)]
    var assignment = ByteBuffer()
    /// The pending JoinGroup / SyncGroup request (an opaque token the coordinator maps to a promise).
    var awaitingJoin: Int?
    var awaitingSync: Int?
    var sessionDeadline: Int64 = 0

    func metadata(for protocolName: String?) -> ByteBuffer {
        protocols.first { $0.name == protocolName }?.metadata ?? ByteBuffer()
    }

    func sameProtocols(_ other: [(name: String, metadata: ByteBuffer)]) -> Bool {
        protocols.count == other.count && zip(protocols, other).allSatisfy { $0.name == $1.name && $0.metadata == $1.metadata }
    }
}

/// What a JoinGroup is answered with (the handler shapes it for the request version).
struct JoinResult: Sendable {
    var error: KafkaErrorCode = .none
    var generationId: Int32 = -1
    var protocolType: String?
    var protocolName: String?
    var leader: String = ""
    var memberId: String = ""
    var skipAssignment = false
    var members: [(memberId: String, groupInstanceId: String?, metadata: ByteBuffer)] = []

    static func failure(_ error: KafkaErrorCode, memberId: String = "") -> JoinResult {
        JoinResult(error: error, memberId: memberId)
    }
}

struct SyncResult: Sendable {
    var error: KafkaErrorCode = .none
    var protocolType: String?
    var protocolName: String?
    var assignment = ByteBuffer()
}

/// Outputs of the group state machine, handled by the coordinator in order.
enum GroupOutput: Sendable {
    case join(token: Int, JoinResult)
    case sync(token: Int, SyncResult)
    /// Write the group's metadata record (GroupMetadataValue, or a tombstone when Dead/empty and deleted).
    case persistGroup
}

struct JoinInput: Sendable {
    var memberId: String
    var groupInstanceId: String?
    var clientId: String
    var clientHost: String
    var sessionTimeoutMs: Int32
    var rebalanceTimeoutMs: Int32
    var protocolType: String
    var protocols: [(name: String, metadata: ByteBuffer)]
    /// JoinGroup v4+: a member without an id gets MEMBER_ID_REQUIRED first.
    var requireKnownMemberId: Bool
    /// JoinGroup v9+: the leader of a static group rejoining in Stable may skip assignment.
    var supportsSkipAssignment: Bool = false
}

/// One classic consumer group: Kafka's GroupMetadata plus the join/sync/heartbeat logic of its
/// GroupCoordinator, as a pure state machine. Time comes in as `now` (ms); the coordinator calls
/// `tick(now:)` at `nextDeadline`.
struct ClassicGroup: Sendable {
    let groupId: String
    let initialRebalanceDelayMs: Int64
    private(set) var phase: GroupPhase = .empty
    private(set) var generationId: Int32 = 0
    private(set) var protocolType: String?
    private(set) var protocolName: String?
    private(set) var leaderId: String?
    /// Members in join order (Kafka keeps a LinkedHashMap; the leader falls to the next one).
    private(set) var members: [GroupMember] = []
    /// Members told MEMBER_ID_REQUIRED that have not joined with the id yet: id → deadline.
    private(set) var pendingMembers: [String: Int64] = [:]
    private(set) var stateTimestamp: Int64 = -1

    /// The join phase ends at this time (rebalance timeout, or the initial delay for a new group).
    private var joinDeadline: Int64?
    private var initialDelayEnd: Int64?
    private var initialDelayRemaining: Int64 = 0
    private var newMemberAdded = false
    private var syncDeadline: Int64?

    init(groupId: String, initialRebalanceDelayMs: Int64) {
        self.groupId = groupId
        self.initialRebalanceDelayMs = initialRebalanceDelayMs
    }

    var isEmpty: Bool { members.isEmpty }
    func member(_ id: String) -> GroupMember? { members.first { $0.memberId == id } }
    private func index(_ id: String) -> Int? { members.firstIndex { $0.memberId == id } }
    func staticMemberId(_ instanceId: String) -> String? { members.first { $0.groupInstanceId == instanceId }?.memberId }

    // MARK: restore

    /// Rebuilds the group from its last GroupMetadataValue record.
    mutating func restore(_ value: GroupMetadataValue, now: Int64) {
        protocolType = value.protocolType.isEmpty ? nil : value.protocolType
        generationId = value.generation
        protocolName = value.protocol
        leaderId = value.leader
        stateTimestamp = value.currentStateTimestamp
        members = value.members.map { m in
            var protocols: [(name: String, metadata: ByteBuffer)] = []
            if let p = value.protocol { protocols = [(p, m.subscription)] }
            var member = GroupMember(
                memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
                sessionTimeoutMs: m.sessionTimeout, rebalanceTimeoutMs: m.rebalanceTimeout == -1 ? m.sessionTimeout : m.rebalanceTimeout,
                protocolType: value.protocolType, protocols: protocols, assignment: m.assignment)
            member.sessionDeadline = now + Int64(m.sessionTimeout)
            return member
        }
        phase = members.isEmpty ? .empty : .stable
    }

    /// The GroupMetadataValue (v3) Kafka writes for this group.
    func metadataValue() -> GroupMetadataValue {
        var v = GroupMetadataValue()
        v.protocolType = protocolType ?? ""
        v.generation = generationId
        v.protocol = protocolName
        v.leader = leaderId
        v.currentStateTimestamp = stateTimestamp
        v.members = members.map { m in
            .init(memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
                  rebalanceTimeout: m.rebalanceTimeoutMs, sessionTimeout: m.sessionTimeoutMs,
                  subscription: m.metadata(for: protocolName), assignment: m.assignment)
        }
        return v
    }

    // MARK: protocol selection

    /// Protocols every member supports.
    func candidateProtocols() -> [String] {
        guard let first = members.first else { return [] }
        return first.protocols.map(\.name).filter { name in members.allSatisfy { m in m.protocols.contains { $0.name == name } } }
    }

    /// Each member votes for its most preferred candidate; the most votes win, ties going to the
    /// protocol voted for first in member order.
    func selectProtocol() -> String? {
        let candidates = Set(candidateProtocols())
        guard !candidates.isEmpty else { return nil }
        var order: [String] = []
        var votes: [String: Int] = [:]
        for m in members {
            guard let vote = m.protocols.first(where: { candidates.contains($0.name) })?.name else { continue }
            if votes[vote] == nil { order.append(vote) }
            votes[vote, default: 0] += 1
        }
        var best: String?
        for p in order where best == nil || votes[p]! > votes[best!]! { best = p }
        return best
    }

    /// Whether a joining member's protocols fit the group (type matches, one protocol in common).
    func supportsProtocols(type: String, _ protocols: [(name: String, metadata: ByteBuffer)]) -> Bool {
        if members.isEmpty { return !type.isEmpty && !protocols.isEmpty }
        guard type == protocolType else { return false }
        let candidates = Set(candidateProtocols())
        return protocols.contains { candidates.contains($0.name) }
    }

    // MARK: join

    mutating func join(_ input: JoinInput, token: Int, now: Int64, newMemberId: () -> String) -> [GroupOutput] {
        if phase == .dead { return [.join(token: token, .failure(.coordinatorNotAvailable))] }
        if input.memberId.isEmpty {
            return joinUnknownMember(input, token: token, now: now, newMemberId: newMemberId)
        }
        // A known (or pending) member.
        if let deadline = pendingMembers[input.memberId] {
            _ = deadline
            guard supportsProtocols(type: input.protocolType, input.protocols) else {
                return [.join(token: token, .failure(.inconsistentGroupProtocol, memberId: input.memberId))]
            }
            pendingMembers[input.memberId] = nil
            return addMemberAndRebalance(input, memberId: input.memberId, token: token, now: now)
        }
        if let instance = input.groupInstanceId, let current = staticMemberId(instance), current != input.memberId {
            return [.join(token: token, .failure(.fencedInstanceId, memberId: input.memberId))]
        }
        guard let i = index(input.memberId), phase != .empty else {
            return [.join(token: token, .failure(.unknownMemberId, memberId: input.memberId))]
        }
        guard supportsProtocols(type: input.protocolType, input.protocols) else {
            return [.join(token: token, .failure(.inconsistentGroupProtocol, memberId: input.memberId))]
        }
        var outputs: [GroupOutput] = []
        // A join already waiting for this member is superseded (Kafka answers the old one with UNKNOWN_MEMBER_ID... here: the new one wins).
        if let old = members[i].awaitingJoin {
            outputs.append(.join(token: old, .failure(.unknownMemberId, memberId: input.memberId)))
            members[i].awaitingJoin = nil
        }
        switch phase {
        case .preparingRebalance:
            update(i, input, token: token, now: now)
            outputs += tryCompleteJoin(now: now)
        case .completingRebalance:
            if members[i].sameProtocols(input.protocols) {
                // The member lost the JoinGroup response: send it again.
                members[i].sessionDeadline = now + Int64(members[i].sessionTimeoutMs)
                outputs.append(.join(token: token, joinResult(for: input.memberId)))
            } else {
                update(i, input, token: token, now: now)
                outputs += prepareRebalance(now: now)
            }
        case .stable:
            if input.memberId == leaderId || !members[i].sameProtocols(input.protocols) {
                update(i, input, token: token, now: now)
                outputs += prepareRebalance(now: now)
            } else {
                members[i].sessionDeadline = now + Int64(members[i].sessionTimeoutMs)
                var r = joinResult(for: input.memberId)
                r.members = []
                outputs.append(.join(token: token, r))
            }
        case .empty, .dead:
            outputs.append(.join(token: token, .failure(.unknownMemberId, memberId: input.memberId)))
        }
        return outputs
    }

    private mutating func joinUnknownMember(_ input: JoinInput, token: Int, now: Int64, newMemberId: () -> String) -> [GroupOutput] {
        guard supportsProtocols(type: input.protocolType, input.protocols) else {
            return [.join(token: token, .failure(.inconsistentGroupProtocol))]
        }
        let memberId = newMemberId()
        if let instance = input.groupInstanceId {
            if let oldId = staticMemberId(instance) {
                return replaceStaticMember(input, oldId: oldId, newId: memberId, token: token, now: now)
            }
            return addMemberAndRebalance(input, memberId: memberId, token: token, now: now)
        }
        if input.requireKnownMemberId {
            pendingMembers[memberId] = now + Int64(input.sessionTimeoutMs)
            return [.join(token: token, .failure(.memberIdRequired, memberId: memberId))]
        }
        return addMemberAndRebalance(input, memberId: memberId, token: token, now: now)
    }

    /// A static member rejoined with a new member id: the old id is fenced and replaced; in
    /// Stable with unchanged protocols there is no rebalance (KIP-345).
    private mutating func replaceStaticMember(_ input: JoinInput, oldId: String, newId: String, token: Int, now: Int64) -> [GroupOutput] {
        guard let i = index(oldId) else { return [] }
        var outputs: [GroupOutput] = []
        if let old = members[i].awaitingJoin {
            outputs.append(.join(token: old, .failure(.fencedInstanceId, memberId: oldId)))
        }
        if let old = members[i].awaitingSync {
            outputs.append(.sync(token: old, SyncResult(error: .fencedInstanceId)))
        }
        let protocolsChanged = !members[i].sameProtocols(input.protocols)
        let previousLeader = leaderId ?? ""
        members[i].memberId = newId
        members[i].awaitingJoin = nil
        members[i].awaitingSync = nil
        members[i].clientId = input.clientId
        members[i].clientHost = input.clientHost
        members[i].sessionTimeoutMs = input.sessionTimeoutMs
        members[i].rebalanceTimeoutMs = input.rebalanceTimeoutMs
        members[i].sessionDeadline = now + Int64(input.sessionTimeoutMs)
        if leaderId == oldId { leaderId = newId }
        switch phase {
        case .stable where !protocolsChanged:
            outputs.append(.persistGroup)
            var r = joinResult(for: newId)
            if newId == leaderId && input.supportsSkipAssignment {
                r.skipAssignment = true
            } else {
                // As Kafka: the previous leader id, so a rejoining leader does not assign for a
                // Stable group (its assignment would not be handed out).
                r.members = []
                r.leader = previousLeader
            }
            outputs.append(.join(token: token, r))
        case .preparingRebalance:
            members[i].protocols = input.protocols
            members[i].awaitingJoin = token
            outputs += tryCompleteJoin(now: now)
        default:
            members[i].protocols = input.protocols
            members[i].awaitingJoin = token
            outputs += prepareRebalance(now: now)
        }
        return outputs
    }

    private mutating func update(_ i: Int, _ input: JoinInput, token: Int, now: Int64) {
        members[i].protocols = input.protocols
        members[i].clientId = input.clientId
        members[i].clientHost = input.clientHost
        members[i].sessionTimeoutMs = input.sessionTimeoutMs
        members[i].rebalanceTimeoutMs = input.rebalanceTimeoutMs
        members[i].awaitingJoin = token
        members[i].sessionDeadline = now + Int64(input.sessionTimeoutMs)
    }

    private mutating func addMemberAndRebalance(_ input: JoinInput, memberId: String, token: Int, now: Int64) -> [GroupOutput] {
        var m = GroupMember(
            memberId: memberId, groupInstanceId: input.groupInstanceId, clientId: input.clientId, clientHost: input.clientHost,
            sessionTimeoutMs: input.sessionTimeoutMs, rebalanceTimeoutMs: input.rebalanceTimeoutMs,
            protocolType: input.protocolType, protocols: input.protocols)
        m.awaitingJoin = token
        m.sessionDeadline = now + Int64(input.sessionTimeoutMs)
        if members.isEmpty { protocolType = input.protocolType }
        members.append(m)
        if leaderId == nil { leaderId = memberId }
        newMemberAdded = true
        if phase == .preparingRebalance { return tryCompleteJoin(now: now) }
        return prepareRebalance(now: now)
    }

    private var maxRebalanceTimeout: Int64 { Int64(members.map(\.rebalanceTimeoutMs).max() ?? 0) }

    private mutating func prepareRebalance(now: Int64) -> [GroupOutput] {
        var outputs: [GroupOutput] = []
        if phase == .completingRebalance {
            for i in members.indices {
                if let t = members[i].awaitingSync {
                    outputs.append(.sync(token: t, SyncResult(error: .rebalanceInProgress)))
                    members[i].awaitingSync = nil
                }
            }
            syncDeadline = nil
        }
        let wasEmpty = phase == .empty
        phase = .preparingRebalance
        stateTimestamp = now
        if wasEmpty && initialRebalanceDelayMs > 0 {
            newMemberAdded = false
            initialDelayEnd = now + min(initialRebalanceDelayMs, maxRebalanceTimeout)
            initialDelayRemaining = max(0, maxRebalanceTimeout - initialRebalanceDelayMs)
            joinDeadline = nil
        } else {
            initialDelayEnd = nil
            joinDeadline = now + maxRebalanceTimeout
            outputs += tryCompleteJoin(now: now)
        }
        return outputs
    }

    private var allJoined: Bool { members.allSatisfy { $0.awaitingJoin != nil } && pendingMembers.isEmpty }

    private mutating func tryCompleteJoin(now: Int64) -> [GroupOutput] {
        guard phase == .preparingRebalance, initialDelayEnd == nil, allJoined else { return [] }
        return completeJoin(now: now)
    }

    /// The join phase ends: members that did not rejoin are dropped, a new generation starts.
    private mutating func completeJoin(now: Int64) -> [GroupOutput] {
        var outputs: [GroupOutput] = []
        joinDeadline = nil
        initialDelayEnd = nil
        let gone = members.filter { $0.awaitingJoin == nil }.map(\.memberId)
        for id in gone { removeMember(id) }
        if members.isEmpty {
            phase = .empty
            generationId += 1
            protocolName = nil
            stateTimestamp = now
            outputs.append(.persistGroup)
            return outputs
        }
        generationId += 1
        protocolName = selectProtocol()
        if leaderId == nil || member(leaderId!) == nil { leaderId = members.first?.memberId }
        phase = .completingRebalance
        stateTimestamp = now
        syncDeadline = now + maxRebalanceTimeout
        for i in members.indices {
            members[i].sessionDeadline = now + Int64(members[i].sessionTimeoutMs)
            if let t = members[i].awaitingJoin {
                members[i].awaitingJoin = nil
                var r = joinResult(for: members[i].memberId)
                if members[i].memberId != leaderId { r.members = [] }
                outputs.append(.join(token: t, r))
            }
        }
        return outputs
    }

    private func joinResult(for memberId: String) -> JoinResult {
        var r = JoinResult(
            error: .none, generationId: generationId, protocolType: protocolType, protocolName: protocolName,
            leader: leaderId ?? "", memberId: memberId)
        r.members = members.map { ($0.memberId, $0.groupInstanceId, $0.metadata(for: protocolName)) }
        return r
    }

    private mutating func removeMember(_ id: String) {
        members.removeAll { $0.memberId == id }
        if leaderId == id { leaderId = members.first?.memberId }
    }

    // MARK: sync

    mutating func sync(memberId: String, instanceId: String?, generationId gen: Int32, protocolType type: String?, protocolName name: String?,
                       assignments: [String: ByteBuffer], isLeaderRequest: Bool = true, token: Int, now: Int64) -> [GroupOutput] {
        func fail(_ e: KafkaErrorCode) -> [GroupOutput] { [.sync(token: token, SyncResult(error: e))] }
        if phase == .dead { return fail(.coordinatorNotAvailable) }
        if let instanceId, let current = staticMemberId(instanceId), current != memberId { return fail(.fencedInstanceId) }
        guard let i = index(memberId) else { return fail(.unknownMemberId) }
        if gen != generationId { return fail(.illegalGeneration) }
        if let type, type != protocolType { return fail(.inconsistentGroupProtocol) }
        if let name, name != protocolName { return fail(.inconsistentGroupProtocol) }
        switch phase {
        case .empty, .dead: return fail(.unknownMemberId)
        case .preparingRebalance: return fail(.rebalanceInProgress)
        case .stable:
            members[i].sessionDeadline = now + Int64(members[i].sessionTimeoutMs)
            return [.sync(token: token, SyncResult(protocolType: protocolType, protocolName: protocolName, assignment: members[i].assignment))]
        case .completingRebalance:
            var outputs: [GroupOutput] = []
            if let old = members[i].awaitingSync { outputs.append(.sync(token: old, SyncResult(error: .unknownMemberId))) }
            members[i].awaitingSync = token
            members[i].sessionDeadline = now + Int64(members[i].sessionTimeoutMs)
            guard memberId == leaderId else { return outputs }
            for j in members.indices { members[j].assignment = assignments[members[j].memberId] ?? ByteBuffer() }
            phase = .stable
            stateTimestamp = now
            syncDeadline = nil
            outputs.append(.persistGroup)
            for j in members.indices {
                if let t = members[j].awaitingSync {
                    members[j].awaitingSync = nil
                    outputs.append(.sync(token: t, SyncResult(protocolType: protocolType, protocolName: protocolName, assignment: members[j].assignment)))
                }
            }
            return outputs
        }
    }

    // MARK: heartbeat

    mutating func heartbeat(memberId: String, instanceId: String?, generationId gen: Int32, now: Int64) -> KafkaErrorCode {
        if phase == .dead { return .coordinatorNotAvailable }
        if let instanceId, let current = staticMemberId(instanceId), current != memberId { return .fencedInstanceId }
        guard let i = index(memberId), phase != .empty else { return .unknownMemberId }
        if gen != generationId { return .illegalGeneration }
        members[i].sessionDeadline = now + Int64(members[i].sessionTimeoutMs)
        return phase == .preparingRebalance ? .rebalanceInProgress : .none
    }

    // MARK: leave

    /// Removes members; answers each with its error. A departure starts a rebalance.
    mutating func leave(_ identities: [(memberId: String, instanceId: String?)], now: Int64) -> (errors: [KafkaErrorCode], outputs: [GroupOutput]) {
        var errors: [KafkaErrorCode] = []
        var outputs: [GroupOutput] = []
        var removed = false
        for who in identities {
            var id = who.memberId
            if let instance = who.instanceId {
                guard let current = staticMemberId(instance) else { errors.append(.unknownMemberId); continue }
                if !id.isEmpty && id != current { errors.append(.fencedInstanceId); continue }
                id = current
            }
            if pendingMembers.removeValue(forKey: id) != nil {
                errors.append(.none)
                removed = true
                continue
            }
            guard let m = member(id) else { errors.append(.unknownMemberId); continue }
            if let t = m.awaitingJoin { outputs.append(.join(token: t, .failure(.unknownMemberId, memberId: id))) }
            if let t = m.awaitingSync { outputs.append(.sync(token: t, SyncResult(error: .unknownMemberId))) }
            removeMember(id)
            errors.append(.none)
            removed = true
        }
        if removed { outputs += afterMemberRemoval(now: now) }
        return (errors, outputs)
    }

    private mutating func afterMemberRemoval(now: Int64) -> [GroupOutput] {
        switch phase {
        case .stable, .completingRebalance: return prepareRebalance(now: now)
        case .preparingRebalance: return tryCompleteJoin(now: now)
        case .empty, .dead: return []
        }
    }

    // MARK: timers

    /// The earliest time `tick` has something to do.
    var nextDeadline: Int64? {
        var all: [Int64] = Array(pendingMembers.values)
        if let d = joinDeadline { all.append(d) }
        if let d = initialDelayEnd { all.append(d) }
        if let d = syncDeadline { all.append(d) }
        if phase == .stable || phase == .completingRebalance {
            all += members.filter { $0.awaitingSync == nil }.map(\.sessionDeadline)
        }
        if phase == .preparingRebalance { all += members.filter { $0.awaitingJoin == nil }.map(\.sessionDeadline) }
        return all.min()
    }

    /// Expires sessions, pending members, the initial delay and the join and sync phases.
    mutating func tick(now: Int64) -> [GroupOutput] {
        var outputs: [GroupOutput] = []
        // Pending members that never came back with their id.
        let expiredPending = pendingMembers.filter { $0.value <= now }.map(\.key)
        for id in expiredPending { pendingMembers[id] = nil }
        // Session timeouts (members waiting in a join or sync are kept alive, as in Kafka).
        let expired = members.filter { $0.sessionDeadline <= now && $0.awaitingJoin == nil && $0.awaitingSync == nil && phase != .empty }
            .map { ($0.memberId, $0.groupInstanceId) }
        if !expired.isEmpty {
            outputs += leave(expired.map { ($0.0, nil) }, now: now).outputs
        } else if !expiredPending.isEmpty {
            outputs += tryCompleteJoin(now: now)
        }
        if phase == .preparingRebalance, let end = initialDelayEnd, end <= now {
            if newMemberAdded && initialDelayRemaining > 0 {
                newMemberAdded = false
                let extra = min(initialRebalanceDelayMs, initialDelayRemaining)
                initialDelayRemaining -= extra
                initialDelayEnd = now + extra
            } else {
                initialDelayEnd = nil
                outputs += completeJoin(now: now)
            }
        }
        if phase == .preparingRebalance, let d = joinDeadline, d <= now {
            outputs += completeJoin(now: now)
        }
        if phase == .completingRebalance, let d = syncDeadline, d <= now {
            // Members that did not send SyncGroup in time are dropped; the rest rebalance again.
            syncDeadline = nil
            let late = members.filter { $0.awaitingSync == nil }.map { ($0.memberId, Optional<String>.none) }
            if late.isEmpty {
                outputs += prepareRebalance(now: now)
            } else {
                outputs += leave(late, now: now).outputs
            }
        }
        return outputs
    }

    /// DeleteGroups: only an empty group can go.
    mutating func markDead() { phase = .dead }
}
