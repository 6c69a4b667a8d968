import MetadataQuorum
import Testing

@Suite struct ScenarioTests {
    /// A quiet three-node cluster that has elected a leader and committed its first entry.
    func stableCluster(seed: UInt64) throws -> (Simulation, NodeID) {
        var simulation = Simulation(seed: seed, options: .quiet)
        try simulation.run(untilTime: 10_000) { sim in
            sim.leaders.count == 1 && sim.invariants.committedLog.count >= 1
        }
        let leader = try #require(simulation.leaders.first, "seed \(seed): no leader")
        return (simulation, leader)
    }

    /// Leader crash: a new leader within 2x the election timeout for every seed. Pre-vote
    /// (KIP-996) keeps the survivors from splitting their vote in a bumped epoch.
    @Test func leaderCrashElectsNewLeaderWithinTwoElectionTimeouts() throws {
        for seed in 0..<20 {
            var (simulation, leader) = try stableCluster(seed: UInt64(seed))
            try simulation.run(untilTime: simulation.now + 500)
            simulation.crash(leader)
            let crashedAt = simulation.now
            try simulation.run(untilTime: crashedAt + 5_000) { !$0.leaders.isEmpty }
            let elapsed = simulation.now - crashedAt
            #expect(simulation.leaders.count == 1 && !simulation.leaders.contains(leader), "seed \(seed)")
            #expect(elapsed <= 2 * simulation.config.electionTimeoutMs, "seed \(seed): failover took \(elapsed) ms")
            guard let newLeader = simulation.leaders.first else { continue }
            let result = try simulation.proposeToAnyoneAt(newLeader)
            guard case .appended(_, let offset) = result else { Issue.record("seed \(seed): \(result)"); continue }
            try simulation.run(untilTime: simulation.now + 2_000) { $0.invariants.committedLog.count > Int(offset) }
            #expect(simulation.invariants.committedLog.count > Int(offset), "seed \(seed)")
        }
    }

    /// Graceful shutdown: the leader resigns (EndQuorumEpoch) and a successor leads well within
    /// one fetch timeout. The resigned leader answers the successor's pre-vote without naming
    /// itself as leader, so the successor does not go back to following it.
    @Test func resignedLeaderHandsOverWithinAFractionOfTheFetchTimeout() throws {
        for seed in 0..<20 {
            var (simulation, leader) = try stableCluster(seed: UInt64(seed))
            try simulation.run(untilTime: simulation.now + 500)
            try simulation.apply(leader, simulation.nodes[simulation.index(leader)]!.handle(.resign, now: simulation.now))
            let resignedAt = simulation.now
            try simulation.run(untilTime: resignedAt + 5_000) { sim in sim.leaders.contains { $0 != leader } }
            let elapsed = simulation.now - resignedAt
            #expect(simulation.leaders.count == 1 && !simulation.leaders.contains(leader), "seed \(seed)")
            #expect(elapsed < simulation.config.fetchTimeoutMs / 2, "seed \(seed): hand-over took \(elapsed) ms")
        }
    }

    /// Pre-vote: a follower partitioned away keeps failing its pre-vote, so it never bumps its
    /// epoch; when it comes back it rejoins the stable leader instead of deposing it.
    @Test(arguments: 0..<20)
    func returningPartitionedFollowerDoesNotDisruptStableLeader(seed: Int) throws {
        var (simulation, leader) = try stableCluster(seed: UInt64(seed))
        let epoch = simulation.nodes[Int(leader) - 1]!.epoch
        let follower = try #require(simulation.ids.first { $0 != leader })
        simulation.partition(isolating: [follower])
        // Several fetch and election timeouts: without pre-vote it would stand again and again.
        try simulation.run(untilTime: simulation.now + 6_000)
        #expect(simulation.nodes[Int(follower) - 1]!.epoch == epoch, "seed \(seed): isolated node bumped its epoch")
        #expect(simulation.nodes[Int(follower) - 1]!.role == .prospective, "seed \(seed)")
        #expect(simulation.leaders == [leader], "seed \(seed)")
        simulation.heal()
        try simulation.run(untilTime: simulation.now + 3_000)
        // The same leader, in the same epoch, with the returning node following it.
        #expect(simulation.leaders == [leader], "seed \(seed)")
        #expect(simulation.invariants.leaderOfEpoch.keys.max() == epoch, "seed \(seed): a new epoch was elected")
        for id in simulation.ids {
            let node = simulation.nodes[Int(id) - 1]!
            #expect(node.epoch == epoch, "seed \(seed): node \(id) at epoch \(node.epoch)")
            if id != leader { #expect(node.role == .follower && node.leaderId == leader, "seed \(seed): node \(id) \(node.role)") }
        }
        // The rejoined node catches up with what is committed afterwards.
        let result = try simulation.proposeToAnyoneAt(leader)
        guard case .appended(_, let offset) = result else { Issue.record("seed \(seed): \(result)"); return }
        try simulation.run(untilTime: simulation.now + 2_000) { $0.converged() && $0.invariants.committedLog.count > Int(offset) }
        #expect(simulation.converged(), "seed \(seed)")
        try simulation.invariants.checkFinal(simulation)
    }

    @Test func preVoteChangesNoStateAndIsRefusedWhileALeaderIsAlive() {
        var config = RaftConfig(nodeId: 1, voters: [1, 2, 3])
        config.randomSeed = 7
        var node = RaftNode(config: config, persisted: PersistentState(epoch: 2), log: RaftLog(), now: 0)
        // Unattached, no leader heard from: granted, nothing persisted, epoch unchanged.
        let granted = node.handle(.received(from: 2, .vote(VoteRequest(candidateEpoch: 3, candidateId: 2, lastOffsetEpoch: 0, lastOffset: 0, preVote: true))), now: 1)
        #expect(granted == [.send(to: 2, .voteResponse(VoteResponse(leaderEpoch: 2, leaderId: nil, voteGranted: true, preVote: true)))])
        #expect(node.epoch == 2 && node.votedFor == nil && node.role == .unattached)
        // Following a live leader: refused, still without any state change.
        _ = node.handle(.received(from: 3, .beginQuorumEpoch(BeginQuorumEpochRequest(leaderEpoch: 2, leaderId: 3))), now: 2)
        let refused = node.handle(.received(from: 2, .vote(VoteRequest(candidateEpoch: 3, candidateId: 2, lastOffsetEpoch: 0, lastOffset: 0, preVote: true))), now: 3)
        #expect(refused == [.send(to: 2, .voteResponse(VoteResponse(leaderEpoch: 2, leaderId: 3, voteGranted: false, preVote: true)))])
        #expect(node.epoch == 2 && node.role == .follower && node.leaderId == 3)
    }

    @Test(arguments: 0..<20)
    func partitionedOldLeaderCannotCommitAndItsTailIsTruncated(seed: Int) throws {
        var (simulation, oldLeader) = try stableCluster(seed: UInt64(seed))
        simulation.partition(isolating: [oldLeader])
        let result = try simulation.proposeToAnyoneAt(oldLeader)
        guard case .appended(let epoch, let offset) = result else { Issue.record("seed \(seed): \(result)"); return }
        let staleEntry = simulation.nodes[Int(oldLeader) - 1]!.log.entry(at: offset)!
        try simulation.run(untilTime: simulation.now + 4_000)
        // The old leader never commits its entry; the majority side elected a new leader...
        #expect(simulation.nodes[Int(oldLeader) - 1]!.highWatermark <= offset, "seed \(seed)")
        #expect(simulation.invariants.leaderOfEpoch.keys.contains { $0 > epoch }, "seed \(seed)")
        // ...and the old leader stepped down on its own (check quorum).
        #expect(simulation.nodes[Int(oldLeader) - 1]!.role != .leader, "seed \(seed)")
        // The majority side keeps committing.
        let majorityLeader = try #require(simulation.leaders.first { $0 != oldLeader }, "seed \(seed)")
        _ = try simulation.proposeToAnyoneAt(majorityLeader)
        // Heal: the old leader's divergent tail is truncated and replaced by the committed log.
        try simulation.checkLiveness()
        try simulation.invariants.checkFinal(simulation)
        let healed = simulation.nodes[Int(oldLeader) - 1]!
        #expect(healed.log.entries == simulation.invariants.committedLog, "seed \(seed)")
        #expect(healed.log.entry(at: offset) != staleEntry, "seed \(seed): stale entry survived")
    }

    @Test func votesAreRefusedToStaleLogsAndPersistedBeforeTheyAreGranted() {
        var config = RaftConfig(nodeId: 1, voters: [1, 2, 3])
        config.randomSeed = 7
        let log = RaftLog([
            LogEntry(epoch: 1, offset: 0, kind: .leaderChange, payload: []),
            LogEntry(epoch: 1, offset: 1, payload: [1]),
            LogEntry(epoch: 2, offset: 2, kind: .leaderChange, payload: []),
        ])
        var node = RaftNode(config: config, persisted: PersistentState(epoch: 2), log: log, now: 0)

        // Older last epoch, longer log: refused (but the newer epoch is adopted and persisted).
        let stale = node.handle(.received(from: 2, .vote(VoteRequest(candidateEpoch: 3, candidateId: 2, lastOffsetEpoch: 1, lastOffset: 9))), now: 1)
        #expect(stale == [
            .persistState(PersistentState(epoch: 3, votedFor: nil)),
            .send(to: 2, .voteResponse(VoteResponse(leaderEpoch: 3, leaderId: nil, voteGranted: false))),
        ])
        // Same last epoch, shorter log: refused.
        let short = node.handle(.received(from: 3, .vote(VoteRequest(candidateEpoch: 3, candidateId: 3, lastOffsetEpoch: 2, lastOffset: 2))), now: 2)
        #expect(short == [.send(to: 3, .voteResponse(VoteResponse(leaderEpoch: 3, leaderId: nil, voteGranted: false)))])
        // Up to date: granted, with the vote persisted before the response.
        let good = node.handle(.received(from: 3, .vote(VoteRequest(candidateEpoch: 3, candidateId: 3, lastOffsetEpoch: 2, lastOffset: 3))), now: 3)
        #expect(good == [
            .persistState(PersistentState(epoch: 3, votedFor: 3)),
            .send(to: 3, .voteResponse(VoteResponse(leaderEpoch: 3, leaderId: nil, voteGranted: true))),
        ])
        // One vote per epoch: another candidate in epoch 3 is refused, even with a longer log.
        let second = node.handle(.received(from: 2, .vote(VoteRequest(candidateEpoch: 3, candidateId: 2, lastOffsetEpoch: 2, lastOffset: 10))), now: 4)
        #expect(second == [.send(to: 2, .voteResponse(VoteResponse(leaderEpoch: 3, leaderId: nil, voteGranted: false)))])
    }

    @Test func followerTruncatesDivergentTailFromDivergingEpoch() {
        // Leader log: epochs 1,1,3 ; follower log: epochs 1,1,2,2 (an uncommitted epoch-2 tail).
        var follower = RaftNode(
            config: RaftConfig(nodeId: 2, voters: [1, 2, 3]), persisted: PersistentState(epoch: 3),
            log: RaftLog([
                LogEntry(epoch: 1, offset: 0, payload: [0]), LogEntry(epoch: 1, offset: 1, payload: [1]),
                LogEntry(epoch: 2, offset: 2, payload: [2]), LogEntry(epoch: 2, offset: 3, payload: [3]),
            ]), now: 0)
        let begin = follower.handle(.received(from: 1, .beginQuorumEpoch(BeginQuorumEpochRequest(leaderEpoch: 3, leaderId: 1))), now: 1)
        #expect(begin.contains(.send(to: 1, .fetch(FetchRequest(currentLeaderEpoch: 3, replicaId: 2, fetchOffset: 4, lastFetchedEpoch: 2)))))
        let diverging = follower.handle(.received(from: 1, .fetchResponse(FetchResponse(
            leaderEpoch: 3, leaderId: 1, fetchOffset: 4, lastFetchedEpoch: 2, highWatermark: 2,
            divergingEpoch: EpochEndOffset(epoch: 1, endOffset: 2)))), now: 2)
        #expect(diverging == [
            .truncateLog(toEndOffset: 2),
            .send(to: 1, .fetch(FetchRequest(currentLeaderEpoch: 3, replicaId: 2, fetchOffset: 2, lastFetchedEpoch: 1))),
        ])
        let entry = LogEntry(epoch: 3, offset: 2, kind: .leaderChange, payload: [])
        let filled = follower.handle(.received(from: 1, .fetchResponse(FetchResponse(
            leaderEpoch: 3, leaderId: 1, fetchOffset: 2, lastFetchedEpoch: 1, highWatermark: 3, entries: [entry]))), now: 3)
        #expect(filled.first == .appendToLog([entry]))
        #expect(filled.contains(.committed(upTo: 3)))
        #expect(follower.log.entries.map(\.epoch) == [1, 1, 3] && follower.highWatermark == 3)
    }
}
