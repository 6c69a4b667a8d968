import NIOCore

/// The type of a control record (the key's `type` field).
public struct ControlRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// End of an aborted transaction.
    public static let abort = ControlRecordType(rawValue: 0)
    /// End of a committed transaction.
    public static let commit = ControlRecordType(rawValue: 1)
    /// KRaft: a new leader of the metadata log.
    public static let leaderChange = ControlRecordType(rawValue: 2)
    public static let snapshotHeader = ControlRecordType(rawValue: 3)
    public static let snapshotFooter = ControlRecordType(rawValue: 4)
    public static let kraftVoters = ControlRecordType(rawValue: 5)
    public static let kraftVersion = ControlRecordType(rawValue: 6)

    public var description: String {
        switch rawValue {
        case 0: return "abort"
        case 1: return "commit"
        case 2: return "leaderChange"
        case 3: return "snapshotHeader"
        case 4: return "snapshotFooter"
        case 5: return "kraftVoters"
        case 6: return "kraftVersion"
        default: return "unknown(\(rawValue))"
        }
    }
}

/// The key of the single record of a control batch: version int16 (0), type int16.
public struct ControlRecordKey: Hashable, Sendable {
    public var version: Int16
    public var type: ControlRecordType

    public init(version: Int16 = 0, type: ControlRecordType) {
        self.version = version
        self.type = type
    }

    /// Reads a key from a control record's key bytes (extra bytes after the type are allowed,
    /// for future versions, as Kafka allows them).
    public init(from key: ByteBuffer) throws(KafkaProtocolError) {
        var key = key
        guard let version = key.readInteger(as: Int16.self), let type = key.readInteger(as: Int16.self) else {
            throw .truncated(what: "control record key", needed: 4, available: key.readableBytes)
        }
        guard version >= 0 else {
            throw .corruptRecordBatch("negative control record key version \(version)")
        }
        self.version = version
        self.type = ControlRecordType(rawValue: type)
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(version)
        buffer.writeInteger(type.rawValue)
    }

    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }
}

/// The value of an abort or commit control record: version int16 (0), coordinatorEpoch int32.
public struct EndTransactionMarker: Hashable, Sendable {
    public var version: Int16
    public var coordinatorEpoch: Int32

    public init(version: Int16 = 0, coordinatorEpoch: Int32) {
        self.version = version
        self.coordinatorEpoch = coordinatorEpoch
    }

    public init(from value: ByteBuffer) throws(KafkaProtocolError) {
        var value = value
        guard let version = value.readInteger(as: Int16.self), let epoch = value.readInteger(as: Int32.self) else {
            throw .truncated(what: "end transaction marker", needed: 6, available: value.readableBytes)
        }
        guard version >= 0 else {
            throw .corruptRecordBatch("negative end transaction marker version \(version)")
        }
        self.version = version
        self.coordinatorEpoch = epoch
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(version)
        buffer.writeInteger(coordinatorEpoch)
    }

    public var encoded: ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }
}

extension RecordBatch {
    /// A transaction marker batch, as a transaction coordinator asks partition leaders to write:
    /// transactional, control, one record whose key is the control type and whose value the
    /// marker.
    public static func endTransactionMarker(
        _ type: ControlRecordType, producerId: Int64, producerEpoch: Int16, coordinatorEpoch: Int32,
        timestamp: Int64, baseOffset: Int64 = 0, partitionLeaderEpoch: Int32 = -1
    ) throws(KafkaProtocolError) -> RecordBatch {
        var builder = RecordBatchBuilder(
            baseOffset: baseOffset, partitionLeaderEpoch: partitionLeaderEpoch, isTransactional: true,
            isControl: true, producerId: producerId, producerEpoch: producerEpoch, initialCapacity: 96)
        try builder.append(
            key: ControlRecordKey(type: type).encoded,
            value: EndTransactionMarker(coordinatorEpoch: coordinatorEpoch).encoded,
            timestamp: timestamp)
        return try builder.build()
    }

    /// The control key of a control batch's first record, or nil if this is not a control batch.
    public func controlRecordKey(
        maxDecompressedSize: Int = RecordBatch.defaultMaxDecompressedSize
    ) throws(KafkaProtocolError) -> ControlRecordKey? {
        guard isControl else { return nil }
        var iterator = try records(maxDecompressedSize: maxDecompressedSize)
        guard let record = try iterator.next() else {
            throw .corruptRecordBatch("control batch without a record")
        }
        guard let key = record.key else {
            throw .corruptRecordBatch("control record without a key")
        }
        return try ControlRecordKey(from: key)
    }
}
