import PartitionReplication

/// SplitMix64: a tiny seeded generator, deterministic across platforms.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Knobs of one simulated run. Per-mille figures are per step (one delivery or timer).
struct SimulationOptions {
    var brokers = 3
    var minInSyncReplicas = 2
    var dropPercent = 3
    var duplicatePercent = 3
    /// Most messages take 1...maxDelayMs; `longDelayPercent` of them up to 800 ms (reordering).
    var maxDelayMs: Int64 = 20
    var longDelayPercent = 2
    var crashPerMille = 4
    var restartPerMille = 15
    /// The controller loses a live broker's heartbeats and fences it (a zombie that keeps running).
    var fencePerMille = 2
    var partitionPerMille = 5
    var healPerMille = 12
    var slowPerMille = 4
    var producePerMille = 80
    /// How many brokers may be down (crashed or fenced) at once.
    var maxDown = 1
    var faults = true

    static let quiet: SimulationOptions = {
        var options = SimulationOptions()
        options.faults = false
        options.dropPercent = 0
        options.duplicatePercent = 0
        options.longDelayPercent = 0
        options.maxDelayMs = 5
        options.producePerMille = 0
        return options
    }()
}

/// What a broker has made durable through its actions: survives crashes.
struct Disk {
    var log = PartitionLog()
    /// Hash of the log prefix up to and including each offset.
    var chain: [UInt64] = []
}

enum Envelope {
    case replication(from: BrokerID, to: BrokerID, ReplicationMessage)
    case alterPartition(from: BrokerID, AlterPartitionRequest)
    /// `version`: the partition epoch of the image it comes from.
    case controller(to: BrokerID, ReplicationEvent, version: Int32)

    var from: BrokerID {
        switch self {
        case .replication(let from, _, _), .alterPartition(let from, _): from
        case .controller: 0
        }
    }
    var to: BrokerID {
        switch self {
        case .replication(_, let to, _), .controller(let to, _, _): to
        case .alterPartition: 0
        }
    }
}

struct InFlight {
    var deliverAt: Int64
    var order: UInt64
    var envelope: Envelope
}

/// The active controller's part in one partition (the metadata image): elects a leader from the
/// ISR with a bumped epoch when the leader is fenced, removes fenced brokers from the ISR (but
/// never the last member), and accepts AlterPartition as KRaft does.
struct ControllerModel {
    var state: LeaderAndIsr
    var fenced: Set<BrokerID> = []

    init(replicas: [BrokerID]) {
        state = LeaderAndIsr(leader: replicas[0], leaderEpoch: 0, isr: replicas, replicas: replicas, partitionEpoch: 0)
    }

    mutating func fence(_ broker: BrokerID) {
        fenced.insert(broker)
        if state.isr.contains(broker), state.isr.count > 1 {
            state.isr.removeAll { $0 == broker }
            state.partitionEpoch += 1
        }
        if state.leader == broker {
            // Clean election only: the first unfenced ISR member, else offline (leader -1).
            state.leader = state.isr.first(where: { !fenced.contains($0) }) ?? -1
            state.leaderEpoch += 1
            state.partitionEpoch += 1
        }
    }

    mutating func unfence(_ broker: BrokerID) {
        fenced.remove(broker)
        electIfLeaderless()
    }

    /// Clean election only: the first unfenced ISR member.
    mutating func electIfLeaderless() {
        guard state.leader < 0, let next = state.isr.first(where: { !fenced.contains($0) }) else { return }
        state.leader = next
        state.leaderEpoch += 1
        state.partitionEpoch += 1
    }

    mutating func alterPartition(_ request: AlterPartitionRequest) -> ReplicationEvent {
        guard request.leaderId == state.leader, request.leaderEpoch == state.leaderEpoch else { return .alterPartitionRejected(state) }
        let newIsr = request.newIsr.sorted()
        if newIsr == state.isr { return .alterPartitionAccepted(state) }  // a retry of what was applied
        guard request.partitionEpoch == state.partitionEpoch, newIsr.contains(state.leader),
              newIsr.allSatisfy({ !fenced.contains($0) && state.replicas.contains($0) }) else {
            // Bump the partition epoch so that no delayed copy of this request is accepted later.
            state.partitionEpoch += 1
            return .alterPartitionRejected(state)
        }
        state.isr = newIsr
        state.partitionEpoch += 1
        return .alterPartitionAccepted(state)
    }

    /// What the metadata image tells `broker` to be.
    func command(for broker: BrokerID) -> ReplicationEvent? {
        guard state.leader >= 0, !fenced.contains(broker) else { return nil }
        return state.leader == broker ? .becomeLeader(state)
            : .becomeFollower(leader: state.leader, leaderEpoch: state.leaderEpoch)
    }
}

/// A deterministic cluster: seeded network, clock, faults, and invariant checks on every action
/// and after every step. Everything random comes from `rng` and nothing iterates a Set or
/// Dictionary, so one seed replays one run exactly.
struct Simulation {
    let seed: UInt64
    var options: SimulationOptions
    var rng: SplitMix64
    var now: Int64 = 0
    let ids: [BrokerID]
    var config: ReplicationConfig
    var brokers: [PartitionReplica?]
    var disks: [Disk]
    var incarnations: [Int]
    var controller: ControllerModel
    var nextMetadataPush: Int64 = 0
    let metadataIntervalMs: Int64 = 200
    var network: [InFlight] = []
    var blocked: [[Bool]]
    var slowUntil: [Int64]
    /// Per broker, the newest metadata image applied (durable: the metadata log).
    var metadataApplied: [Int32]
    var order: UInt64 = 0
    var steps = 0
    var nextPayload: UInt64 = 0
    var nextProduceId: UInt64 = 0
    var invariants = Invariants()
    var trace: [String] = []
    var tracing = false

    init(seed: UInt64, options: SimulationOptions = SimulationOptions(), configure: (inout ReplicationConfig) -> Void = { _ in }) {
        self.seed = seed
        self.options = options
        rng = SplitMix64(seed: seed)
        ids = (1...options.brokers).map { BrokerID($0) }
        var config = ReplicationConfig(brokerId: 0)
        config.minInSyncReplicas = options.minInSyncReplicas
        config.replicaLagTimeMaxMs = 1_000
        config.fetchTimeoutMs = 300
        config.fetchBackoffMs = 50
        config.alterPartitionRetryMs = 300
        config.produceTimeoutMs = 3_000
        configure(&config)
        self.config = config
        brokers = Array(repeating: nil, count: options.brokers)
        disks = Array(repeating: Disk(), count: options.brokers)
        incarnations = Array(repeating: 0, count: options.brokers)
        blocked = Array(repeating: Array(repeating: false, count: options.brokers), count: options.brokers)
        slowUntil = Array(repeating: 0, count: options.brokers)
        metadataApplied = Array(repeating: -1, count: options.brokers)
        controller = ControllerModel(replicas: ids)
        controller.state.leaderEpoch = 0
        for id in ids { start(id) }
    }

    func index(_ id: BrokerID) -> Int { Int(id) - 1 }
    mutating func random(_ bound: Int) -> Int { Int(rng.next() % UInt64(bound)) }
    mutating func chance(perMille: Int) -> Bool { random(1000) < perMille }

    var liveIds: [BrokerID] { ids.filter { brokers[index($0)] != nil } }
    var crashedIds: [BrokerID] { ids.filter { brokers[index($0)] == nil } }
    /// Crashed or fenced: what the "at most one down" budget counts.
    var downIds: [BrokerID] { ids.filter { brokers[index($0)] == nil || controller.fenced.contains($0) } }
    var leaders: [BrokerID] { ids.filter { brokers[index($0)]?.role == .leader } }
    func broker(_ id: BrokerID) -> PartitionReplica? { brokers[index(id)] }

    // MARK: lifecycle

    mutating func start(_ id: BrokerID) {
        let i = index(id)
        incarnations[i] += 1
        var brokerConfig = config
        brokerConfig.brokerId = id
        brokers[i] = PartitionReplica(config: brokerConfig, log: disks[i].log, now: now)
        invariants.restarted(id)
        note("start \(id) leo=\(disks[i].log.endOffset)")
        controller.unfence(id)
        // Like a KRaft broker, it catches up with the metadata log before it is unfenced: older
        // images still in flight are ignored.
        metadataApplied[i] = controller.state.partitionEpoch
        nextMetadataPush = now
    }

    mutating func crash(_ id: BrokerID) {
        brokers[index(id)] = nil
        // The controller sees the missed heartbeats (a session timeout, shortened to zero here).
        controller.fence(id)
        note("crash \(id) -> controller \(controller.state)")
        nextMetadataPush = now
    }

    mutating func fenceZombie(_ id: BrokerID) {
        controller.fence(id)
        note("fence \(id) (keeps running) -> controller \(controller.state)")
        nextMetadataPush = now
    }

    mutating func unfenceZombie(_ id: BrokerID) {
        controller.unfence(id)
        metadataApplied[index(id)] = controller.state.partitionEpoch
        note("unfence \(id)")
        nextMetadataPush = now
    }

    // MARK: network

    mutating func send(_ envelope: Envelope) {
        if random(100) < options.dropPercent { return }
        let copies = random(100) < options.duplicatePercent ? 2 : 1
        for _ in 0..<copies {
            var delay: Int64 = random(100) < options.longDelayPercent
                ? Int64(1 + random(800)) : Int64(1 + random(Int(options.maxDelayMs)))
            for end in [envelope.from, envelope.to] where end > 0 && slowUntil[index(end)] > now {
                delay += Int64(100 + random(300))
            }
            order += 1
            network.append(InFlight(deliverAt: now + delay, order: order, envelope: envelope))
        }
    }

    func isBlocked(_ envelope: Envelope) -> Bool {
        let from = envelope.from, to = envelope.to
        if from == 0 || to == 0 {
            // A fenced zombie does not reach the controller, nor the controller it.
            let broker = from == 0 ? to : from
            return controller.fenced.contains(broker)
        }
        return blocked[index(from)][index(to)]
    }

    mutating func partition(isolating group: [BrokerID]) {
        for a in ids { for b in ids where group.contains(a) != group.contains(b) { blocked[index(a)][index(b)] = true } }
        note("partition \(group)")
    }

    mutating func heal() {
        for a in ids { for b in ids { blocked[index(a)][index(b)] = false } }
        note("heal")
    }

    // MARK: stepping

    mutating func step() throws {
        steps += 1
        if options.faults { try injectFault() }
        if options.producePerMille > 0, chance(perMille: options.producePerMille) { try produceFromClient() }
        var bestTime = Int64.max
        var bestMessage: Int?
        for (i, message) in network.enumerated()
        where message.deliverAt < bestTime || (message.deliverAt == bestTime && message.order < network[bestMessage!].order) {
            bestTime = message.deliverAt
            bestMessage = i
        }
        var bestBroker: BrokerID?
        var metadata = false
        for id in ids {
            if let node = brokers[index(id)], max(node.nextWakeup, now) < bestTime {
                bestTime = max(node.nextWakeup, now)
                bestBroker = id
                bestMessage = nil
            }
        }
        if max(nextMetadataPush, now) < bestTime {
            bestTime = max(nextMetadataPush, now)
            metadata = true
            bestBroker = nil
            bestMessage = nil
        }
        now = max(now, bestTime)
        if metadata {
            nextMetadataPush = now + metadataIntervalMs
            for id in ids {
                if let command = controller.command(for: id) { send(.controller(to: id, command, version: controller.state.partitionEpoch)) }
            }
        } else if let id = bestBroker {
            try handle(id, .tick)
        } else if let i = bestMessage {
            let message = network.remove(at: i)
            guard !isBlocked(message.envelope) else { return }
            switch message.envelope {
            case .replication(let from, let to, let payload):
                guard broker(to) != nil else { return }
                switch payload {
                case .fetch(let request): try handle(to, .fetchRequest(from: from, request))
                case .fetchResponse(let response): try handle(to, .fetchResponse(from: from, response))
                }
            case .alterPartition(let from, let request):
                let answer = controller.alterPartition(request)
                note("alterPartition from \(from) \(request.newIsr) pe=\(request.partitionEpoch) -> \(answer)")
                send(.controller(to: from, answer, version: -1))
            case .controller(let to, let event, let version):
                guard broker(to) != nil else { return }
                if version >= 0 {
                    // A broker applies the metadata log in order and never goes back to an older image.
                    guard version >= metadataApplied[index(to)] else { return }
                    metadataApplied[index(to)] = version
                }
                try handle(to, event)
            }
        }
        try invariants.afterStep(self)
    }

    mutating func injectFault() throws {
        if chance(perMille: options.crashPerMille), downIds.count < options.maxDown {
            let candidates = liveIds.filter { !controller.fenced.contains($0) }
            if !candidates.isEmpty { crash(candidates[random(candidates.count)]) }
        }
        if chance(perMille: options.restartPerMille), !crashedIds.isEmpty {
            start(crashedIds[random(crashedIds.count)])
        }
        if chance(perMille: options.fencePerMille) {
            let zombies = liveIds.filter { controller.fenced.contains($0) }
            if let zombie = zombies.first {
                unfenceZombie(zombie)
            } else if downIds.count < options.maxDown {
                let live = liveIds
                if !live.isEmpty { fenceZombie(live[random(live.count)]) }
            }
        }
        if chance(perMille: options.partitionPerMille) {
            if random(2) == 0 {
                partition(isolating: [ids[random(ids.count)]])
            } else {
                let a = ids[random(ids.count)], b = ids[random(ids.count)]
                blocked[index(a)][index(b)] = a != b
                note("block \(a)->\(b)")
            }
        }
        if chance(perMille: options.healPerMille) { heal() }
        if chance(perMille: options.slowPerMille) {
            let id = ids[random(ids.count)]
            slowUntil[index(id)] = now + Int64(200 + random(2_500))
            note("slow \(id) until \(slowUntil[index(id)])")
        }
    }

    /// A client produces a batch of 1-3 records to the broker its metadata names (or any broker).
    @discardableResult
    mutating func produceFromClient(acks forced: Acks? = nil, to target: BrokerID? = nil) throws -> UInt64? {
        let live = liveIds
        guard !live.isEmpty else { return nil }
        let leader = controller.state.leader
        let id = target ?? ((leader > 0 && broker(leader) != nil && random(5) > 0) ? leader : live[random(live.count)])
        guard broker(id) != nil else { return nil }
        let acks = forced ?? [Acks.all, .all, .all, .leader, .none][random(5)]
        var payloads: [UInt64] = []
        for _ in 0..<(1 + random(3)) {
            nextPayload += 1
            payloads.append(nextPayload)
        }
        nextProduceId += 1
        invariants.submitted(id: nextProduceId, acks: acks, payloads: payloads, down: downIds.count)
        try handle(id, .produce(id: nextProduceId, payloads: payloads, acks: acks))
        return nextProduceId
    }

    mutating func handle(_ id: BrokerID, _ event: ReplicationEvent) throws {
        let i = index(id)
        let wasLeaderEpoch = brokers[i]!.role == .leader ? brokers[i]!.leaderEpoch : nil
        let actions = brokers[i]!.handle(event, now: now)
        if brokers[i]!.role == .leader, brokers[i]!.leaderEpoch != wasLeaderEpoch {
            note("leader \(id) epoch \(brokers[i]!.leaderEpoch) isr \(brokers[i]!.isr) leo \(disks[i].log.endOffset) hw \(brokers[i]!.highWatermark)")
            try invariants.becameLeader(id, epoch: brokers[i]!.leaderEpoch, disk: disks[i], simulation: self)
        }
        try apply(id, actions)
    }

    /// Carries out a broker's actions in order, as a driver would, checking them on the way.
    mutating func apply(_ id: BrokerID, _ actions: [ReplicationAction]) throws {
        let i = index(id)
        for action in actions {
            if tracing { note("\(id): \(action)") }
            switch action {
            case .appendToLog(let entries):
                for entry in entries {
                    guard entry.offset == disks[i].log.endOffset else {
                        throw fail("broker \(id) appends offset \(entry.offset) at log end \(disks[i].log.endOffset)")
                    }
                    disks[i].log.append(entry)
                    disks[i].chain.append(Invariants.chainHash(disks[i].chain.last ?? 0, entry))
                    try invariants.logMatching(entry, chain: disks[i].chain.last!, broker: id, simulation: self)
                }
            case .truncateLog(let end):
                try invariants.truncation(broker: id, disk: disks[i], to: end, simulation: self)
                note("broker \(id) truncates \(disks[i].log.endOffset) -> \(end)")
                disks[i].log.truncate(toEndOffset: end)
                disks[i].chain.removeSubrange(Int(end)...)
            case .send(let to, let message):
                if case .fetch(let request) = message,
                   request.fetchOffset != disks[i].log.endOffset || request.lastFetchedEpoch != disks[i].log.lastEpoch {
                    throw fail("broker \(id) fetches at \(request.fetchOffset) but its disk log ends at \(disks[i].log.endOffset)")
                }
                send(.replication(from: id, to: to, message))
            case .alterPartition(let request):
                send(.alterPartition(from: id, request))
            case .completeProduce(let produceId, let result):
                try invariants.completed(id: produceId, result: result, by: id, simulation: self)
            case .hwChanged(let hw):
                try invariants.highWatermarkChanged(broker: id, hw: hw, simulation: self)
            }
        }
    }

    mutating func note(_ line: String) {
        trace.append("[\(now)] \(line)")
        if trace.count > 300 { trace.removeFirst(150) }
    }

    func fail(_ message: String) -> SimulationFailure {
        SimulationFailure(seed: seed, step: steps, now: now, message: message, trace: trace.suffix(50))
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

    /// Every broker up, in the ISR, with the leader's log and high watermark at its end.
    func converged() -> Bool {
        guard let leaderId = leaders.first, leaders.count == 1, let leader = broker(leaderId),
              leader.leaderEpoch == controller.state.leaderEpoch, leader.isr.count == ids.count,
              leader.highWatermark == leader.log.endOffset else { return false }
        return ids.allSatisfy { id in
            guard let replica = broker(id) else { return false }
            return disks[index(id)].chain.last == disks[index(leaderId)].chain.last && replica.highWatermark == leader.highWatermark
        }
    }

    /// Stops every fault, restarts and unfences everyone, then requires an acks=-1 produce to
    /// succeed and every replica to converge within `boundMs` of virtual time.
    mutating func checkLiveness(boundMs: Int64 = 20_000) throws {
        options = SimulationOptions.quiet
        heal()
        slowUntil = slowUntil.map { _ in 0 }
        for id in crashedIds { start(id) }
        for id in controller.fenced { unfenceZombie(id) }
        let deadline = now + boundMs
        var produced: UInt64?
        var lastTry: Int64 = -1_000_000
        while now < deadline {
            if let produced, invariants.succeeded.contains(produced), converged() { return }
            if produced.map({ !invariants.succeeded.contains($0) && invariants.finished.contains($0) }) ?? true,
               now - lastTry >= 200, let leader = leaders.first(where: { broker($0)!.leaderEpoch == controller.state.leaderEpoch }) {
                lastTry = now
                produced = try produceFromClient(acks: .all, to: leader)
            }
            try step()
        }
        throw fail("no convergence within \(boundMs) ms after faults stopped: leaders \(leaders), controller \(controller.state), "
            + "hw \(ids.map { broker($0)!.highWatermark }), leo \(ids.map { disks[index($0)].log.endOffset }), "
            + "roles \(ids.map { "\(broker($0)!.role)@\(broker($0)!.leaderEpoch) isr \(broker($0)!.isr)" })")
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
