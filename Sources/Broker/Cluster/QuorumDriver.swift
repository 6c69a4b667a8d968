import Foundation
import KafkaProtocol
import LogStorage
import Logging
import MetadataQuorum
import NIOCore
import Synchronization

/// Runs this node's member of the Raft metadata quorum (MetadataQuorum.RaftNode, a pure state
/// machine) for real: its log is `__cluster_metadata-0` on disk (one record batch per entry,
/// fsynced before anything that depends on it), its vote and epoch live in `quorum-state`, its
/// messages travel as KRaft's Kafka RPCs over the controller listener, and committed entries
/// are handed to the metadata image in order. Everything runs on one event loop.
///
/// Snapshots (KRaft's): after `metadata.log.max.record.bytes.between.snapshots` bytes of applied
/// entries, the image is written as a snapshot file (MetadataSnapshotFile) and the log entries it
/// covers are dropped; a follower whose fetch offset is below the leader's log start downloads
/// the leader's snapshot with FetchSnapshot and continues from its end; a restart loads the
/// newest snapshot, then the log after it.
final class QuorumDriver: Sendable {
    struct Voter: Sendable {
        var id: Int32
        var host: String
        var port: Int
    }

    let nodeId: Int32
    let voters: [Voter]
    private let clusterId: String
    private let loop: EventLoop
    private let log: LogStorage.PartitionLog
    private let stateFile: String
    private let peers: PeerDirectory
    private let logger: Logger
    private let requestTimeout: TimeAmount
    /// Called on the driver's loop with each committed operation's records, in log order.
    private let apply: @Sendable ([MetadataRecord], Int64) -> Void
    /// Committed entries are applied to the image here, in log order, so that a slow apply
    /// (opening logs for new partitions) never delays the quorum's own messages and timers.
    private let applyLoop: EventLoop
    /// The offset up to which the image holds the committed log (exclusive).
    private let imageApplied = Atomic<Int64>(0)
    private let core: Mutex<Core>
    /// Snapshots: the size that triggers one, the image to write, and the way to replace the
    /// image with a downloaded one (both used on the apply loop).
    private let snapshotBytes: Int64
    /// ... or the age of the oldest entry not in a snapshot that triggers one (0: size only).
    private let snapshotIntervalMs: Int64
    private let currentImage: @Sendable () -> MetadataImage
    /// (image, downloaded from the leader rather than read at start-up)
    private let installImage: @Sendable (MetadataImage, Bool) -> Void
    private let snapshotState = Mutex(SnapshotState())
    /// The snapshot found at start-up, loaded into the image by `start()`.
    private let initialSnapshot: (id: EpochEndOffset, records: [MetadataRecord])?
    private let snapshotQueue = DispatchQueue(label: "petrel.metadata-snapshots")

    private struct SnapshotState {
        /// Payload bytes applied since the last snapshot.
        var bytesSinceSnapshot: Int64 = 0
        /// When the first entry not in a snapshot was applied (monotonic ms).
        var unsnapshottedSinceMs: Int64?
        /// The last entry applied to the image (a snapshot by age ends there).
        var lastApplied: EpochEndOffset?
        var ageTimer: RepeatedTask?
        var writing = false
        /// A FetchSnapshot download in progress.
        var downloading: EpochEndOffset?
        var written = 0
        var installed = 0
    }

    private struct Waiter {
        var epoch: Int32
        var promise: EventLoopPromise<Int64>
    }

    private struct Core {
        var node: RaftNode
        var applied: Int64 = 0
        var timer: Scheduled<Void>?
        var waiters: [Int64: Waiter] = [:]
        /// First offset of this node's leadership epoch: the controller is ready once applied past it.
        var leaderStartOffset: Int64?
        var lastFetchFromVoter: [Int32: Int64] = [:]
        /// Leader: when each voter last fetched (monotonic ms), and when this leadership began.
        var lastFetchTimeFromVoter: [Int32: Int64] = [:]
        var leaderSinceMs: Int64 = 0
        var stopped = false
        /// Promise completions, run after the lock is released (a callback may call back in).
        var deferred: [@Sendable () -> Void] = []
    }

    /// Runs `body` under the lock, then the promise completions it queued.
    private func locked<T>(_ body: (inout Core) -> T) -> T {
        let (result, work) = core.withLock { c -> (T, [@Sendable () -> Void]) in
            let r = body(&c)
            let w = c.deferred
            c.deferred = []
            return (r, w)
        }
        for w in work { w() }
        return result
    }

    init(nodeId: Int32, voters: [Voter], clusterId: String, config: RaftConfig, log: LogStorage.PartitionLog, stateFile: String,
         loop: EventLoop, applyLoop: EventLoop, peers: PeerDirectory, requestTimeoutMs: Int, logger: Logger,
         snapshotBytes: Int, snapshotIntervalMs: Int = 0, currentImage: @escaping @Sendable () -> MetadataImage,
         installImage: @escaping @Sendable (MetadataImage, Bool) -> Void,
         apply: @escaping @Sendable ([MetadataRecord], Int64) -> Void) throws {
        self.applyLoop = applyLoop
        self.snapshotBytes = Int64(max(1, snapshotBytes))
        self.snapshotIntervalMs = Int64(max(0, snapshotIntervalMs))
        self.currentImage = currentImage
        self.installImage = installImage
        self.nodeId = nodeId
        self.voters = voters
        self.clusterId = clusterId
        self.loop = loop
        self.log = log
        self.stateFile = stateFile
        self.peers = peers
        self.logger = logger
        self.apply = apply
        self.requestTimeout = .milliseconds(Int64(requestTimeoutMs))
        let persisted = try Self.readState(stateFile)
        let snapshot = try Self.loadNewestSnapshot(in: log.directory, logger: logger)
        let start = snapshot?.id.endOffset ?? 0
        if log.logStartOffset > start {
            throw BrokerStartError("the metadata log \(log.directory) starts at offset \(log.logStartOffset) but no readable snapshot covers the entries below it; remove the directory to rejoin the cluster empty (the leader sends a snapshot)")
        }
        if log.logEndOffset < start {
            // The snapshot was downloaded, the crash came before the log was reset.
            try log.truncateFullyAndStartAt(start)
        }
        let entries = try Self.readEntries(log, from: start)
        let node = RaftNode(config: config, persisted: persisted, log: RaftLog(entries, snapshot: snapshot?.id), now: MetadataManager.monotonicMs())
        var core = Core(node: node)
        core.applied = start
        self.core = Mutex(core)
        self.initialSnapshot = snapshot
        let after = snapshot.map { " after snapshot \(MetadataSnapshotFile.name($0.id)) (\($0.records.count) records)" } ?? ""
        logger.info("metadata quorum: node \(nodeId) of voters \(voters.map(\.id)), epoch \(persisted.epoch), \(entries.count) log entries\(after)")
    }

    // MARK: lifecycle

    func start() {
        if let (id, records) = initialSnapshot {
            applyLoop.execute { [self] in
                installImage(MetadataImage.fromSnapshot(records, offset: id.endOffset - 1), false)
                imageApplied.store(id.endOffset, ordering: .releasing)
            }
        }
        loop.execute { [self] in
            locked { c in
                let actions = c.node.handle(.tick, now: MetadataManager.monotonicMs())
                perform(actions, core: &c)
            }
        }
        // A snapshot by age is also due when no entry arrives any more.
        if snapshotIntervalMs > 0 {
            let every = TimeAmount.milliseconds(min(snapshotIntervalMs, 1_000))
            let timer = applyLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { [self] _ in
                guard let last = snapshotState.withLock({ $0.lastApplied }) else { return }
                noteApplied(offset: last.endOffset, epoch: last.epoch, bytes: 0)
            }
            snapshotState.withLock { $0.ageTimer = timer }
        }
    }

    /// Graceful leader resignation (EndQuorumEpoch), then stop timers.
    func shutdown() async {
        try? await loop.submit { [self] in
            locked { c in
                if c.node.role == .leader {
                    let actions = c.node.handle(.resign, now: MetadataManager.monotonicMs())
                    perform(actions, core: &c)
                }
            }
        }.get()
        try? await Task.sleep(nanoseconds: 50_000_000)
        try? await loop.submit { [self] in
            locked { c in
                c.stopped = true
                c.timer?.cancel()
                for (_, w) in c.waiters { let promise = w.promise; c.deferred.append { promise.fail(NotControllerError(leaderId: nil)) } }
                c.waiters = [:]
            }
        }.get()
        snapshotState.withLock { s in
            s.ageTimer?.cancel()
            s.ageTimer = nil
        }
    }

    // MARK: queries

    struct Status: Sendable {
        var leaderId: Int32?
        var epoch: Int32
        var role: RaftRole
        var highWatermark: Int64
        var logEndOffset: Int64
        var isActiveController: Bool
        var voterEndOffsets: [Int32: Int64]
    }

    func status() -> Status {
        locked { c in
            let leader = c.node.role == .leader
            var ends: [Int32: Int64] = [:]
            for v in voters { ends[v.id] = v.id == nodeId ? c.node.log.endOffset : (leader ? (c.lastFetchFromVoter[v.id] ?? -1) : -1) }
            return Status(leaderId: c.node.role == .leader ? nodeId : c.node.leaderId, epoch: c.node.epoch, role: c.node.role,
                          highWatermark: c.node.highWatermark, logEndOffset: c.node.log.endOffset,
                          isActiveController: leader && c.leaderStartOffset.map { imageApplied.load(ordering: .acquiring) > $0 } == true,
                          voterEndOffsets: ends)
        }
    }

    /// Leader: how long each other voter has not fetched (ms). In combined mode a voter is also a
    /// broker, so a silent voter is a dead or stopped broker, known well before its heartbeat
    /// session expires. Empty when this node is not the leader.
    func voterSilenceMs() -> [Int32: Int64] {
        locked { c in
            guard c.node.role == .leader else { return [:] }
            let now = MetadataManager.monotonicMs()
            var silence = [Int32: Int64]()
            for v in voters where v.id != nodeId {
                silence[v.id] = now - (c.lastFetchTimeFromVoter[v.id] ?? c.leaderSinceMs)
            }
            return silence
        }
    }

    // MARK: proposals

    /// Appends an operation's records through the quorum; the future succeeds with the entry's
    /// offset once it is committed and applied, and fails if this node is not the leader or
    /// loses leadership first.
    func propose(_ records: [MetadataRecord]) -> EventLoopFuture<Int64> {
        let payload: [UInt8]
        do { payload = try RaftWire.payload(records) } catch { return loop.makeFailedFuture(error) }
        return loop.flatSubmit { [self] in
            locked { c -> EventLoopFuture<Int64> in
                guard !c.stopped else { return loop.makeFailedFuture(NotControllerError(leaderId: nil)) }
                guard c.node.role == .leader, let start = c.leaderStartOffset, imageApplied.load(ordering: .acquiring) > start else {
                    return loop.makeFailedFuture(NotControllerError(leaderId: c.node.role == .leader ? nil : c.node.leaderId))
                }
                let (result, actions) = c.node.propose(payload, now: MetadataManager.monotonicMs())
                switch result {
                case .notLeader(let leader, _):
                    return loop.makeFailedFuture(NotControllerError(leaderId: leader))
                case .appended(let epoch, let offset):
                    let promise = loop.makePromise(of: Int64.self)
                    c.waiters[offset] = Waiter(epoch: epoch, promise: promise)
                    perform(actions, core: &c)
                    return promise.futureResult
                }
            }
        }
    }

    // MARK: inbound RPCs

    /// Handles a quorum request from another node; the future holds the answer to send back.
    func receive(from: Int32, _ message: RaftMessage) -> EventLoopFuture<RaftMessage?> {
        loop.flatSubmit { [self] in
            locked { c -> EventLoopFuture<RaftMessage?> in
                guard !c.stopped else { return loop.makeSucceededFuture(nil) }
                let reply = handleRequest(from: from, message, core: &c)
                return loop.makeSucceededFuture(reply)
            }
        }
    }

    private func handleRequest(from: Int32, _ message: RaftMessage, core c: inout Core) -> RaftMessage? {
        if case .fetch = message {
            if case .fetch(let r) = message { c.lastFetchFromVoter[from] = r.fetchOffset }
            c.lastFetchTimeFromVoter[from] = MetadataManager.monotonicMs()
        }
        let actions = c.node.handle(.received(from: from, message), now: MetadataManager.monotonicMs())
        var reply: RaftMessage?
        var rest = [RaftAction]()
        for action in actions {
            if case .send(let to, let m) = action, to == from, reply == nil, Self.isResponse(m) { reply = m } else { rest.append(action) }
        }
        perform(rest, core: &c)
        return reply
    }

    private static func isResponse(_ m: RaftMessage) -> Bool {
        switch m {
        case .voteResponse, .beginQuorumEpochResponse, .fetchResponse: return true
        case .vote, .beginQuorumEpoch, .endQuorumEpoch, .fetch: return false
        }
    }

    // MARK: actions

    private func perform(_ actions: [RaftAction], core c: inout Core) {
        for action in actions {
            switch action {
            case .persistState(let s):
                do { try Self.writeState(s, to: stateFile, nodeId: nodeId, leaderId: c.node.leaderId) } catch {
                    fatalDisk("cannot write the quorum state file \(stateFile): \(error)")
                }
            case .appendToLog(let entries):
                do {
                    for entry in entries {
                        let batch = try RaftWire.batch(for: entry)
                        // The metadata log flushes every message (fsync before anything depends on it).
                        _ = try log.appendAsFollower(batch.buffer)
                    }
                } catch {
                    fatalDisk("cannot append to the metadata log \(log.directory): \(error)")
                }
            case .truncateLog(let end):
                do { _ = try log.truncate(to: end) } catch {
                    fatalDisk("cannot truncate the metadata log \(log.directory) to \(end): \(error)")
                }
                for (offset, w) in c.waiters where offset >= end {
                    let promise = w.promise
                    c.deferred.append { promise.fail(NotControllerError(leaderId: nil)) }
                    c.waiters.removeValue(forKey: offset)
                }
            case .send(let to, let message):
                send(message, to: to)
            case .committed(let upTo):
                applyCommitted(upTo: upTo, core: &c)
            case .becameLeader(let epoch):
                c.leaderStartOffset = c.node.log.endOffset - 1
                c.lastFetchTimeFromVoter = [:]
                c.leaderSinceMs = MetadataManager.monotonicMs()
                logger.notice("metadata quorum: this node (\(nodeId)) is the active controller for epoch \(epoch)")
            case .becameFollower(let leader, let epoch):
                c.leaderStartOffset = nil
                failWaiters(core: &c, leader: leader)
                logger.info("metadata quorum: following leader \(leader) in epoch \(epoch)")
            case .becameCandidate(let epoch):
                c.leaderStartOffset = nil
                failWaiters(core: &c, leader: nil)
                logger.info("metadata quorum: standing for election in epoch \(epoch)")
            case .fetchSnapshot(let leader, let snapshot):
                downloadSnapshot(snapshot, from: leader, epoch: c.node.epoch)
            }
        }
        if c.node.role != .leader, c.leaderStartOffset != nil {
            c.leaderStartOffset = nil
            failWaiters(core: &c, leader: c.node.leaderId)
        }
        schedule(core: &c)
    }

    private func failWaiters(core c: inout Core, leader: Int32?) {
        for (_, w) in c.waiters { let promise = w.promise; c.deferred.append { promise.fail(NotControllerError(leaderId: leader)) } }
        c.waiters = [:]
    }

    private func applyCommitted(upTo: Int64, core c: inout Core) {
        while c.applied < upTo, let entry = c.node.log.entry(at: c.applied) {
            var records: [MetadataRecord]?
            if entry.kind == .data {
                do {
                    records = try RaftWire.records(inPayload: entry.payload)
                } catch {
                    logger.error("metadata log entry \(entry.offset) does not decode (\(error)); skipped")
                }
            }
            let waiter = c.waiters.removeValue(forKey: entry.offset)
            let offset = entry.offset, ok = waiter?.epoch == entry.epoch, epoch = entry.epoch, bytes = entry.payload.count
            let apply = self.apply, applyLoop = self.applyLoop
            // Queued in log order (deferred work runs in order on this loop, and the apply loop
            // runs its tasks in order); a proposal completes once the image holds it.
            c.deferred.append { [self] in
                applyLoop.execute { [self] in
                    if let records { apply(records, offset) }
                    imageApplied.store(offset + 1, ordering: .releasing)
                    if records != nil { noteApplied(offset: offset, epoch: epoch, bytes: bytes) }
                    if let waiter {
                        if ok { waiter.promise.succeed(offset) } else { waiter.promise.fail(NotControllerError(leaderId: nil)) }
                    }
                }
            }
            c.applied += 1
        }
    }

    private func schedule(core c: inout Core) {
        guard !c.stopped else { return }
        c.timer?.cancel()
        let wake = c.node.nextWakeup
        let delay = max(1, min(wake - MetadataManager.monotonicMs(), 1000))
        c.timer = loop.scheduleTask(in: .milliseconds(delay)) { [self] in
            locked { c in
                guard !c.stopped else { return }
                let actions = c.node.handle(.tick, now: MetadataManager.monotonicMs())
                perform(actions, core: &c)
            }
        }
    }

    private func fatalDisk(_ message: String) -> Never {
        logger.critical("\(message). The node stops: a quorum member must not continue without its durable state.")
        fatalError(message)
    }

    // MARK: outbound RPCs

    private func send(_ message: RaftMessage, to node: Int32) {
        guard let voter = voters.first(where: { $0.id == node }) else { return }
        let connection = peers.connection(to: node, host: voter.host, port: voter.port, purpose: "quorum")
        let future: EventLoopFuture<KafkaResponse>
        switch message {
        case .vote(let r):
            future = connection.send(RaftWire.voteRequest(r, clusterId: clusterId, voterId: node), version: RaftWire.voteVersion, timeout: requestTimeout)
        case .beginQuorumEpoch(let r):
            future = connection.send(RaftWire.beginRequest(r, clusterId: clusterId, voterId: node), version: RaftWire.beginVersion, timeout: requestTimeout)
        case .endQuorumEpoch(let r):
            future = connection.send(RaftWire.endRequest(r, clusterId: clusterId), version: RaftWire.endVersion, timeout: requestTimeout)
        case .fetch(let r):
            future = connection.send(RaftWire.fetchRequest(r, clusterId: clusterId), version: RaftWire.fetchVersion, timeout: requestTimeout)
        case .voteResponse, .beginQuorumEpochResponse, .fetchResponse:
            return  // answers travel as RPC responses (receive(from:_:))
        }
        future.hop(to: loop).whenComplete { [self] result in
            switch result {
            case .failure(let error):
                logger.debug("metadata quorum: request to node \(node) failed: \(error)")
            case .success(let response):
                do {
                    guard let reply = try RaftWire.message(ofResponse: response, to: message) else { return }
                    locked { c in
                        guard !c.stopped else { return }
                        let actions = c.node.handle(.received(from: node, reply), now: MetadataManager.monotonicMs())
                        perform(actions, core: &c)
                    }
                } catch {
                    logger.warning("metadata quorum: node \(node) sent a malformed answer: \(error)")
                }
            }
        }
    }

    // MARK: snapshots

    /// On the apply loop, after the entry at `offset` is in the image: once enough bytes went by
    /// (`metadata.log.max.record.bytes.between.snapshots`) or the oldest entry not in a snapshot
    /// is old enough (`metadata.log.max.snapshot.interval.ms`), writes the image as a snapshot
    /// (in the background), then drops the log entries it covers.
    private func noteApplied(offset: Int64, epoch: Int32, bytes: Int) {
        let now = MetadataManager.monotonicMs()
        let due = snapshotState.withLock { s -> Bool in
            if bytes > 0 {
                s.bytesSinceSnapshot += Int64(bytes)
                if s.unsnapshottedSinceMs == nil { s.unsnapshottedSinceMs = now }
                s.lastApplied = EpochEndOffset(epoch: epoch, endOffset: offset)
            }
            guard s.unsnapshottedSinceMs != nil else { return false }
            let bySize = s.bytesSinceSnapshot >= snapshotBytes
            let byAge = snapshotIntervalMs > 0 && now - (s.unsnapshottedSinceMs ?? now) >= snapshotIntervalMs
            guard bySize || byAge, !s.writing, s.downloading == nil else { return false }
            s.writing = true
            s.bytesSinceSnapshot = 0
            s.unsnapshottedSinceMs = nil
            return true
        }
        guard due else { return }
        let image = currentImage()
        let id = EpochEndOffset(epoch: epoch, endOffset: offset + 1)
        snapshotQueue.async { [self] in writeSnapshot(image, id: id) }
    }

    private func writeSnapshot(_ image: MetadataImage, id: EpochEndOffset) {
        let records = image.snapshotRecords()
        do {
            let bytes = try MetadataSnapshotFile.encode(records, id: id, timestamp: Int64(Date().timeIntervalSince1970 * 1000))
            try MetadataSnapshotFile.write(bytes, id: id, in: log.directory)
            logger.info("metadata quorum: wrote snapshot \(MetadataSnapshotFile.name(id)) (\(records.count) records, \(bytes.readableBytes) bytes); the log entries below offset \(id.endOffset) are dropped")
        } catch {
            logger.error("metadata quorum: cannot write snapshot \(MetadataSnapshotFile.name(id)) in \(log.directory): \(error); the metadata log keeps growing until a snapshot succeeds (check disk space and permissions)")
            snapshotState.withLock { $0.writing = false }
            return
        }
        loop.execute { [self] in
            locked { c in c.node.compact(upTo: id.endOffset) }
            do {
                // Entries below the snapshot leave the disk too (whole segments; the one holding
                // the snapshot's end stays until the next snapshot).
                _ = log.updateHighWatermark(id.endOffset)
                if let active = log.segmentBaseOffsets.last, active < id.endOffset, log.logEndOffset > active { try log.roll() }
                _ = try log.deleteRecords(before: id.endOffset)
                _ = try log.removeDeletedFiles()
            } catch {
                logger.warning("metadata quorum: cannot delete metadata log segments below \(id.endOffset) in \(log.directory): \(error)")
            }
            // The previous snapshot stays for a follower that may be downloading it.
            MetadataSnapshotFile.clean(in: log.directory, keep: 2)
            snapshotState.withLock {
                $0.writing = false
                $0.written += 1
            }
        }
    }

    /// Snapshots written and downloaded since start-up (tests and logs).
    var snapshotCounts: (written: Int, installed: Int) { snapshotState.withLock { ($0.written, $0.installed) } }

    /// The newest snapshot in `directory` that reads back whole; a corrupt newer one is set aside.
    static func loadNewestSnapshot(in directory: String, logger: Logger) throws -> (id: EpochEndOffset, records: [MetadataRecord])? {
        MetadataSnapshotFile.clean(in: directory, keep: Int.max)
        for id in MetadataSnapshotFile.list(in: directory).reversed() {
            do {
                let records = try MetadataSnapshotFile.decode(try MetadataSnapshotFile.read(id, in: directory))
                return (id, records)
            } catch {
                let path = MetadataSnapshotFile.path(id, in: directory)
                logger.error("metadata quorum: snapshot \(path) is unreadable (\(error)); renamed to .corrupt, trying an older one")
                _ = rename(path, path + ".corrupt")
            }
        }
        return nil
    }

    /// Follower: downloads `snapshot` from the leader with FetchSnapshot, writes it, resets the
    /// log to start at its end, installs it in the quorum state and the image.
    private func downloadSnapshot(_ snapshot: EpochEndOffset, from leader: Int32, epoch: Int32) {
        let start = snapshotState.withLock { s -> Bool in
            guard s.downloading == nil else { return false }
            s.downloading = snapshot
            return true
        }
        guard start, let voter = voters.first(where: { $0.id == leader }) else { return }
        logger.info("metadata quorum: this node's log ends below leader \(leader)'s log start; fetching its snapshot \(MetadataSnapshotFile.name(snapshot))")
        let connection = peers.connection(to: leader, host: voter.host, port: voter.port, purpose: "quorum")
        var collected = ByteBuffer()
        func finish(_ failure: String?) {
            if let failure { logger.warning("metadata quorum: snapshot download from node \(leader) failed: \(failure); fetching again") }
            snapshotState.withLock { $0.downloading = nil }
        }
        func fetch(position: Int64) {
            let request = RaftWire.fetchSnapshotRequest(snapshot, position: position, epoch: epoch, clusterId: clusterId, replicaId: nodeId)
            connection.send(request, version: RaftWire.fetchSnapshotVersion, timeout: requestTimeout).hop(to: loop).whenComplete { [self] result in
                switch result {
                case .failure(let error):
                    finish("\(error)")
                case .success(let response):
                    guard case .fetchSnapshot(let r) = response, r.errorCode == 0,
                          let p = r.topics.first?.partitions.first else { return finish("unexpected answer \(response)") }
                    guard p.errorCode == 0 else { return finish("error \(KafkaErrorCode(rawValue: p.errorCode).map { "\($0)" } ?? "\(p.errorCode)")") }
                    guard p.position == position, p.size >= 0, position + Int64(p.unalignedRecords.readableBytes) <= p.size else {
                        return finish("chunk at \(p.position) of \(p.size) bytes does not continue at \(position)")
                    }
                    var chunk = p.unalignedRecords
                    collected.writeBuffer(&chunk)
                    let next = position + Int64(p.unalignedRecords.readableBytes)
                    if next < p.size {
                        guard p.unalignedRecords.readableBytes > 0 else { return finish("empty chunk at \(position)") }
                        return fetch(position: next)
                    }
                    let bytes = collected
                    snapshotQueue.async { [self] in
                        do {
                            let records = try MetadataSnapshotFile.decode(bytes)
                            try MetadataSnapshotFile.write(bytes, id: snapshot, in: log.directory)
                            loop.execute { [self] in
                                install(snapshot, records: records)
                                finish(nil)
                            }
                        } catch {
                            loop.execute { finish("\(error)") }
                        }
                    }
                }
            }
        }
        fetch(position: 0)
    }

    private func install(_ snapshot: EpochEndOffset, records: [MetadataRecord]) {
        locked { c in
            guard !c.stopped, c.node.acceptsSnapshot(snapshot) else { return }
            do { try log.truncateFullyAndStartAt(snapshot.endOffset) } catch {
                fatalDisk("cannot reset the metadata log \(log.directory) to start at snapshot \(snapshot.endOffset): \(error)")
            }
            let actions = c.node.installSnapshot(snapshot, now: MetadataManager.monotonicMs())
            if c.applied < snapshot.endOffset {
                c.applied = snapshot.endOffset
                let image = MetadataImage.fromSnapshot(records, offset: snapshot.endOffset - 1)
                c.deferred.append { [self] in
                    applyLoop.execute { [self] in
                        installImage(image, true)
                        imageApplied.store(snapshot.endOffset, ordering: .releasing)
                        // Counted once the image (and the stray-log cleanup) is in place.
                        snapshotState.withLock { $0.installed += 1 }
                    }
                }
            } else {
                snapshotState.withLock { $0.installed += 1 }
            }
            snapshotState.withLock {
                $0.bytesSinceSnapshot = 0
                $0.unsnapshottedSinceMs = nil
            }
            logger.notice("metadata quorum: installed snapshot \(MetadataSnapshotFile.name(snapshot)) from the leader (\(records.count) records); fetching the log from offset \(snapshot.endOffset)")
            perform(actions, core: &c)
        }
        MetadataSnapshotFile.clean(in: log.directory, keep: 2)
    }

    /// Leader: a chunk of snapshot `id` for a follower's FetchSnapshot.
    func serveSnapshot(_ id: EpochEndOffset, position: Int64, maxBytes: Int, currentLeaderEpoch: Int32) -> EventLoopFuture<KafkaProtocol.FetchSnapshotResponse.PartitionSnapshot> {
        loop.submit { [self] in
            let (role, epoch, leader) = locked { c in (c.node.role, c.node.epoch, c.node.role == .leader ? nodeId : c.node.leaderId) }
            var p = KafkaProtocol.FetchSnapshotResponse.PartitionSnapshot()
            p.index = 0
            p.snapshotId = .init(endOffset: id.endOffset, epoch: id.epoch)
            p.currentLeader = .init(leaderId: leader ?? -1, leaderEpoch: epoch)
            if currentLeaderEpoch < epoch {
                p.errorCode = KafkaErrorCode.fencedLeaderEpoch.rawValue
            } else if currentLeaderEpoch > epoch {
                p.errorCode = KafkaErrorCode.unknownLeaderEpoch.rawValue
            } else if role != .leader {
                p.errorCode = KafkaErrorCode.notLeaderOrFollower.rawValue
            } else if let bytes = try? MetadataSnapshotFile.read(id, in: log.directory) {
                p.size = Int64(bytes.readableBytes)
                p.position = position
                if position < 0 || position > p.size {
                    p.errorCode = RaftWire.positionOutOfRange
                } else {
                    let length = min(Int(p.size - position), max(1, maxBytes))
                    p.unalignedRecords = bytes.getSlice(at: bytes.readerIndex + Int(position), length: length) ?? ByteBuffer()
                }
            } else {
                p.errorCode = KafkaErrorCode.snapshotNotFound.rawValue
            }
            return p
        }
    }

    // MARK: durable state

    static func readEntries(_ log: LogStorage.PartitionLog, from start: Int64) throws -> [MetadataQuorum.LogEntry] {
        var entries = [MetadataQuorum.LogEntry]()
        var offset = max(start, log.logStartOffset)
        let end = log.logEndOffset
        while offset < end {
            let read = try log.read(from: offset, maxBytes: 8 * 1024 * 1024, upTo: end, minOneBatch: true)
            guard read.records.readableBytes > 0 else { break }
            let decoded = try RaftWire.decodeEntries(read.records)
            guard let last = decoded.last else { break }
            for e in decoded where e.offset == start + Int64(entries.count) { entries.append(e) }
            offset = last.offset + 1
        }
        return entries
    }

    /// Kafka's `quorum-state` file (JSON: leaderEpoch, votedId, leaderId).
    static func readState(_ path: String) throws -> PersistentState {
        guard let data = FileManager.default.contents(atPath: path) else { return PersistentState() }
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BrokerStartError("quorum state file \(path) is not a JSON object; restore it or remove the node's metadata log dir to rejoin empty")
        }
        let epoch = (json["leaderEpoch"] as? NSNumber)?.int32Value ?? 0
        let voted = (json["votedId"] as? NSNumber)?.int32Value ?? -1
        return PersistentState(epoch: epoch, votedFor: voted >= 0 ? voted : nil)
    }

    static func writeState(_ s: PersistentState, to path: String, nodeId: Int32, leaderId: Int32?) throws {
        let text = "{\"leaderId\":\(leaderId ?? -1),\"leaderEpoch\":\(s.epoch),\"votedId\":\(s.votedFor ?? -1),\"appliedOffset\":0,\"currentVoters\":null,\"data_version\":0}"
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BrokerStartError("open \(tmp): errno \(errno)") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0 else { throw BrokerStartError("write \(tmp): errno \(errno)") }
        guard rename(tmp, path) == 0 else { throw BrokerStartError("rename \(tmp): errno \(errno)") }
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY)
        if dir >= 0 { _ = fsync(dir); close(dir) }
    }
}

/// This node is not the active controller; `leaderId` is the one it knows, if any.
struct NotControllerError: Error, CustomStringConvertible {
    var leaderId: Int32?
    var description: String { "this node is not the active controller" + (leaderId.map { " (the active controller is node \($0))" } ?? " (no controller is elected yet)") }
}
