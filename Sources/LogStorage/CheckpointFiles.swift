/// Kafka's text checkpoint files, byte for byte:
///
/// ```
/// 0                  <- version
/// 2                  <- number of entries
/// orders 0 1234      <- entries, fields separated by one space
/// orders 1 1200
/// ```
///
/// Written atomically (`<file>.tmp`, fsync, rename, fsync the directory) so that a crash leaves the
/// old or the new file, never a torn one.
enum CheckpointFormat {
    static let version = 0

    static func encode(_ lines: [String]) -> [UInt8] {
        var text = "\(version)\n\(lines.count)\n"
        for line in lines {
            text += line
            text += "\n"
        }
        return Array(text.utf8)
    }

    /// The entry lines split into exactly `fields` fields each.
    static func decode(_ bytes: [UInt8], path: String, fields: Int) throws(LogStorageError) -> [[Substring]] {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard let versionLine = lines.first else {
            throw .corruptCheckpoint(path: path, line: 1, reason: "empty file")
        }
        guard let version = Int(versionLine.trimmingSpaces) else {
            throw .corruptCheckpoint(path: path, line: 1, reason: "version '\(versionLine)' is not a number")
        }
        guard version == Self.version else {
            throw .corruptCheckpoint(path: path, line: 1, reason: "unknown version \(version) (expected \(Self.version))")
        }
        guard lines.count >= 2, let count = Int(lines[1].trimmingSpaces), count >= 0 else {
            throw .corruptCheckpoint(path: path, line: 2, reason: "missing or invalid entry count")
        }
        let entries = lines.dropFirst(2)
        guard entries.count == count else {
            throw .corruptCheckpoint(
                path: path, line: 2, reason: "expected \(count) entries but found \(entries.count)")
        }
        var result: [[Substring]] = []
        result.reserveCapacity(count)
        for (i, line) in entries.enumerated() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == fields else {
                throw .corruptCheckpoint(
                    path: path, line: i + 3, reason: "expected \(fields) fields separated by spaces, found '\(line)'")
            }
            result.append(parts)
        }
        return result
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while let first = s.first, first == " " || first == "\r" { s.removeFirst() }
        while let last = s.last, last == " " || last == "\r" { s.removeLast() }
        return s
    }
}

/// `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` and
/// `replication-offset-checkpoint` (high watermarks): one offset per partition of a log directory.
public enum OffsetCheckpointFile {
    public static let recoveryPointFileName = "recovery-point-offset-checkpoint"
    public static let logStartOffsetFileName = "log-start-offset-checkpoint"
    public static let highWatermarkFileName = "replication-offset-checkpoint"

    /// The file's text: entries sorted by topic and partition.
    public static func encode(_ offsets: [TopicPartition: Int64]) -> [UInt8] {
        let lines = offsets.sorted { $0.key < $1.key }.map { "\($0.key.topic) \($0.key.partition) \($0.value)" }
        return CheckpointFormat.encode(lines)
    }

    public static func decode(_ bytes: [UInt8], path: String = "<checkpoint>") throws(LogStorageError) -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        for (i, fields) in try CheckpointFormat.decode(bytes, path: path, fields: 3).enumerated() {
            guard let partition = Int32(fields[1]), partition >= 0, let offset = Int64(fields[2]) else {
                throw .corruptCheckpoint(path: path, line: i + 3, reason: "invalid partition or offset in '\(fields.joined(separator: " "))'")
            }
            result[TopicPartition(topic: String(fields[0]), partition: partition)] = offset
        }
        return result
    }

    /// Reads a checkpoint; a missing file is an empty checkpoint.
    public static func read(path: String) throws(LogStorageError) -> [TopicPartition: Int64] {
        guard let bytes = try FileSystem.readFile(path) else { return [:] }
        return try decode(bytes, path: path)
    }

    /// Replaces the checkpoint atomically.
    public static func write(_ offsets: [TopicPartition: Int64], to path: String) throws(LogStorageError) {
        try FileSystem.writeFileAtomically(path, bytes: encode(offsets))
    }
}

/// One entry of the leader epoch cache: the first offset written in a leader epoch.
public struct EpochEntry: Hashable, Sendable, CustomStringConvertible {
    public var epoch: Int32
    public var startOffset: Int64

    public init(epoch: Int32, startOffset: Int64) {
        self.epoch = epoch
        self.startOffset = startOffset
    }

    public var description: String { "EpochEntry(epoch=\(epoch), startOffset=\(startOffset))" }
}

/// `leader-epoch-checkpoint` in a partition directory: `epoch startOffset` lines.
public enum LeaderEpochCheckpointFile {
    public static let fileName = "leader-epoch-checkpoint"

    public static func encode(_ entries: [EpochEntry]) -> [UInt8] {
        CheckpointFormat.encode(entries.map { "\($0.epoch) \($0.startOffset)" })
    }

    public static func decode(_ bytes: [UInt8], path: String = "<checkpoint>") throws(LogStorageError) -> [EpochEntry] {
        var result: [EpochEntry] = []
        for (i, fields) in try CheckpointFormat.decode(bytes, path: path, fields: 2).enumerated() {
            guard let epoch = Int32(fields[0]), let offset = Int64(fields[1]) else {
                throw .corruptCheckpoint(path: path, line: i + 3, reason: "invalid epoch or offset in '\(fields.joined(separator: " "))'")
            }
            result.append(EpochEntry(epoch: epoch, startOffset: offset))
        }
        return result
    }

    /// The entries, or nil if the file does not exist.
    public static func read(path: String) throws(LogStorageError) -> [EpochEntry]? {
        guard let bytes = try FileSystem.readFile(path) else { return nil }
        return try decode(bytes, path: path)
    }

    public static func write(_ entries: [EpochEntry], to path: String) throws(LogStorageError) {
        try FileSystem.writeFileAtomically(path, bytes: encode(entries))
    }
}
