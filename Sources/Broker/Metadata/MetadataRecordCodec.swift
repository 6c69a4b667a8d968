import KafkaProtocol
import NIOCore

/// A record of the metadata log (`__cluster_metadata`), as KRaft writes it.
enum MetadataRecord: Hashable, Sendable {
    case topic(TopicRecord)
    case partition(PartitionRecord)
    case partitionChange(PartitionChangeRecord)
    case removeTopic(RemoveTopicRecord)
    case config(ConfigRecord)
    case registerBroker(RegisterBrokerRecord)
    case producerIds(ProducerIdsRecord)
    case fenceBroker(FenceBrokerRecord)
    case unfenceBroker(UnfenceBrokerRecord)
    case noOp
    /// A record type this broker does not act on yet; kept so the log replays unchanged.
    case other(type: Int16, version: Int16)
}

/// KRaft's record value framing: `frameVersion` (uvarint, 1), record type (uvarint), record
/// version (uvarint), then the record body at that version.
enum MetadataRecordCodec {
    static let frameVersion: UInt32 = 1

    static func encode(_ record: MetadataRecord, into buffer: inout ByteBuffer) throws(KafkaProtocolError) {
        switch record {
        case .topic(let r): try write(r, type: TopicRecord.recordType, version: 0, into: &buffer)
        case .partition(let r): try write(r, type: PartitionRecord.recordType, version: 0, into: &buffer)
        case .partitionChange(let r): try write(r, type: PartitionChangeRecord.recordType, version: 0, into: &buffer)
        case .removeTopic(let r): try write(r, type: RemoveTopicRecord.recordType, version: 0, into: &buffer)
        case .config(let r): try write(r, type: ConfigRecord.recordType, version: 0, into: &buffer)
        case .registerBroker(let r): try write(r, type: RegisterBrokerRecord.recordType, version: 3, into: &buffer)
        case .producerIds(let r): try write(r, type: ProducerIdsRecord.recordType, version: 0, into: &buffer)
        case .fenceBroker(let r): try write(r, type: FenceBrokerRecord.recordType, version: 0, into: &buffer)
        case .unfenceBroker(let r): try write(r, type: UnfenceBrokerRecord.recordType, version: 0, into: &buffer)
        case .noOp: try write(NoOpRecord(), type: NoOpRecord.recordType, version: 0, into: &buffer)
        case .other(let type, _): throw .unsupportedVersion(api: "metadata record type \(type)", version: 0)
        }
    }

    private static func write<M: KafkaMessage>(_ message: M, type: Int16, version: Int16, into buffer: inout ByteBuffer) throws(KafkaProtocolError) {
        buffer.writeUnsignedVarint(frameVersion)
        buffer.writeUnsignedVarint(UInt32(type))
        buffer.writeUnsignedVarint(UInt32(version))
        try message.encode(into: &buffer, version: version)
    }

    static func decode(_ buffer: inout ByteBuffer) throws(KafkaProtocolError) -> MetadataRecord {
        let frame = try buffer.readUnsignedVarint()
        guard frame == frameVersion else { throw .corruptRecordBatch("metadata record frame version \(frame), expected 1") }
        let type = Int16(truncatingIfNeeded: try buffer.readUnsignedVarint())
        let version = Int16(truncatingIfNeeded: try buffer.readUnsignedVarint())
        switch type {
        case TopicRecord.recordType: return .topic(try TopicRecord(from: &buffer, version: version))
        case PartitionRecord.recordType: return .partition(try PartitionRecord(from: &buffer, version: version))
        case PartitionChangeRecord.recordType: return .partitionChange(try PartitionChangeRecord(from: &buffer, version: version))
        case RemoveTopicRecord.recordType: return .removeTopic(try RemoveTopicRecord(from: &buffer, version: version))
        case ConfigRecord.recordType: return .config(try ConfigRecord(from: &buffer, version: version))
        case RegisterBrokerRecord.recordType: return .registerBroker(try RegisterBrokerRecord(from: &buffer, version: version))
        case ProducerIdsRecord.recordType: return .producerIds(try ProducerIdsRecord(from: &buffer, version: version))
        case FenceBrokerRecord.recordType: return .fenceBroker(try FenceBrokerRecord(from: &buffer, version: version))
        case UnfenceBrokerRecord.recordType: return .unfenceBroker(try UnfenceBrokerRecord(from: &buffer, version: version))
        case NoOpRecord.recordType: return .noOp
        default: return .other(type: type, version: version)
        }
    }
}
