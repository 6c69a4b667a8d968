import PartitionReplication
import Testing

@Suite struct ScenarioTests {
    /// A quiet cluster whose leader (broker 1, epoch 0) has every replica in its ISR.
    func stableCluster(seed: UInt64) throws -> Simulation {
        var simulation = Simulation(seed: seed, options: .quiet)
        try simulation.run(untilTime: 2_000) { $0.leaders == [1] && $0.broker(1)!.isr == [1, 2, 3] }
        #expect(simulation.leaders == [1] && simulation.broker(1)!.isr == [1, 2, 3], "seed \(seed)")
        return simulation
    }

    /// Produces acks=-1 at the current leader until `count` succeed.
    func produceAcked(_ simulation: inout Simulation, count: Int, seed: UInt64) throws {
        let before = simulation.invariants.acked.count
        var attempts = 0
        while simulation.invariants.acked.count < before + count, attempts < 200 {
            attempts += 1
            let leader = simulation.controller.state.leader
            if leader > 0, simulation.broker(leader)?.role == .leader {
                let id = try simulation.produceFromClient(acks: .all, to: leader)
                try simulation.run(untilTime: simulation.now + 300) { sim in id.map { sim.invariants.finished.contains($0) } ?? true }
            } else {
                try simulation.run(untilTime: simulation.now + 100)
            }
        }
        #expect(simulation.invariants.acked.count >= before + count, "seed \(seed): \(simulation.invariants.results)")
    }

    /// The leader takes acks=1 writes it cannot replicate, then crashes: a new leader comes from
    /// the ISR with a bumped epoch, keeps every acknowledged write, and the old leader truncates
    /// its divergent tail when it returns as a follower.
    @Test(arguments: 0..<20)
    func leaderCrashKeepsAcknowledgedWritesAndTruncatesTheOldTail(seed: Int) throws {
        let seed = UInt64(seed)
        var simulation = try stableCluster(seed: seed)
        try produceAcked(&simulation, count: 5, seed: seed)
        simulation.partition(isolating: [1])
        for _ in 0..<3 { try simulation.produceFromClient(acks: .leader, to: 1) }
        let tailStart = simulation.broker(1)!.highWatermark
        let oldEnd = simulation.disks[0].log.endOffset
        #expect(oldEnd > tailStart, "seed \(seed): no divergent tail")
        simulation.crash(1)
        simulation.heal()
        try simulation.run(untilTime: simulation.now + 1_000) { !$0.leaders.isEmpty }
        let newLeader = try #require(simulation.leaders.first, "seed \(seed): no new leader")
        #expect(newLeader != 1 && simulation.broker(newLeader)!.leaderEpoch == 1, "seed \(seed)")
        try produceAcked(&simulation, count: 3, seed: seed)
        simulation.start(1)
        try simulation.run(untilTime: simulation.now + 5_000) { $0.converged() }
        #expect(simulation.converged(), "seed \(seed): no convergence")
        // The old tail (epoch 0 entries past the old high watermark) is gone from broker 1.
        let log = simulation.disks[0].log
        #expect(log.entries == simulation.disks[simulation.index(newLeader)].log.entries, "seed \(seed)")
        #expect(!log.entries.contains { $0.offset >= tailStart && $0.leaderEpoch == 0 }, "seed \(seed): old tail kept")
        try simulation.invariants.checkFinal(simulation)
    }

    /// A follower that cannot fetch for longer than replica.lag.time.max.ms leaves the ISR
    /// (through AlterPartition) and comes back once it has caught up.
    @Test(arguments: 0..<10)
    func stalledFollowerLeavesAndRejoinsTheIsr(seed: Int) throws {
        let seed = UInt64(seed)
        var simulation = try stableCluster(seed: seed)
        simulation.options.producePerMille = 30
        simulation.partition(isolating: [3])
        let stalledAt = simulation.now
        let lag = simulation.config.replicaLagTimeMaxMs
        try simulation.run(untilTime: stalledAt + 3 * lag) { !$0.broker(1)!.isr.contains(3) }
        #expect(simulation.broker(1)!.isr == [1, 2], "seed \(seed)")
        #expect(simulation.controller.state.isr == [1, 2], "seed \(seed)")
        let removedAfter = simulation.now - stalledAt
        #expect(removedAfter > lag && removedAfter <= lag + 500, "seed \(seed): removed after \(removedAfter) ms")
        // acks=-1 still works with ISR = {1, 2} = min.insync.replicas.
        try produceAcked(&simulation, count: 2, seed: seed)
        simulation.heal()
        try simulation.run(untilTime: simulation.now + 3_000) { $0.broker(1)!.isr == [1, 2, 3] }
        #expect(simulation.broker(1)!.isr == [1, 2, 3] && simulation.controller.state.isr == [1, 2, 3], "seed \(seed)")
        simulation.options.producePerMille = 0
        try simulation.run(untilTime: simulation.now + 2_000) { $0.converged() }
        #expect(simulation.converged(), "seed \(seed)")
    }

    /// ISR = {leader} with min.insync.replicas = 2: acks=-1 gets NOT_ENOUGH_REPLICAS without an
    /// append; acks=1 and acks=0 succeed.
    @Test func isrOfOneRefusesAcksAll() {
        var config = ReplicationConfig(brokerId: 1)
        config.minInSyncReplicas = 2
        var replica = PartitionReplica(config: config, now: 0)
        _ = replica.handle(.becomeLeader(LeaderAndIsr(leader: 1, leaderEpoch: 3, isr: [1], replicas: [1, 2, 3], partitionEpoch: 7)), now: 0)
        #expect(replica.handle(.produce(id: 1, payloads: [10], acks: .all), now: 1) == [.completeProduce(id: 1, .notEnoughReplicas)])
        #expect(replica.log.endOffset == 0)
        let acks1 = replica.handle(.produce(id: 2, payloads: [11, 12], acks: .leader), now: 2)
        #expect(acks1.contains(.completeProduce(id: 2, .success(baseOffset: 0, lastOffset: 1))))
        #expect(acks1.contains(.appendToLog([LogEntry(offset: 0, leaderEpoch: 3, payload: 11), LogEntry(offset: 1, leaderEpoch: 3, payload: 12)])))
        #expect(replica.highWatermark == 2)
        let acks0 = replica.handle(.produce(id: 3, payloads: [13], acks: .none), now: 3)
        #expect(acks0.contains(.completeProduce(id: 3, .success(baseOffset: 2, lastOffset: 2))))
    }

    /// The ISR shrinks below min.insync.replicas while an acks=-1 batch waits: once the high
    /// watermark passes it, the answer is NOT_ENOUGH_REPLICAS_AFTER_APPEND (as Kafka).
    @Test func shrinkWhileWaitingGivesNotEnoughReplicasAfterAppend() {
        var replica = PartitionReplica(config: ReplicationConfig(brokerId: 1), now: 0)
        _ = replica.handle(.becomeLeader(LeaderAndIsr(leader: 1, leaderEpoch: 1, isr: [1, 2], replicas: [1, 2], partitionEpoch: 1)), now: 0)
        let appended = replica.handle(.produce(id: 1, payloads: [5], acks: .all), now: 1)
        #expect(!appended.contains { if case .completeProduce = $0 { true } else { false } })
        let shrunk = replica.handle(.alterPartitionAccepted(LeaderAndIsr(leader: 1, leaderEpoch: 1, isr: [1], replicas: [1, 2], partitionEpoch: 2)), now: 2)
        #expect(shrunk.contains(.completeProduce(id: 1, .notEnoughReplicasAfterAppend)))
    }

    /// KIP-320: a follower whose last epoch the leader never had truncates to the leader's end
    /// of the largest older epoch.
    @Test func fetchWithDivergingEpochTruncates() {
        let leaderLog = PartitionLog(entries: [
            LogEntry(offset: 0, leaderEpoch: 0, payload: 1), LogEntry(offset: 1, leaderEpoch: 0, payload: 2),
            LogEntry(offset: 2, leaderEpoch: 2, payload: 3),
        ])
        let followerLog = PartitionLog(entries: [
            LogEntry(offset: 0, leaderEpoch: 0, payload: 1), LogEntry(offset: 1, leaderEpoch: 0, payload: 2),
            LogEntry(offset: 2, leaderEpoch: 1, payload: 9), LogEntry(offset: 3, leaderEpoch: 1, payload: 10),
        ])
        var leader = PartitionReplica(config: ReplicationConfig(brokerId: 1), log: leaderLog, now: 0)
        var follower = PartitionReplica(config: ReplicationConfig(brokerId: 2), log: followerLog, now: 0)
        _ = leader.handle(.becomeLeader(LeaderAndIsr(leader: 1, leaderEpoch: 2, isr: [1], replicas: [1, 2], partitionEpoch: 1)), now: 0)
        let fetch = follower.handle(.becomeFollower(leader: 1, leaderEpoch: 2), now: 0)
        guard case .send(1, .fetch(let request)) = fetch.first else { Issue.record("no fetch: \(fetch)"); return }
        #expect(request.fetchOffset == 4 && request.lastFetchedEpoch == 1)
        let answer = leader.handle(.fetchRequest(from: 2, request), now: 1)
        guard case .send(2, .fetchResponse(let response)) = answer.first else { Issue.record("no answer: \(answer)"); return }
        #expect(response.divergingEpoch == EpochEndOffset(epoch: 0, endOffset: 2))
        let truncated = follower.handle(.fetchResponse(from: 1, response), now: 2)
        #expect(truncated.first == .truncateLog(toEndOffset: 2))
        #expect(follower.log.endOffset == 2)
    }
}

@Suite struct TwoDownTests {
    /// Two of three brokers down: acks=-1 fails (never a false acknowledgement), and works
    /// again once one of them returns; nothing acknowledged before is lost.
    @Test(arguments: 0..<20)
    func acksAllFailsWithTwoBrokersDown(seed: Int) throws {
        let seed = UInt64(seed)
        var simulation = Simulation(seed: seed, options: .quiet)
        try simulation.run(untilTime: 2_000) { $0.leaders == [1] && $0.broker(1)!.isr == [1, 2, 3] }
        for _ in 0..<5 {
            let id = try simulation.produceFromClient(acks: .all, to: 1)
            try simulation.run(untilTime: simulation.now + 300) { sim in id.map { sim.invariants.finished.contains($0) } ?? true }
        }
        let ackedBefore = simulation.invariants.acked.count
        #expect(ackedBefore >= 5, "seed \(seed)")
        // Crash two: the leader and one follower, or both followers.
        let victims: [BrokerID] = seed % 2 == 0 ? [2, 3] : [1, 2]
        for victim in victims { simulation.crash(victim) }
        try simulation.run(untilTime: simulation.now + 500)
        var tried: [UInt64] = []
        for _ in 0..<10 {
            for id in simulation.liveIds {
                if let produce = try simulation.produceFromClient(acks: .all, to: id) { tried.append(produce) }
            }
            try simulation.run(untilTime: simulation.now + 400)
        }
        try simulation.run(untilTime: simulation.now + simulation.config.produceTimeoutMs + 500)
        for id in tried {
            #expect(simulation.invariants.finished.contains(id), "seed \(seed): produce \(id) never answered")
            #expect(!simulation.invariants.succeeded.contains(id), "seed \(seed): FALSE ACKNOWLEDGEMENT of produce \(id) with two brokers down")
        }
        // One returns: acks=-1 works again.
        simulation.start(victims[0])
        try simulation.run(untilTime: simulation.now + 3_000) { sim in
            sim.controller.state.isr.count >= 2 && sim.broker(sim.controller.state.leader)?.isr.count ?? 0 >= 2
        }
        var ok = false
        for _ in 0..<10 where !ok {
            let leader = simulation.controller.state.leader
            guard leader > 0, simulation.broker(leader) != nil else { try simulation.run(untilTime: simulation.now + 200); continue }
            let id = try simulation.produceFromClient(acks: .all, to: leader)
            try simulation.run(untilTime: simulation.now + 500) { sim in id.map { sim.invariants.finished.contains($0) } ?? true }
            ok = id.map { simulation.invariants.succeeded.contains($0) } ?? false
        }
        #expect(ok, "seed \(seed): acks=-1 still failing after a broker returned: \(simulation.invariants.results)")
        try simulation.checkLiveness()
        try simulation.invariants.checkFinal(simulation)
    }

    /// Random faults with up to two brokers down at once: no false acknowledgement, nothing
    /// acknowledged lost (logs are durable), and recovery once all return.
    @Test(arguments: 0..<2)
    func randomFaultsWithTwoDown(chunk: Int) {
        var options = SimulationOptions()
        options.maxDown = 2
        let base = 50_000 + UInt64(chunk) * 250
        for seed in base..<base + 250 {
            do {
                _ = try Runs.run(seed: seed, steps: 1500, options: options)
            } catch {
                Issue.record("\(error)")
                return
            }
        }
    }
}

@Suite struct EpochCacheTests {
    /// Kafka's `LeaderEpochFileCache.endOffsetFor`.
    @Test func endOffsetForEpoch() {
        let log = PartitionLog(entries: [
            LogEntry(offset: 0, leaderEpoch: 2, payload: 1), LogEntry(offset: 1, leaderEpoch: 2, payload: 2),
            LogEntry(offset: 2, leaderEpoch: 5, payload: 3),
        ])
        #expect(log.endOffset(forEpoch: 5) == EpochEndOffset(epoch: 5, endOffset: 3))
        #expect(log.endOffset(forEpoch: 7) == EpochEndOffset(epoch: 5, endOffset: 3))
        #expect(log.endOffset(forEpoch: 4) == EpochEndOffset(epoch: 2, endOffset: 2))
        #expect(log.endOffset(forEpoch: 2) == EpochEndOffset(epoch: 2, endOffset: 2))
        #expect(log.endOffset(forEpoch: 1) == EpochEndOffset(epoch: 1, endOffset: 0))
        #expect(PartitionLog().endOffset(forEpoch: 3) == EpochEndOffset(epoch: -1, endOffset: -1))
        var truncated = log
        truncated.truncate(toEndOffset: 2)
        #expect(truncated.epochCache == [EpochEndOffset(epoch: 2, endOffset: 0)])
    }

    /// A follower whose whole log is of an epoch the leader never had truncates to zero
    /// (seed 111611 with two down livelocked here before).
    @Test func followerWithOnlyUnknownEpochsTruncatesToZero() {
        var leader = PartitionReplica(config: ReplicationConfig(brokerId: 1), log: PartitionLog(entries: [
            LogEntry(offset: 0, leaderEpoch: 0, payload: 1), LogEntry(offset: 1, leaderEpoch: 0, payload: 2),
            LogEntry(offset: 2, leaderEpoch: 9, payload: 3),
        ]), now: 0)
        var follower = PartitionReplica(config: ReplicationConfig(brokerId: 2), log: PartitionLog(entries: [
            LogEntry(offset: 0, leaderEpoch: 1, payload: 7), LogEntry(offset: 1, leaderEpoch: 1, payload: 8),
        ]), now: 0)
        _ = leader.handle(.becomeLeader(LeaderAndIsr(leader: 1, leaderEpoch: 9, isr: [1], replicas: [1, 2], partitionEpoch: 1)), now: 0)
        var actions = follower.handle(.becomeFollower(leader: 1, leaderEpoch: 9), now: 0)
        for step in 0..<6 {
            guard case .send(1, .fetch(let request))? = actions.last else { break }
            guard case .send(2, .fetchResponse(let response))? = leader.handle(.fetchRequest(from: 2, request), now: Int64(step)).last else { break }
            actions = follower.handle(.fetchResponse(from: 1, response), now: Int64(step))
        }
        #expect(follower.log.entries == leader.log.entries)
    }
}
