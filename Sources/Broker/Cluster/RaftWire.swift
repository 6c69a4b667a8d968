import KafkaProtocol
import MetadataQuorum
import NIOCore

/// Translates the quorum's messages (MetadataQuorum.RaftMessage) to and from KRaft's Kafka
/// messages: Vote, BeginQuorumEpoch, EndQuorumEpoch and Fetch on `__cluster_metadata-0`.
/// Pure: bytes in, values out; no sockets.
enum RaftWire {
    static let topic = "__cluster_metadata"
    static let voteVersion: Int16 = 1
    static let beginVersion: Int16 = 1
    static let endVersion: Int16 = 1
    static let fetchVersion: Int16 = 12
    static let fetchSnapshotVersion: Int16 = 0
    /// POSITION_OUT_OF_RANGE (FetchSnapshot's position is beyond the snapshot's size); the
    /// errors table in this tree has no entry for it, so the raw code.
    static let positionOutOfRange: Int16 = 99
    /// KIP-996's PreVote flag. The Vote spec in this tree (v0–1) predates it, so Petrel carries
    /// it as a tagged field of the partition data; a node that does not know the tag ignores it.
    static let preVoteTag: UInt32 = 0x5045

    // MARK: requests out

    static func voteRequest(_ r: MetadataQuorum.VoteRequest, clusterId: String, voterId: Int32) -> KafkaProtocol.VoteRequest {
        var p = KafkaProtocol.VoteRequest.PartitionData()
        p.partitionIndex = 0
        p.candidateEpoch = r.candidateEpoch
        p.candidateId = r.candidateId
        p.lastOffsetEpoch = r.lastOffsetEpoch
        p.lastOffset = r.lastOffset
        if r.preVote { p.unknownTaggedFields = [TaggedField(tag: preVoteTag, data: ByteBuffer(bytes: [1]))] }
        var request = KafkaProtocol.VoteRequest()
        request.clusterId = clusterId
        request.voterId = voterId
        request.topics = [.init(topicName: topic, partitions: [p])]
        return request
    }

    static func beginRequest(_ r: MetadataQuorum.BeginQuorumEpochRequest, clusterId: String, voterId: Int32) -> KafkaProtocol.BeginQuorumEpochRequest {
        var p = KafkaProtocol.BeginQuorumEpochRequest.PartitionData()
        p.leaderId = r.leaderId
        p.leaderEpoch = r.leaderEpoch
        var request = KafkaProtocol.BeginQuorumEpochRequest()
        request.clusterId = clusterId
        request.voterId = voterId
        request.topics = [.init(topicName: topic, partitions: [p])]
        return request
    }

    static func endRequest(_ r: MetadataQuorum.EndQuorumEpochRequest, clusterId: String) -> KafkaProtocol.EndQuorumEpochRequest {
        var p = KafkaProtocol.EndQuorumEpochRequest.PartitionData()
        p.leaderId = r.leaderId
        p.leaderEpoch = r.leaderEpoch
        p.preferredSuccessors = r.preferredSuccessors
        p.preferredCandidates = r.preferredSuccessors.map { .init(candidateId: $0) }
        var request = KafkaProtocol.EndQuorumEpochRequest()
        request.clusterId = clusterId
        request.topics = [.init(topicName: topic, partitions: [p])]
        return request
    }

    static func fetchRequest(_ r: MetadataQuorum.FetchRequest, clusterId: String) -> KafkaProtocol.FetchRequest {
        var p = KafkaProtocol.FetchRequest.FetchPartition()
        p.partition = 0
        p.currentLeaderEpoch = r.currentLeaderEpoch
        p.fetchOffset = r.fetchOffset
        p.lastFetchedEpoch = r.lastFetchedEpoch
        p.partitionMaxBytes = 8 * 1024 * 1024
        var request = KafkaProtocol.FetchRequest()
        request.clusterId = clusterId
        request.replicaId = r.replicaId
        request.maxWaitMs = 0
        request.minBytes = 0
        request.topics = [.init(topic: topic, partitions: [p])]
        return request
    }

    static func fetchSnapshotRequest(_ id: EpochEndOffset, position: Int64, epoch: Int32, clusterId: String, replicaId: Int32) -> KafkaProtocol.FetchSnapshotRequest {
        var p = KafkaProtocol.FetchSnapshotRequest.PartitionSnapshot()
        p.partition = 0
        p.currentLeaderEpoch = epoch
        p.snapshotId = .init(endOffset: id.endOffset, epoch: id.epoch)
        p.position = position
        var request = KafkaProtocol.FetchSnapshotRequest()
        request.clusterId = clusterId
        request.replicaId = replicaId
        request.maxBytes = 1024 * 1024
        request.topics = [.init(name: topic, partitions: [p])]
        return request
    }

    // MARK: requests in

    /// The quorum message a request carries, and who sent it; nil when it is not for the
    /// metadata partition or is malformed.
    static func message(of request: KafkaRequest) -> (from: Int32, RaftMessage)? {
        switch request {
        case .vote(let r):
            guard let p = r.topics.first(where: { $0.topicName == topic })?.partitions.first else { return nil }
            let preVote = p.unknownTaggedFields.contains { $0.tag == preVoteTag && $0.data.getInteger(at: $0.data.readerIndex, as: UInt8.self) == 1 }
            return (p.candidateId, .vote(.init(candidateEpoch: p.candidateEpoch, candidateId: p.candidateId,
                                                lastOffsetEpoch: p.lastOffsetEpoch, lastOffset: p.lastOffset, preVote: preVote)))
        case .beginQuorumEpoch(let r):
            guard let p = r.topics.first(where: { $0.topicName == topic })?.partitions.first else { return nil }
            return (p.leaderId, .beginQuorumEpoch(.init(leaderEpoch: p.leaderEpoch, leaderId: p.leaderId)))
        case .endQuorumEpoch(let r):
            guard let p = r.topics.first(where: { $0.topicName == topic })?.partitions.first else { return nil }
            let successors = p.preferredSuccessors.isEmpty ? p.preferredCandidates.map(\.candidateId) : p.preferredSuccessors
            return (p.leaderId, .endQuorumEpoch(.init(leaderEpoch: p.leaderEpoch, leaderId: p.leaderId, preferredSuccessors: successors)))
        case .fetch(let r):
            guard let t = r.topics.first, t.topic == topic, let p = t.partitions.first else { return nil }
            return (r.replicaId, .fetch(.init(currentLeaderEpoch: p.currentLeaderEpoch, replicaId: r.replicaId,
                                              fetchOffset: p.fetchOffset, lastFetchedEpoch: p.lastFetchedEpoch)))
        default:
            return nil
        }
    }

    /// Whether a Fetch request reads the metadata partition (and so belongs to the quorum).
    static func isMetadataFetch(_ request: KafkaProtocol.FetchRequest) -> Bool {
        request.topics.count == 1 && request.topics[0].topic == topic
    }

    // MARK: responses

    static func response(_ message: RaftMessage) throws -> KafkaResponse? {
        switch message {
        case .voteResponse(let r):
            var p = KafkaProtocol.VoteResponse.PartitionData()
            p.errorCode = r.errorCode.rawValue
            p.leaderId = r.leaderId ?? -1
            p.leaderEpoch = r.leaderEpoch
            p.voteGranted = r.voteGranted
            if r.preVote { p.unknownTaggedFields = [TaggedField(tag: preVoteTag, data: ByteBuffer(bytes: [1]))] }
            var response = KafkaProtocol.VoteResponse()
            response.topics = [.init(topicName: topic, partitions: [p])]
            return .vote(response)
        case .beginQuorumEpochResponse(let r):
            var p = KafkaProtocol.BeginQuorumEpochResponse.PartitionData()
            p.errorCode = r.errorCode.rawValue
            p.leaderId = r.leaderId ?? -1
            p.leaderEpoch = r.leaderEpoch
            var response = KafkaProtocol.BeginQuorumEpochResponse()
            response.topics = [.init(topicName: topic, partitions: [p])]
            return .beginQuorumEpoch(response)
        case .fetchResponse(let r):
            var p = KafkaProtocol.FetchResponse.PartitionData(partitionIndex: 0)
            p.errorCode = r.errorCode.rawValue
            p.highWatermark = r.highWatermark ?? -1
            p.currentLeader = .init(leaderId: r.leaderId ?? -1, leaderEpoch: r.leaderEpoch)
            if let d = r.divergingEpoch { p.divergingEpoch = .init(epoch: d.epoch, endOffset: d.endOffset) }
            if let id = r.snapshotId { p.snapshotId = .init(endOffset: id.endOffset, epoch: id.epoch) }
            // The request's position, echoed so the fetcher drops stale answers.
            var echo = ByteBuffer()
            echo.writeInteger(r.fetchOffset)
            echo.writeInteger(r.lastFetchedEpoch)
            p.unknownTaggedFields = [TaggedField(tag: preVoteTag + 1, data: echo)]
            p.records = try encodeEntries(r.entries)
            var response = KafkaProtocol.FetchResponse()
            response.responses = [.init(topic: topic, partitions: [p])]
            return .fetch(response)
        default:
            return nil
        }
    }

    /// The quorum message in a response to `request` (which this node sent).
    static func message(ofResponse response: KafkaResponse, to request: RaftMessage) throws -> RaftMessage? {
        switch (response, request) {
        case (.vote(let r), .vote(let req)):
            guard let p = r.topics.first?.partitions.first else { return nil }
            let preVote = p.unknownTaggedFields.contains { $0.tag == preVoteTag } || req.preVote
            return .voteResponse(.init(errorCode: QuorumError(rawValue: p.errorCode) ?? .notLeaderOrFollower,
                                       leaderEpoch: p.leaderEpoch, leaderId: p.leaderId >= 0 ? p.leaderId : nil,
                                       voteGranted: p.voteGranted, preVote: preVote))
        case (.beginQuorumEpoch(let r), .beginQuorumEpoch):
            guard let p = r.topics.first?.partitions.first else { return nil }
            return .beginQuorumEpochResponse(.init(errorCode: QuorumError(rawValue: p.errorCode) ?? .notLeaderOrFollower,
                                                   leaderEpoch: p.leaderEpoch, leaderId: p.leaderId >= 0 ? p.leaderId : nil))
        case (.endQuorumEpoch, .endQuorumEpoch):
            return nil
        case (.fetch(let r), .fetch(let req)):
            guard let p = r.responses.first?.partitions.first else { return nil }
            var fetchOffset = req.fetchOffset
            var lastFetchedEpoch = req.lastFetchedEpoch
            if let echo = p.unknownTaggedFields.first(where: { $0.tag == preVoteTag + 1 }),
               let o = echo.data.getInteger(at: echo.data.readerIndex, as: Int64.self),
               let e = echo.data.getInteger(at: echo.data.readerIndex + 8, as: Int32.self) {
                fetchOffset = o
                lastFetchedEpoch = e
            }
            let diverging = p.divergingEpoch.epoch >= 0 ? EpochEndOffset(epoch: p.divergingEpoch.epoch, endOffset: p.divergingEpoch.endOffset) : nil
            let snapshot = p.snapshotId.endOffset > 0 && p.snapshotId.epoch >= 0
                ? EpochEndOffset(epoch: p.snapshotId.epoch, endOffset: p.snapshotId.endOffset) : nil
            return .fetchResponse(.init(
                errorCode: QuorumError(rawValue: p.errorCode) ?? .notLeaderOrFollower,
                leaderEpoch: p.currentLeader.leaderEpoch, leaderId: p.currentLeader.leaderId >= 0 ? p.currentLeader.leaderId : nil,
                fetchOffset: fetchOffset, lastFetchedEpoch: lastFetchedEpoch,
                highWatermark: p.highWatermark >= 0 ? p.highWatermark : nil, divergingEpoch: diverging,
                entries: try decodeEntries(p.records), snapshotId: snapshot))
        default:
            return nil
        }
    }

    // MARK: entries as record batches

    /// One record batch per entry: base offset = the entry's offset, partition leader epoch =
    /// its epoch, one record holding the payload; a leader-change entry is a control batch.
    static func encodeEntries(_ entries: [MetadataQuorum.LogEntry]) throws -> ByteBuffer {
        var out = ByteBuffer()
        for entry in entries {
            let batch = try batch(for: entry)
            var bytes = batch.buffer
            out.writeBuffer(&bytes)
        }
        return out
    }

    static func batch(for entry: MetadataQuorum.LogEntry) throws -> RecordBatch {
        var builder = RecordBatchBuilder(baseOffset: entry.offset, partitionLeaderEpoch: entry.epoch, isControl: entry.kind == .leaderChange)
        try builder.append(key: nil, value: ByteBuffer(bytes: entry.payload), timestamp: 0)
        return try builder.build()
    }

    static func decodeEntries(_ records: ByteBuffer?) throws -> [MetadataQuorum.LogEntry] {
        guard let records, records.readableBytes > 0 else { return [] }
        var entries = [MetadataQuorum.LogEntry]()
        var batches = RecordBatchIterator(records)
        while let batch = try batches.next() {
            try batch.validate()
            var iterator = try batch.records()
            var payload: [UInt8] = []
            if let record = try iterator.next(), let value = record.value {
                payload = Array(value.readableBytesView)
            }
            entries.append(.init(epoch: batch.partitionLeaderEpoch, offset: batch.baseOffset,
                                 kind: batch.isControl ? .leaderChange : .data, payload: payload))
        }
        return entries
    }

    // MARK: metadata records in an entry

    /// An entry's payload: the metadata records of one controller operation, each as
    /// int32 length + KRaft frame, so that the operation commits (and applies) atomically.
    static func payload(_ records: [MetadataRecord]) throws -> [UInt8] {
        var out = ByteBuffer()
        for record in records {
            var one = ByteBuffer()
            try MetadataRecordCodec.encode(record, into: &one)
            out.writeInteger(Int32(one.readableBytes))
            out.writeBuffer(&one)
        }
        return Array(out.readableBytesView)
    }

    static func records(inPayload payload: [UInt8]) throws -> [MetadataRecord] {
        var buffer = ByteBuffer(bytes: payload)
        var records = [MetadataRecord]()
        while buffer.readableBytes > 0 {
            guard let length = buffer.readInteger(as: Int32.self), length >= 0, var one = buffer.readSlice(length: Int(length)) else {
                throw KafkaProtocolError.invalidLength(what: "metadata record in a quorum entry", length: buffer.readableBytes)
            }
            records.append(try MetadataRecordCodec.decode(&one))
        }
        return records
    }
}
