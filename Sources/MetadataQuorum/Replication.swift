// Pull replication (KIP-595): followers fetch, the leader answers with entries or a diverging
// epoch, and advances the high watermark over a majority within its own epoch.
extension RaftNode {
    /// Appends `payload` if this node leads. The entry is acknowledged once committed.
    public mutating func propose(_ payload: [UInt8], now: Int64) -> (result: ProposeResult, actions: [RaftAction]) {
        self.now = max(self.now, now)
        pending = []
        guard role == .leader else { return (.notLeader(leaderId: leaderId, epoch: epoch), []) }
        let entry = LogEntry(epoch: epoch, offset: log.endOffset, payload: payload)
        log.append(entry)
        pending.append(.appendToLog([entry]))
        maybeAdvanceHighWatermark()
        return (.appended(epoch: entry.epoch, offset: entry.offset), takePending())
    }

    /// The driver wrote a snapshot of the applied state covering every entry below `offset`
    /// (at most the high watermark) and may delete those entries from disk.
    public mutating func compact(upTo offset: Int64) {
        log.compact(upTo: min(offset, highWatermark))
    }

    /// A follower made the leader's snapshot `snapshot` durable and replaced its log with an
    /// empty one starting at its end (after a `fetchSnapshot` action). Returns the actions to
    /// carry out (the next Fetch). Ignored, with no actions, unless this node still follows and
    /// the snapshot is the one it waits for or reaches past its log.
    public func acceptsSnapshot(_ snapshot: EpochEndOffset) -> Bool {
        role == .follower && (pendingSnapshot == snapshot || snapshot.endOffset > log.endOffset)
    }

    public mutating func installSnapshot(_ snapshot: EpochEndOffset, now: Int64) -> [RaftAction] {
        self.now = max(self.now, now)
        pending = []
        guard acceptsSnapshot(snapshot) else { return [] }
        pendingSnapshot = nil
        log.reset(toSnapshot: snapshot)
        highWatermark = max(highWatermark, snapshot.endOffset)
        lastLeaderContactMs = now
        fetchDeadline = now + randomFetchTimeout()
        sendFetch()
        return takePending()
    }

    mutating func sendFetch() {
        guard role == .follower, let leaderId, pendingSnapshot == nil else { return }
        let request = FetchRequest(
            currentLeaderEpoch: epoch, replicaId: config.nodeId,
            fetchOffset: log.endOffset, lastFetchedEpoch: log.lastEpoch)
        send(.fetch(request), to: leaderId)
        nextFetchAt = now + config.fetchIntervalMs
    }

    mutating func handleFetch(from: NodeID, _ request: FetchRequest) {
        func reply(_ error: QuorumError) {
            send(.fetchResponse(FetchResponse(
                errorCode: error, leaderEpoch: epoch, leaderId: leaderId, fetchOffset: request.fetchOffset,
                lastFetchedEpoch: request.lastFetchedEpoch, highWatermark: highWatermark)), to: from)
        }
        if request.currentLeaderEpoch < epoch { return reply(.fencedLeaderEpoch) }
        if request.currentLeaderEpoch > epoch {
            transitionToUnattached(epoch: request.currentLeaderEpoch)
            return reply(.unknownLeaderEpoch)
        }
        guard role == .leader else { return reply(.notLeaderOrFollower) }

        let isVoter = config.voters.contains(from)
        if isVoter { replicas[from, default: ReplicaState()].lastFetchMs = now }
        let found = log.endOffsetForEpoch(request.lastFetchedEpoch)
        let matches = request.fetchOffset == 0
            || (found.epoch == request.lastFetchedEpoch && found.endOffset >= request.fetchOffset)
        // The fetcher needs entries the log no longer holds: it loads the snapshot first.
        if let snapshot = log.snapshotId,
           request.fetchOffset < log.startOffset || (!matches && found.endOffset < log.startOffset) {
            send(.fetchResponse(FetchResponse(
                leaderEpoch: epoch, leaderId: leaderId, fetchOffset: request.fetchOffset,
                lastFetchedEpoch: request.lastFetchedEpoch, highWatermark: highWatermark,
                snapshotId: snapshot)), to: from)
            return
        }
        guard matches else {
            send(.fetchResponse(FetchResponse(
                leaderEpoch: epoch, leaderId: leaderId, fetchOffset: request.fetchOffset,
                lastFetchedEpoch: request.lastFetchedEpoch, highWatermark: highWatermark,
                divergingEpoch: found)), to: from)
            return
        }
        if isVoter {
            replicas[from, default: ReplicaState()].endOffset = request.fetchOffset
            maybeAdvanceHighWatermark()
        }
        send(.fetchResponse(FetchResponse(
            leaderEpoch: epoch, leaderId: leaderId, fetchOffset: request.fetchOffset,
            lastFetchedEpoch: request.lastFetchedEpoch, highWatermark: highWatermark,
            entries: log.entries(from: request.fetchOffset, maxCount: config.maxFetchEntries))), to: from)
    }

    mutating func handleFetchResponse(from: NodeID, _ response: FetchResponse) {
        observe(epoch: response.leaderEpoch, leader: response.leaderId)
        guard role == .follower, response.leaderEpoch == epoch, leaderId == from,
            response.errorCode == .none
        else { return }
        fetchDeadline = now + randomFetchTimeout()
        lastLeaderContactMs = now
        // Only the answer to the fetch matching the log as it is now (a stale duplicate is dropped).
        guard response.fetchOffset == log.endOffset, response.lastFetchedEpoch == log.lastEpoch else { return }

        if let snapshot = response.snapshotId {
            pendingSnapshot = snapshot
            pending.append(.fetchSnapshot(from: from, snapshot: snapshot))
            // Fetch again (and learn the current snapshot) if it is not installed by then.
            nextFetchAt = now + max(config.fetchTimeoutMs / 2, config.fetchIntervalMs)
            return
        }
        if let diverging = response.divergingEpoch {
            let mine = log.endOffsetForEpoch(diverging.epoch)
            // Never below the log start: what a snapshot covers is committed, hence the leader's.
            let truncateTo = max(log.startOffset, min(diverging.endOffset, mine.endOffset))
            log.truncate(toEndOffset: truncateTo)
            pending.append(.truncateLog(toEndOffset: truncateTo))
            sendFetch()
            return
        }
        var appended: [LogEntry] = []
        for entry in response.entries where entry.offset == log.endOffset && entry.epoch >= log.lastEpoch {
            log.append(entry)
            appended.append(entry)
        }
        if !appended.isEmpty { pending.append(.appendToLog(appended)) }
        if let leaderHighWatermark = response.highWatermark {
            let newHighWatermark = min(leaderHighWatermark, log.endOffset)
            if newHighWatermark > highWatermark {
                highWatermark = newHighWatermark
                pending.append(.committed(upTo: highWatermark))
            }
        }
        if appended.isEmpty {
            nextFetchAt = now + config.fetchIntervalMs
        } else {
            sendFetch()
        }
    }

    /// Advances the high watermark to the largest offset a majority of voters holds, provided
    /// the entry below it belongs to the leader's epoch (Raft's commit rule).
    mutating func maybeAdvanceHighWatermark() {
        guard role == .leader else { return }
        let offsets = config.voters.map { voter in
            voter == config.nodeId ? log.endOffset : (replicas[voter]?.endOffset ?? 0)
        }.sorted(by: >)
        let candidate = offsets[config.majority - 1]
        if candidate > highWatermark, log.entry(at: candidate - 1)?.epoch == epoch {
            highWatermark = candidate
            pending.append(.committed(upTo: candidate))
        }
    }
}
