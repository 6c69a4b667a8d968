import PartitionReplication

/// Safety properties, checked on every action and after every step of a simulation.
struct Invariants {
    struct Produce {
        var acks: Acks
        var payloads: [UInt64]
        var downAtSubmit: Int
    }

    struct AckedWrite {
        var entry: LogEntry
        var produceId: UInt64
    }

    /// One leader per epoch.
    var leaderOfEpoch: [Int32: BrokerID] = [:]
    /// The log below any high watermark, as first seen: it must never change (what consumers read).
    var committed: [LogEntry] = []
    var committedChain: [UInt64] = []
    /// Log matching: (offset, epoch) -> hash of the prefix through that entry.
    var prefixHashes: [OffsetEpoch: UInt64] = [:]
    /// Per broker (index id-1): its incarnation's leader epoch and the last high watermark it
    /// reported as leader in it.
    var leaderHighWatermark: [BrokerID: (epoch: Int32, hw: Int64)] = [:]
    var produces: [UInt64: Produce] = [:]
    var finished: Set<UInt64> = []
    var succeeded: Set<UInt64> = []
    /// acks=-1 writes reported successful: never to be lost.
    var acked: [AckedWrite] = []
    var results: [String: Int] = [:]

    struct OffsetEpoch: Hashable {
        var offset: Int64
        var epoch: Int32
    }

    static func chainHash(_ previous: UInt64, _ entry: LogEntry) -> UInt64 {
        var hash = previous ^ 0xcbf2_9ce4_8422_2325
        func mix(_ value: UInt64) {
            hash = (hash ^ value) &* 0x0000_0100_0000_01B3
            hash ^= hash >> 29
        }
        mix(UInt64(bitPattern: entry.offset))
        mix(UInt64(UInt32(bitPattern: entry.leaderEpoch)))
        mix(entry.payload)
        return hash
    }

    mutating func restarted(_ id: BrokerID) {
        leaderHighWatermark[id] = nil
    }

    mutating func submitted(id: UInt64, acks: Acks, payloads: [UInt64], down: Int) {
        produces[id] = Produce(acks: acks, payloads: payloads, downAtSubmit: down)
    }

    mutating func logMatching(_ entry: LogEntry, chain: UInt64, broker: BrokerID, simulation: Simulation) throws {
        let key = OffsetEpoch(offset: entry.offset, epoch: entry.leaderEpoch)
        if let known = prefixHashes[key] {
            if known != chain {
                throw simulation.fail("log matching: broker \(broker) holds a different prefix at offset \(entry.offset) epoch \(entry.leaderEpoch)")
            }
        } else {
            prefixHashes[key] = chain
        }
    }

    mutating func becameLeader(_ id: BrokerID, epoch: Int32, disk: Disk, simulation: Simulation) throws {
        if let other = leaderOfEpoch[epoch], other != id {
            throw simulation.fail("two leaders in epoch \(epoch): \(other) and \(id)")
        }
        leaderOfEpoch[epoch] = id
        if !simulation.controller.state.isr.contains(id) {
            throw simulation.fail("unclean election: \(id) leads epoch \(epoch) outside the ISR \(simulation.controller.state.isr)")
        }
        try checkAcked(in: id, epoch: epoch, disk: disk, simulation: simulation)
    }

    /// Every acknowledged write of an older epoch is in this leader's log at its offset.
    func checkAcked(in id: BrokerID, epoch: Int32, disk: Disk, simulation: Simulation) throws {
        for write in acked where write.entry.leaderEpoch < epoch {
            if disk.log.entry(at: write.entry.offset) != write.entry {
                throw simulation.fail("ACKNOWLEDGED WRITE LOST: produce \(write.produceId) \(write.entry) missing from leader \(id) of epoch \(epoch) (has \(String(describing: disk.log.entry(at: write.entry.offset))))")
            }
        }
    }

    mutating func completed(id: UInt64, result: ProduceResult, by broker: BrokerID, simulation: Simulation) throws {
        guard let produce = produces[id] else { throw simulation.fail("completion of unknown produce \(id)") }
        if finished.contains(id) { throw simulation.fail("produce \(id) completed twice") }
        finished.insert(id)
        results["\(produce.acks) \(result.kind)", default: 0] += 1
        guard case .success(let base, let last) = result else { return }
        succeeded.insert(id)
        guard produce.acks == .all else { return }
        guard last - base + 1 == Int64(produce.payloads.count) else { throw simulation.fail("produce \(id): wrong offsets \(base)...\(last)") }
        guard let epoch = simulation.broker(broker)?.leaderEpoch else { return }
        let entries = produce.payloads.enumerated().map { LogEntry(offset: base + Int64($0.offset), leaderEpoch: epoch, payload: $0.element) }
        // Never a false acknowledgement: min.insync.replicas durable logs hold the batch.
        let holders = simulation.ids.filter { id in entries.allSatisfy { simulation.disks[simulation.index(id)].log.entry(at: $0.offset) == $0 } }
        if holders.count < simulation.config.minInSyncReplicas {
            throw simulation.fail("FALSE ACKNOWLEDGEMENT: produce \(id) at \(base)...\(last) acknowledged with only \(holders) holding it")
        }
        for entry in entries { acked.append(AckedWrite(entry: entry, produceId: id)) }
        // A newer leader may already exist (this one is a zombie): it must hold the batch too.
        for leader in simulation.leaders {
            let replica = simulation.broker(leader)!
            if replica.leaderEpoch > epoch {
                try checkAcked(in: leader, epoch: replica.leaderEpoch, disk: simulation.disks[simulation.index(leader)], simulation: simulation)
            }
        }
    }

    mutating func highWatermarkChanged(broker: BrokerID, hw: Int64, simulation: Simulation) throws {
        let replica = simulation.broker(broker)!
        let disk = simulation.disks[simulation.index(broker)]
        if hw > disk.log.endOffset { throw simulation.fail("broker \(broker) high watermark \(hw) above its log end \(disk.log.endOffset)") }
        if replica.role == .leader {
            if let last = leaderHighWatermark[broker], last.epoch == replica.leaderEpoch, hw < last.hw {
                throw simulation.fail("leader \(broker) high watermark moves back from \(last.hw) to \(hw) in epoch \(last.epoch)")
            }
            leaderHighWatermark[broker] = (replica.leaderEpoch, hw)
        }
        guard hw > 0 else { return }
        // What consumers may read (below a high watermark) is one log that only grows.
        let overlap = min(Int(hw), committed.count)
        if overlap > 0, disk.chain[overlap - 1] != committedChain[overlap - 1] {
            throw simulation.fail("broker \(broker) high watermark \(hw) covers entries that differ from the committed log below \(overlap)")
        }
        if Int(hw) > committed.count {
            for offset in committed.count..<Int(hw) {
                committed.append(disk.log.entries[offset])
                committedChain.append(disk.chain[offset])
            }
        }
    }

    /// No replica truncates below its own high watermark, and no ISR member truncates an entry of
    /// the committed log. (A replica outside the ISR may drop a committed entry on the word of an
    /// older leader that never had it, then fetch it again from the leader that committed it:
    /// the committed log itself never changes, which `highWatermarkChanged` checks.)
    func truncation(broker: BrokerID, disk: Disk, to end: Int64, simulation: Simulation) throws {
        if let replica = simulation.broker(broker), end < replica.highWatermark {
            throw simulation.fail("broker \(broker) truncates to \(end) below its high watermark \(replica.highWatermark)")
        }
        let upper = min(disk.log.endOffset, Int64(committed.count))
        if end < upper, disk.chain[Int(end)] == committedChain[Int(end)], simulation.controller.state.isr.contains(broker) {
            throw simulation.fail("ISR member \(broker) truncates committed entry at offset \(end) (committed \(committed.count))")
        }
    }

    /// Leader high watermarks against what the ISR actually holds.
    func afterStep(_ simulation: Simulation) throws {
        for id in simulation.leaders {
            let leader = simulation.broker(id)!
            let hw = leader.highWatermark
            guard hw > 0 else { continue }
            let disk = simulation.disks[simulation.index(id)]
            for member in leader.isr where member != id {
                let memberDisk = simulation.disks[simulation.index(member)]
                if memberDisk.log.endOffset < hw {
                    throw simulation.fail("leader \(id) epoch \(leader.leaderEpoch) high watermark \(hw) above ISR member \(member)'s log end \(memberDisk.log.endOffset)")
                }
                if memberDisk.chain[Int(hw) - 1] != disk.chain[Int(hw) - 1] {
                    throw simulation.fail("ISR member \(member) differs from leader \(id) below the high watermark \(hw)")
                }
            }
            for member in leader.maximalIsr where member != id {
                if let known = leader.followers[member]?.logEndOffset, known >= 0, known < hw {
                    throw simulation.fail("leader \(id) high watermark \(hw) above ISR member \(member)'s known end \(known)")
                }
            }
        }
    }

    /// After the run: every acknowledged write is below the high watermark of the leader, on every replica.
    func checkFinal(_ simulation: Simulation) throws {
        guard let id = simulation.leaders.first, let leader = simulation.broker(id) else { throw simulation.fail("no leader at the end") }
        for write in acked {
            for replica in simulation.ids where simulation.disks[simulation.index(replica)].log.entry(at: write.entry.offset) != write.entry {
                throw simulation.fail("ACKNOWLEDGED WRITE LOST: \(write.entry) not on broker \(replica) at the end")
            }
            if write.entry.offset >= leader.highWatermark { throw simulation.fail("acknowledged \(write.entry) above the final high watermark \(leader.highWatermark)") }
        }
    }
}

extension ProduceResult {
    var kind: String {
        switch self {
        case .success: "success"
        case .notLeaderOrFollower: "notLeaderOrFollower"
        case .notEnoughReplicas: "notEnoughReplicas"
        case .notEnoughReplicasAfterAppend: "notEnoughReplicasAfterAppend"
        case .requestTimedOut: "requestTimedOut"
        }
    }
}

