// Elections: Vote, BeginQuorumEpoch, EndQuorumEpoch, check quorum.
extension RaftNode {
    /// KIP-996 pre-vote: ask the voters whether they would vote for this node in `epoch + 1`,
    /// without bumping the epoch or persisting anything. A majority of grants makes it a real
    /// candidate; otherwise it retries after the election deadline. A node cut off from the
    /// quorum therefore never inflates its epoch and cannot depose a stable leader on return.
    mutating func becomeProspective() {
        if role == .follower { lostLeaderId = leaderId } else if role != .prospective { lostLeaderId = nil }
        role = .prospective
        leaderId = nil
        replicas = [:]
        votesGranted = [config.nodeId]
        votesRejected = []
        electionDeadline = now + randomElectionTimeout()
        let request = VoteRequest(
            candidateEpoch: epoch + 1, candidateId: config.nodeId,
            lastOffsetEpoch: log.lastEpoch, lastOffset: log.endOffset, preVote: true)
        for voter in otherVoters { send(.vote(request), to: voter) }
        maybeWinPreVote()
    }

    mutating func maybeWinPreVote() {
        if role == .prospective, votesGranted.count >= config.majority { becomeCandidate() }
    }

    /// Answers a pre-vote without changing any state: granted when the candidate's epoch is not
    /// behind ours, its log is at least as up to date, and we have not heard from a leader
    /// within the fetch timeout (a leader itself always refuses).
    mutating func handlePreVote(from: NodeID, _ request: VoteRequest) {
        let leaderAlive: Bool = switch role {
        case .leader: true
        case .follower: (lastLeaderContactMs ?? Int64.min) > now - config.fetchTimeoutMs
        default: false
        }
        let granted = request.candidateEpoch > epoch
            && !leaderAlive
            && config.voters.contains(request.candidateId)
            && log.isAtMostAsUpToDate(asLastEpoch: request.lastOffsetEpoch, endOffset: request.lastOffset)
        send(.voteResponse(VoteResponse(leaderEpoch: epoch, leaderId: leaderId, voteGranted: granted, preVote: true)), to: from)
    }

    mutating func handlePreVoteResponse(from: NodeID, _ response: VoteResponse) {
        // The leader itself answered: it is alive, follow it again.
        if role == .prospective, response.leaderEpoch == epoch, response.leaderId == from, from != config.nodeId {
            return transitionToFollower(leader: from, epoch: epoch)
        }
        observe(epoch: response.leaderEpoch, leader: response.leaderId)
        guard role == .prospective, response.leaderEpoch <= epoch, config.voters.contains(from) else { return }
        if response.voteGranted {
            votesRejected.remove(from)
            votesGranted.insert(from)
            maybeWinPreVote()
        } else if !votesGranted.contains(from), !votesRejected.contains(from) {
            votesRejected.insert(from)
            // Lost the pre-vote: retry after a short random backoff (nothing was bumped, so
            // retrying costs only messages).
            if config.voters.count - votesRejected.count < config.majority {
                electionDeadline = min(electionDeadline, now + config.electionBackoffStepMs + jitter())
            }
        }
    }

    mutating func becomeCandidate() {
        epoch += 1
        votedFor = config.nodeId
        persist()
        role = .candidate
        leaderId = nil
        replicas = [:]
        votesGranted = [config.nodeId]
        votesRejected = []
        electionDeadline = now + randomElectionTimeout()
        pending.append(.becameCandidate(epoch: epoch))
        let request = VoteRequest(
            candidateEpoch: epoch, candidateId: config.nodeId,
            lastOffsetEpoch: log.lastEpoch, lastOffset: log.endOffset)
        for voter in otherVoters { send(.vote(request), to: voter) }
        maybeWinElection()
    }

    mutating func maybeWinElection() {
        if role == .candidate, votesGranted.count >= config.majority { becomeLeader() }
    }

    mutating func becomeLeader() {
        role = .leader
        leaderId = config.nodeId
        leaderSince = now
        votesGranted = []
        replicas = [:]
        for voter in otherVoters { replicas[voter] = ReplicaState() }
        pending.append(.becameLeader(epoch: epoch))
        // The leader commits through an entry of its own epoch (Kafka's LeaderChangeMessage).
        let entry = LogEntry(epoch: epoch, offset: log.endOffset, kind: .leaderChange, payload: [])
        log.append(entry)
        pending.append(.appendToLog([entry]))
        for voter in otherVoters {
            send(.beginQuorumEpoch(BeginQuorumEpochRequest(leaderEpoch: epoch, leaderId: config.nodeId)), to: voter)
            replicas[voter]?.lastBeginQuorumSentMs = now
        }
        nextLeaderTick = now + config.fetchIntervalMs
        maybeAdvanceHighWatermark()
    }

    mutating func handleVote(from: NodeID, _ request: VoteRequest) {
        if request.preVote { return handlePreVote(from: from, request) }
        if request.candidateEpoch > epoch { transitionToUnattached(epoch: request.candidateEpoch) }
        var granted = false
        if request.candidateEpoch == epoch, role == .unattached,
            votedFor == nil || votedFor == request.candidateId,
            config.voters.contains(request.candidateId),
            log.isAtMostAsUpToDate(asLastEpoch: request.lastOffsetEpoch, endOffset: request.lastOffset)
        {
            granted = true
            if votedFor == nil {
                votedFor = request.candidateId
                persist()  // durable before the response below goes out
                electionDeadline = now + randomElectionTimeout()
            }
        }
        send(.voteResponse(VoteResponse(leaderEpoch: epoch, leaderId: leaderId, voteGranted: granted)), to: from)
    }

    mutating func handleVoteResponse(from: NodeID, _ response: VoteResponse) {
        if response.preVote { return handlePreVoteResponse(from: from, response) }
        observe(epoch: response.leaderEpoch, leader: response.leaderId)
        guard role == .candidate, response.leaderEpoch == epoch, config.voters.contains(from) else { return }
        if response.voteGranted {
            votesGranted.insert(from)
            maybeWinElection()
        } else if !votesRejected.contains(from) {
            votesRejected.insert(from)
            // Lost (a split vote): retry after a short random backoff, as Kafka's candidate
            // does, instead of a whole election timeout.
            if config.voters.count - votesRejected.count < config.majority {
                electionDeadline = min(electionDeadline, now + config.electionBackoffStepMs + jitter())
            }
        }
    }

    mutating func handleBeginQuorumEpoch(from: NodeID, _ request: BeginQuorumEpochRequest) {
        if request.leaderEpoch < epoch {
            send(.beginQuorumEpochResponse(QuorumResponse(errorCode: .fencedLeaderEpoch, leaderEpoch: epoch, leaderId: leaderId)), to: from)
            return
        }
        if request.leaderEpoch == epoch, role == .follower, leaderId == request.leaderId {
            fetchDeadline = now + randomFetchTimeout()
            lastLeaderContactMs = now
        } else if request.leaderEpoch > epoch || role != .leader {
            transitionToFollower(leader: request.leaderId, epoch: request.leaderEpoch)
        }
        send(.beginQuorumEpochResponse(QuorumResponse(leaderEpoch: epoch, leaderId: leaderId)), to: from)
    }

    mutating func handleBeginQuorumEpochResponse(from: NodeID, _ response: QuorumResponse) {
        observe(epoch: response.leaderEpoch, leader: response.leaderId)
    }

    mutating func handleEndQuorumEpoch(from: NodeID, _ request: EndQuorumEpochRequest) {
        if request.leaderEpoch < epoch { return }
        if request.leaderEpoch > epoch { transitionToUnattached(epoch: request.leaderEpoch) }
        let position = Int64(request.preferredSuccessors.firstIndex(of: config.nodeId) ?? request.preferredSuccessors.count)
        let deadline = now + position * config.electionBackoffStepMs
        switch role {
        case .follower where leaderId == request.leaderId:
            fetchDeadline = min(fetchDeadline, deadline)
            lastLeaderContactMs = nil  // the leader is gone: grant its successor's pre-vote
        case .unattached:
            electionDeadline = min(electionDeadline, deadline)
        default:
            break
        }
    }

    /// Graceful resignation: stop leading and ask the most caught-up follower to run first.
    mutating func resign() {
        guard role == .leader else { return }
        role = .resigned
        // No longer names itself as leader: a pre-vote answered by "leader 3 is alive" would send
        // the successors back to following this node for a whole fetch timeout.
        leaderId = nil
        electionDeadline = now + randomElectionTimeout()
        let successors = otherVoters.sorted {
            (replicas[$0]?.endOffset ?? 0, -$0) > (replicas[$1]?.endOffset ?? 0, -$1)
        }
        replicas = [:]
        let request = EndQuorumEpochRequest(leaderEpoch: epoch, leaderId: config.nodeId, preferredSuccessors: successors)
        for voter in successors { send(.endQuorumEpoch(request), to: voter) }
    }

    mutating func leaderTick() {
        nextLeaderTick = now + config.fetchIntervalMs
        // Re-announce to voters that are not fetching (lost BeginQuorumEpoch, or restarted).
        for voter in otherVoters {
            let state = replicas[voter] ?? ReplicaState()
            let silent = (state.lastFetchMs ?? Int64.min) <= now - config.beginQuorumRetryMs
            let due = (state.lastBeginQuorumSentMs ?? Int64.min) <= now - config.beginQuorumRetryMs
            if silent && due {
                send(.beginQuorumEpoch(BeginQuorumEpochRequest(leaderEpoch: epoch, leaderId: config.nodeId)), to: voter)
                replicas[voter, default: ReplicaState()].lastBeginQuorumSentMs = now
            }
        }
        // Check quorum: a leader cut off from a majority steps down instead of lingering.
        let timeout = config.checkQuorumTimeoutMs
        if now - leaderSince >= timeout {
            let inContact = 1 + otherVoters.filter { (replicas[$0]?.lastFetchMs ?? Int64.min) > now - timeout }.count
            if inContact < config.majority { resign() }
        }
    }
}
