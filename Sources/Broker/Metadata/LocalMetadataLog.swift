import KafkaProtocol
import LogStorage
import NIOCore

/// The metadata log of a single-node cluster: KRaft's `__cluster_metadata-0`, a regular log in
/// `metadata.log.dir`, fsynced on every append (its LogConfig flushes every message) and never
/// deleted by retention. Issue 4 replaces the local append with the Raft quorum's.
final class LocalMetadataLog: MetadataLogStore {
    static let topicPartition = TopicPartition(topic: "__cluster_metadata", partition: 0)

    /// Durable on every append; kept forever (snapshots come with the Raft quorum).
    static func logConfig(base: LogConfig) -> LogConfig {
        var config = base
        config.flushIntervalMessages = 1
        config.retentionMs = -1
        config.retentionBytes = -1
        return config
    }

    private let log: PartitionLog

    init(log: PartitionLog) {
        self.log = log
    }

    func append(_ records: [MetadataRecord]) throws -> Int64 {
        var builder = RecordBatchBuilder()
        let now = LogClock.nowMillis()
        for record in records {
            var value = ByteBuffer()
            try MetadataRecordCodec.encode(record, into: &value)
            try builder.append(key: nil, value: value, timestamp: now)
        }
        let batch = try builder.build()
        let info = try log.appendAsLeader(batch.buffer, leaderEpoch: 0, validateSequences: false)
        _ = log.updateHighWatermark(info.logEndOffset)
        return info.lastOffset
    }

    func replay() throws -> [MetadataRecord] {
        var records = [MetadataRecord]()
        var offset = log.logStartOffset
        let end = log.logEndOffset
        _ = log.updateHighWatermark(end)
        while offset < end {
            let read = try log.read(from: offset, maxBytes: 4 * 1024 * 1024, upTo: end, minOneBatch: true)
            guard read.records.readableBytes > 0 else { break }
            var batches = RecordBatchIterator(read.records)
            while let batch = try batches.next() {
                var iterator = try batch.records()
                while let record = try iterator.next() {
                    guard var value = record.value else { continue }
                    records.append(try MetadataRecordCodec.decode(&value))
                }
                offset = batch.nextOffset
            }
        }
        return records
    }
}
