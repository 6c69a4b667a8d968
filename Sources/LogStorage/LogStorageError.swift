/// What went wrong in the log, told so that an operator knows which partition and file, and what
/// to do. ``kafkaErrorCode`` gives the Kafka error code the broker should answer with.
public enum LogStorageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A read or ListOffsets asked for an offset outside `[logStartOffset, logEndOffset]`.
    case offsetOutOfRange(TopicPartition, requested: Int64, logStartOffset: Int64, logEndOffset: Int64)
    /// DeleteRecords asked to delete beyond the high watermark.
    case offsetBeyondHighWatermark(TopicPartition, requested: Int64, highWatermark: Int64)
    /// A segment file holds bytes that are not a valid record batch where one should start.
    case corruptSegment(path: String, position: Int64, reason: String)
    /// A checkpoint file does not follow Kafka's text format.
    case corruptCheckpoint(path: String, line: Int, reason: String)
    /// A system call failed.
    case io(path: String, errno: Int32, operation: String)
    /// A record batch (or a whole append) is larger than `max.message.bytes` / `segment.bytes`.
    case recordBatchTooLarge(TopicPartition, size: Int, max: Int, setting: String)
    /// The records of an append are not valid record batches v2 (bad CRC, truncated, wrong magic,
    /// inconsistent counts).
    case invalidRecords(TopicPartition, reason: String)
    /// A follower append starts below the log end offset or goes backwards.
    case unexpectedAppendOffset(TopicPartition, firstOffset: Int64, logEndOffset: Int64)
    /// An idempotent producer's batch does not follow its previous one.
    case outOfOrderSequence(TopicPartition, producerId: Int64, expected: Int32, received: Int32)
    /// An idempotent or transactional producer wrote with an epoch older than the current one
    /// (it has been fenced by a newer instance).
    case invalidProducerEpoch(TopicPartition, producerId: Int64, currentEpoch: Int16, receivedEpoch: Int16)
    /// The log was closed (broker shutting down) or deleted.
    case logClosed(TopicPartition)
    /// Another process holds the lock on a log directory.
    case logDirectoryLocked(path: String)
    /// A configuration value is out of range.
    case invalidConfig(key: String, value: String, reason: String)
    /// The same partition was found in two log directories.
    case duplicateLog(TopicPartition, directories: [String])
    /// No `log.dirs` were given.
    case noLogDirectories

    /// The Kafka protocol error code for this failure.
    public var kafkaErrorCode: Int16 {
        switch self {
        case .offsetOutOfRange, .offsetBeyondHighWatermark: return 1  // OFFSET_OUT_OF_RANGE
        case .corruptSegment, .corruptCheckpoint, .io, .logDirectoryLocked, .duplicateLog, .noLogDirectories:
            return 56  // KAFKA_STORAGE_ERROR
        case let .recordBatchTooLarge(_, _, _, setting):
            return setting == "segment.bytes" ? 18 : 10  // RECORD_LIST_TOO_LARGE : MESSAGE_TOO_LARGE
        case .invalidRecords: return 2  // CORRUPT_MESSAGE
        case .unexpectedAppendOffset: return -1  // UNKNOWN_SERVER_ERROR (Kafka: UnexpectedAppendOffsetException)
        case .outOfOrderSequence: return 45  // OUT_OF_ORDER_SEQUENCE_NUMBER
        case .invalidProducerEpoch: return 47  // INVALID_PRODUCER_EPOCH
        case .logClosed: return 56  // KAFKA_STORAGE_ERROR
        case .invalidConfig: return 40  // INVALID_CONFIG
        }
    }

    public var description: String {
        switch self {
        case let .offsetOutOfRange(tp, requested, start, end):
            return "\(tp): offset \(requested) is out of range; the log holds offsets \(start) to \(end) "
                + "(log start offset to log end offset). The consumer should reset its position "
                + "(auto.offset.reset) or seek to an offset in that range."
        case let .offsetBeyondHighWatermark(tp, requested, hw):
            return "\(tp): cannot delete records before offset \(requested): the high watermark is \(hw); "
                + "only replicated (committed) records can be deleted."
        case let .corruptSegment(path, position, reason):
            return "corrupt log segment \(path) at byte \(position): \(reason). "
                + "Restart the broker without a clean shutdown marker to recover (truncate) the log, "
                + "or restore the partition from a replica."
        case let .corruptCheckpoint(path, line, reason):
            return "corrupt checkpoint file \(path) at line \(line): \(reason). "
                + "Fix or remove the file; without it every log is recovered from its start."
        case let .io(path, code, operation):
            return "\(operation) failed on \(path): \(errnoDescription(code)) (errno \(code)). "
                + "Check the disk, free space and permissions of the log directory."
        case let .recordBatchTooLarge(tp, size, max, setting):
            return "\(tp): record batch of \(size) bytes is larger than \(setting) (\(max) bytes). "
                + "Raise \(setting) for the topic or make the producer send smaller batches (batch.size)."
        case let .invalidRecords(tp, reason):
            return "\(tp): invalid records: \(reason). The client sent corrupt data; nothing was appended."
        case let .unexpectedAppendOffset(tp, first, end):
            return "\(tp): follower append starts at offset \(first) but the log ends at \(end); "
                + "the replica fetcher must truncate or fetch from the log end offset."
        case let .outOfOrderSequence(tp, pid, expected, received):
            return "\(tp): out of order sequence number for producer \(pid): expected \(expected), received \(received)."
        case let .invalidProducerEpoch(tp, pid, current, received):
            return "\(tp): producer \(pid) wrote with epoch \(received) but the current epoch is \(current); "
                + "a newer producer instance has fenced it."
        case let .logClosed(tp):
            return "\(tp): the log is closed (the broker is shutting down or the partition was deleted)."
        case let .logDirectoryLocked(path):
            return "log directory \(path) is locked by another process (\(path)/.lock); "
                + "another broker is using it. Give each broker its own log.dirs."
        case let .invalidConfig(key, value, reason):
            return "invalid value \(value) for \(key): \(reason)"
        case let .duplicateLog(tp, dirs):
            return "partition \(tp) exists in more than one log directory: \(dirs.joined(separator: ", ")). "
                + "Remove the stale copy."
        case .noLogDirectories:
            return "no log directories configured: set log.dirs (or log.dir)."
        }
    }
}
