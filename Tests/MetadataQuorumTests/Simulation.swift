import MetadataQuorum

/// Knobs of one simulated run. Probabilities are per step (one step = one delivery or timer).
struct SimulationOptions {
    var nodes = 3
    var dropPercent = 3
    var duplicatePercent = 2
    /// Most messages take 1...maxDelayMs; `longDelayPercent` of them take up to 1.5 s (reordering).
    var maxDelayMs: Int64 = 20
    var longDelayPercent = 2
    /// Per mille per step.
    var crashPerMille = 5
    var restartPerMille = 20
    var partitionPerMille = 6
    var healPerMille = 10
    var proposePerMille = 60
    var resignPerMille = 3
    /// A live node snapshots its committed prefix and drops it from its log.
    var snapshotPerMille = 4
    var faults = true

    static let quiet: SimulationOptions = {
        var options = SimulationOptions()
        options.faults = false
        options.dropPercent = 0
        options.duplicatePercent = 0
        options.longDelayPercent = 0
        options.maxDelayMs = 5
        return options
    }()
}

/// What a node has made durable through its actions: survives crashes.
struct Disk {
    var state = PersistentState()
    var log = RaftLog()
    /// Prefix hash of the log up to and including each offset (for the Log Matching check).
    var chain: [UInt64] = []
}

struct InFlight {
    var deliverAt: Int64
    var order: UInt64
    var from: NodeID
    var to: NodeID
    var message: RaftMessage
}

/// A deterministic cluster: seeded network, clock, faults and invariant checks after every step.
/// Everything random comes from `rng`, and nothing iterates a Set or Dictionary, so one seed
/// replays one run exactly.
struct Simulation {
    let seed: UInt64
    var options: SimulationOptions
    var rng: SplitMix64
    var now: Int64 = 0
    let ids: [NodeID]
    var config: RaftConfig
    /// nil while crashed.
    var nodes: [RaftNode?]
    var disks: [Disk]
    var incarnations: [UInt64]
    var network: [InFlight] = []
    /// blocked[from][to]: messages on that link are lost.
    var blocked: [[Bool]]
    var order: UInt64 = 0
    var steps = 0
    /// Followers that loaded a leader's snapshot (FetchSnapshot) in this run.
    var snapshotInstalls = 0

    // Invariant state.
    var invariants = Invariants()
    var nextPayload: UInt32 = 0
    var trace: [String] = []
    var tracing = false

    init(seed: UInt64, options: SimulationOptions = SimulationOptions(), configure: (inout RaftConfig) -> Void = { _ in }) {
        self.seed = seed
        self.options = options
        self.rng = SplitMix64(seed: seed)
        ids = (1...options.nodes).map { NodeID($0) }
        var config = RaftConfig(nodeId: 0, voters: ids)
        configure(&config)
        self.config = config
        nodes = Array(repeating: nil, count: options.nodes)
        disks = Array(repeating: Disk(), count: options.nodes)
        incarnations = Array(repeating: 0, count: options.nodes)
        blocked = Array(repeating: Array(repeating: false, count: options.nodes), count: options.nodes)
        invariants.highWatermarks = Array(repeating: 0, count: options.nodes)
        for id in ids { start(id) }
    }

    func index(_ id: NodeID) -> Int { Int(id) - 1 }

    mutating func random(_ bound: Int) -> Int { Int(rng.next() % UInt64(bound)) }
    mutating func chance(perMille: Int) -> Bool { random(1000) < perMille }

    // MARK: node lifecycle

    mutating func start(_ id: NodeID) {
        let i = index(id)
        incarnations[i] += 1
        var nodeConfig = config
        nodeConfig.nodeId = id
        nodeConfig.randomSeed = seed &* 31 &+ UInt64(id) &* 1_000_003 &+ incarnations[i]
        nodes[i] = RaftNode(config: nodeConfig, persisted: disks[i].state, log: disks[i].log, now: now)
        invariants.highWatermarks[i] = disks[i].log.startOffset  // volatile beyond the snapshot
        note("start \(id) epoch=\(disks[i].state.epoch) voted=\(String(describing: disks[i].state.votedFor)) leo=\(disks[i].log.endOffset)")
    }

    mutating func crash(_ id: NodeID) {
        nodes[index(id)] = nil
        note("crash \(id)")
    }

    var liveIds: [NodeID] { ids.filter { nodes[index($0)] != nil } }
    var crashedIds: [NodeID] { ids.filter { nodes[index($0)] == nil } }
    var leaders: [NodeID] { ids.filter { nodes[index($0)]?.role == .leader } }

    // MARK: the network

    mutating func send(_ message: RaftMessage, from: NodeID, to: NodeID) {
        if random(100) < options.dropPercent { return }
        let copies = random(100) < options.duplicatePercent ? 2 : 1
        for _ in 0..<copies {
            let delay: Int64 = random(100) < options.longDelayPercent
                ? Int64(1 + random(1500)) : Int64(1 + random(Int(options.maxDelayMs)))
            order += 1
            network.append(InFlight(deliverAt: now + delay, order: order, from: from, to: to, message: message))
        }
    }

    mutating func partition(isolating group: [NodeID]) {
        for a in ids {
            for b in ids where group.contains(a) != group.contains(b) {
                blocked[index(a)][index(b)] = true
            }
        }
        note("partition \(group)")
    }

    mutating func heal() {
        for a in ids { for b in ids { blocked[index(a)][index(b)] = false } }
        note("heal")
    }

    // MARK: stepping

    /// One step: maybe a fault, then the earliest delivery or timer.
    mutating func step() throws {
        steps += 1
        if options.faults { try injectFault() }
        // Earliest event: a message or a node timer.
        var bestTime = Int64.max
        var bestMessage: Int?
        for (i, message) in network.enumerated()
        where message.deliverAt < bestTime || (message.deliverAt == bestTime && message.order < network[bestMessage!].order) {
            bestTime = message.deliverAt
            bestMessage = i
        }
        var bestNode: NodeID?
        for id in ids {
            if let node = nodes[index(id)], max(node.nextWakeup, now) < bestTime {
                bestTime = max(node.nextWakeup, now)
                bestNode = id
                bestMessage = nil
            }
        }
        if bestTime == Int64.max { now += 10; return }
        now = max(now, bestTime)
        if let id = bestNode {
            try apply(id, nodes[index(id)]!.handle(.tick, now: now))
        } else if let i = bestMessage {
            let message = network.remove(at: i)
            guard !blocked[index(message.from)][index(message.to)], nodes[index(message.to)] != nil else { return }
            try apply(message.to, nodes[index(message.to)]!.handle(.received(from: message.from, message.message), now: now))
        }
        try invariants.checkNodes(self)
    }

    mutating func injectFault() throws {
        if chance(perMille: options.crashPerMille), !liveIds.isEmpty {
            crash(liveIds[random(liveIds.count)])
        }
        if chance(perMille: options.restartPerMille), !crashedIds.isEmpty {
            start(crashedIds[random(crashedIds.count)])
        }
        if chance(perMille: options.partitionPerMille) {
            var group: [NodeID] = []
            switch random(3) {
            case 0: group = [ids[random(ids.count)]]  // isolate one node
            case 1: group = Array(ids.shuffled(using: &rng).prefix(ids.count / 2))  // split brain
            default:  // one link, one way
                let a = ids[random(ids.count)], b = ids[random(ids.count)]
                blocked[index(a)][index(b)] = a != b
                note("block \(a)->\(b)")
            }
            if !group.isEmpty { partition(isolating: group) }
        }
        if chance(perMille: options.healPerMille) { heal() }
        if chance(perMille: options.snapshotPerMille), !liveIds.isEmpty {
            let id = liveIds[random(liveIds.count)], i = index(id)
            let node = nodes[i]!
            if node.highWatermark > node.log.startOffset {
                let upTo = node.log.startOffset + 1 + Int64(random(Int(node.highWatermark - node.log.startOffset)))
                nodes[i]!.compact(upTo: upTo)
                disks[i].log.compact(upTo: upTo)
                note("snapshot \(id) up to \(upTo)")
            }
        }
        if chance(perMille: options.proposePerMille) { try proposeToAnyone() }
        if chance(perMille: options.resignPerMille), let leader = leaders.first {
            try apply(leader, nodes[index(leader)]!.handle(.resign, now: now))
            note("resign \(leader)")
        }
    }

    /// A client sends a proposal to a random live node (most are not the leader and refuse).
    @discardableResult
    mutating func proposeToAnyone() throws -> ProposeResult? {
        let live = liveIds
        guard !live.isEmpty else { return nil }
        let id = leaders.first.flatMap { random(4) > 0 ? $0 : nil } ?? live[random(live.count)]
        nextPayload += 1
        let payload = withUnsafeBytes(of: nextPayload.bigEndian) { Array($0) }
        let (result, actions) = nodes[index(id)]!.propose(payload, now: now)
        if case .appended(let epoch, let offset) = result {
            invariants.proposed(LogEntry(epoch: epoch, offset: offset, payload: payload))
        }
        try apply(id, actions)
        return result
    }

    /// Carries out a node's actions in order, as a driver would, checking them on the way.
    mutating func apply(_ id: NodeID, _ actions: [RaftAction]) throws {
        let i = index(id)
        var snapshotWanted: (leader: NodeID, snapshot: EpochEndOffset)?
        for action in actions {
            if tracing { note("\(id): \(action)") }
            switch action {
            case .persistState(let state):
                disks[i].state = state
            case .appendToLog(let entries):
                for entry in entries {
                    guard entry.offset == disks[i].log.endOffset else {
                        throw fail("node \(id) appended offset \(entry.offset) at log end \(disks[i].log.endOffset)")
                    }
                    disks[i].log.append(entry)
                    let previous = disks[i].chain.last ?? 0
                    disks[i].chain.append(Invariants.chainHash(previous, entry))
                    try invariants.logMatching(entry, chain: disks[i].chain.last!, node: id, simulation: self)
                }
            case .truncateLog(let end):
                try invariants.truncation(node: id, disk: disks[i], to: end, simulation: self)
                disks[i].log.truncate(toEndOffset: end)
                disks[i].chain.removeSubrange(Int(end)...)
            case .send(let to, let message):
                try invariants.sendIsBackedByDisk(message, from: id, to: to, disk: disks[i], simulation: self)
                send(message, from: id, to: to)
            case .committed(let upTo):
                try invariants.committed(node: id, upTo: upTo, disk: disks[i], simulation: self)
            case .becameLeader(let epoch):
                try invariants.electedLeader(id, epoch: epoch, log: nodes[i]!.log, simulation: self)
                note("leader \(id) epoch \(epoch)")
            case .becameFollower, .becameCandidate:
                break
            case .fetchSnapshot(let leader, let snapshot):
                snapshotWanted = (leader, snapshot)
            }
        }
        if let (leader, snapshot) = snapshotWanted { try transferSnapshot(to: id, from: leader, snapshot) }
    }

    /// FetchSnapshot, done at once: the leader must be up, reachable and still hold that
    /// snapshot; otherwise the follower fetches again later.
    mutating func transferSnapshot(to id: NodeID, from leader: NodeID, _ snapshot: EpochEndOffset) throws {
        let i = index(id), l = index(leader)
        guard nodes[l] != nil, !blocked[l][i], !blocked[i][l], disks[l].log.snapshotId == snapshot else {
            note("snapshot \(snapshot) for \(id) not available at \(leader)")
            return
        }
        let end = Int(snapshot.endOffset)
        guard end <= invariants.committedLog.count, invariants.committedLog[end - 1].epoch == snapshot.epoch else {
            throw fail("leader \(leader) serves snapshot \(snapshot) that is not a committed prefix")
        }
        let actions = nodes[i]!.installSnapshot(snapshot, now: now)
        guard nodes[i]!.log.snapshotId == snapshot, nodes[i]!.log.endOffset == snapshot.endOffset else { return }
        disks[i].log = RaftLog(snapshot: snapshot)
        disks[i].chain = Array(disks[l].chain[0..<end])
        invariants.highWatermarks[i] = max(invariants.highWatermarks[i], snapshot.endOffset)
        snapshotInstalls += 1
        note("install snapshot \(snapshot) on \(id)")
        try apply(id, actions)
    }

    mutating func note(_ line: String) {
        trace.append("[\(now)] \(line)")
        if trace.count > 200 { trace.removeFirst(100) }
    }

    func fail(_ message: String) -> SimulationFailure {
        SimulationFailure(seed: seed, step: steps, now: now, message: message, trace: trace.suffix(40))
    }

    // MARK: scenarios

    mutating func run(steps count: Int) throws {
        for _ in 0..<count { try step() }
    }

    mutating func run(untilTime end: Int64, until done: (Simulation) -> Bool = { _ in false }) throws {
        while now < end {
            if done(self) { return }
            try step()
        }
    }

    /// Stops every fault, restarts crashed nodes, then requires a leader and the commit of new
    /// proposals on every node within `boundMs` of virtual time.
    mutating func checkLiveness(boundMs: Int64 = 15_000) throws {
        options = SimulationOptions.quiet
        heal()
        for id in crashedIds { start(id) }
        let deadline = now + boundMs
        let committedBefore = invariants.committedLog.count
        var lastProposal: Int64 = -1_000_000
        var wanted: [UInt32] = []
        while now < deadline {
            let done = wanted.filter { invariants.isCommitted(payload: $0, from: committedBefore) }.count
            if done >= 3, converged() { return }
            if done < 3, now - lastProposal >= 100, let leader = leaders.first {
                lastProposal = now
                if case .appended = try proposeToAnyoneAt(leader) { wanted.append(nextPayload) }
            }
            try step()
        }
        throw fail("no progress within \(boundMs) ms after faults stopped: leaders \(leaders), "
            + "hw \(ids.map { nodes[index($0)]!.highWatermark }), committed \(invariants.committedLog.count), "
            + "roles \(ids.map { "\(nodes[index($0)]!.role)@\(nodes[index($0)]!.epoch)" })")
    }

    mutating func proposeToAnyoneAt(_ id: NodeID) throws -> ProposeResult {
        nextPayload += 1
        let payload = withUnsafeBytes(of: nextPayload.bigEndian) { Array($0) }
        let (result, actions) = nodes[index(id)]!.propose(payload, now: now)
        if case .appended(let epoch, let offset) = result {
            invariants.proposed(LogEntry(epoch: epoch, offset: offset, payload: payload))
        }
        try apply(id, actions)
        return result
    }

    /// Every node is up, holds the committed log and has its high watermark at its end.
    func converged() -> Bool {
        let committed = Int64(invariants.committedLog.count)
        return ids.allSatisfy { id in
            guard let node = nodes[index(id)] else { return false }
            return node.highWatermark == committed && node.log.endOffset == committed
        }
    }
}

struct SimulationFailure: Error, CustomStringConvertible {
    var seed: UInt64
    var step: Int
    var now: Int64
    var message: String
    var trace: ArraySlice<String>
    var description: String {
        "seed \(seed) step \(step) t=\(now)ms: \(message)\nlast events:\n" + trace.joined(separator: "\n")
    }
}
