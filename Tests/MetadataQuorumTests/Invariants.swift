import MetadataQuorum

/// Safety properties, checked on every action and after every step of a simulation.
struct Invariants {
    /// Election Safety: epoch -> its one leader.
    var leaderOfEpoch: [Int32: NodeID] = [:]
    /// The committed prefix as first reported by any node; it must never change.
    var committedLog: [LogEntry] = []
    /// Per node (index id-1), the last high watermark it reported in this incarnation.
    var highWatermarks: [Int64] = []
    /// Log Matching: (offset, epoch) -> hash of the whole prefix up to that entry.
    var prefixHashes: [OffsetEpoch: UInt64] = [:]
    /// Proposals a leader accepted, by offset (several epochs may have used the same offset).
    var proposals: [Int64: [LogEntry]] = [:]
    /// Proposals that committed: acknowledged to the client, never to be lost.
    var acknowledged = 0

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
        mix(UInt64(UInt32(bitPattern: entry.epoch)))
        mix(entry.kind == .data ? 1 : 2)
        for byte in entry.payload { mix(UInt64(byte)) }
        mix(UInt64(entry.payload.count))
        return hash
    }

    mutating func proposed(_ entry: LogEntry) {
        proposals[entry.offset, default: []].append(entry)
    }

    func isCommitted(payload: UInt32, from start: Int) -> Bool {
        let bytes = withUnsafeBytes(of: payload.bigEndian) { Array($0) }
        return committedLog[start...].contains { $0.kind == .data && $0.payload == bytes }
    }

    /// Log Matching: two logs with an entry of the same offset and epoch hold the same prefix.
    mutating func logMatching(_ entry: LogEntry, chain: UInt64, node: NodeID, simulation: Simulation) throws {
        let key = OffsetEpoch(offset: entry.offset, epoch: entry.epoch)
        if let known = prefixHashes[key] {
            if known != chain { throw simulation.fail("Log Matching: node \(node) holds a different prefix at offset \(entry.offset) epoch \(entry.epoch)") }
        } else {
            prefixHashes[key] = chain
        }
    }

    /// A node never truncates a committed entry it holds.
    func truncation(node: NodeID, disk: Disk, to end: Int64, simulation: Simulation) throws {
        let i = Int(node) - 1
        if end < highWatermarks[i] {
            throw simulation.fail("node \(node) truncates to \(end) below its high watermark \(highWatermarks[i])")
        }
        let upper = min(disk.log.endOffset, Int64(committedLog.count))
        if end < upper {
            for offset in end..<upper where disk.log.entry(at: offset) == committedLog[Int(offset)] {
                throw simulation.fail("node \(node) truncates committed entry at offset \(offset)")
            }
        }
    }

    /// Votes and fetch offsets are never ahead of the disk.
    func sendIsBackedByDisk(_ message: RaftMessage, from: NodeID, to: NodeID, disk: Disk, simulation: Simulation) throws {
        switch message {
        case .voteResponse(let response) where response.voteGranted && !response.preVote:
            if disk.state != PersistentState(epoch: response.leaderEpoch, votedFor: to) {
                throw simulation.fail("node \(from) granted its vote to \(to) in epoch \(response.leaderEpoch) before persisting it (disk \(disk.state))")
            }
        case .vote(let request) where !request.preVote:
            if disk.state != PersistentState(epoch: request.candidateEpoch, votedFor: from) {
                throw simulation.fail("candidate \(from) asks for votes before persisting its own")
            }
        case .fetch(let request):
            if request.fetchOffset != disk.log.endOffset || request.lastFetchedEpoch != disk.log.lastEpoch {
                throw simulation.fail("node \(from) fetches at \(request.fetchOffset) but its disk log ends at \(disk.log.endOffset)")
            }
        default:
            break
        }
    }

    /// The high watermark only moves forward, and a committed prefix is the same on every node.
    mutating func committed(node: NodeID, upTo end: Int64, disk: Disk, simulation: Simulation) throws {
        let i = Int(node) - 1
        let previous = highWatermarks[i]
        guard end > previous else { throw simulation.fail("node \(node) high watermark moved from \(previous) to \(end)") }
        guard end <= disk.log.endOffset else { throw simulation.fail("node \(node) commits \(end) beyond its durable log end \(disk.log.endOffset)") }
        for offset in previous..<end {
            let entry = disk.log.entry(at: offset)!
            if offset < Int64(committedLog.count) {
                if committedLog[Int(offset)] != entry {
                    throw simulation.fail("node \(node) commits offset \(offset) as \(entry), but \(committedLog[Int(offset)]) was committed")
                }
            } else {
                committedLog.append(entry)
                if entry.kind == .data {
                    guard proposals[offset, default: []].contains(entry) else {
                        throw simulation.fail("committed entry at \(offset) was never proposed: \(entry)")
                    }
                    acknowledged += 1
                }
            }
        }
        highWatermarks[i] = end
    }

    /// Election Safety and Leader Completeness.
    mutating func electedLeader(_ node: NodeID, epoch: Int32, log: RaftLog, simulation: Simulation) throws {
        if let other = leaderOfEpoch[epoch], other != node {
            throw simulation.fail("two leaders in epoch \(epoch): \(other) and \(node)")
        }
        leaderOfEpoch[epoch] = node
        for (offset, entry) in committedLog.enumerated() where Int64(offset) >= log.startOffset && log.entry(at: Int64(offset)) != entry {
            throw simulation.fail("leader \(node) of epoch \(epoch) lacks committed entry \(entry)")
        }
    }

    /// After every step: each live node's log is its disk log, its high watermark is the one it
    /// last reported and is within its log.
    func checkNodes(_ simulation: Simulation) throws {
        for (i, node) in simulation.nodes.enumerated() {
            guard let node else { continue }
            let disk = simulation.disks[i]
            if node.log.endOffset != disk.log.endOffset || node.log.lastEpoch != disk.log.lastEpoch {
                throw simulation.fail("node \(i + 1) log (end \(node.log.endOffset)) differs from its disk (end \(disk.log.endOffset))")
            }
            if node.persistentState != disk.state {
                throw simulation.fail("node \(i + 1) state \(node.persistentState) not persisted (disk \(disk.state))")
            }
            if node.highWatermark != highWatermarks[i] {
                throw simulation.fail("node \(i + 1) high watermark \(node.highWatermark) but reported \(highWatermarks[i])")
            }
        }
    }

    /// At the end of a run: every node's log agrees with the committed log below its high watermark.
    func checkFinal(_ simulation: Simulation) throws {
        for (i, node) in simulation.nodes.enumerated() {
            guard let node else { continue }
            for offset in Int(node.log.startOffset)..<Int(node.highWatermark) where node.log.entry(at: Int64(offset)) != committedLog[offset] {
                throw simulation.fail("node \(i + 1) offset \(offset) differs from the committed log")
            }
        }
    }
}
