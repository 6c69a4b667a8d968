import NIOCore

/// Kafka's two sparse per-segment indexes, in Kafka's file formats:
///
/// - `.index`: 8-byte entries, relative offset int32 + file position int32 (big-endian). An entry
///   `(o, p)` says: the batch starting at byte `p` has last offset `base + o`. One entry per
///   `index.interval.bytes` of log; lookups find the greatest entry at or below an offset and scan
///   forward from its position.
/// - `.timeindex`: 12-byte entries, timestamp int64 + relative offset int32. An entry `(t, o)` says:
///   the largest timestamp among batches up to and including offset `base + o` is `t` (and batch
///   `o` is the first to reach it). Appended together with offset index entries, only when the
///   largest timestamp grew.
///
/// The entries live in memory (Kafka memory-maps the files); new entries are written to the file
/// by ``SparseIndex/persist(to:)`` when the segment is flushed, rolled or closed. A crash can lose
/// entries not yet written, which is harmless: every segment past the recovery point has its
/// indexes rebuilt on recovery, and the indexes of flushed segments were written before the flush.

protocol IndexEntry: Hashable, Sendable {
    static var entrySize: Int { get }
    var relativeOffset: Int32 { get }
    /// Decodes the entry at `index` of `bytes` (big-endian).
    init(_ bytes: UnsafeRawBufferPointer, at index: Int)
    func append(to bytes: inout [UInt8])
}

struct OffsetIndexEntry: IndexEntry {
    static let entrySize = 8
    var relativeOffset: Int32
    var position: Int32

    init(relativeOffset: Int32, position: Int32) {
        self.relativeOffset = relativeOffset
        self.position = position
    }

    init(_ bytes: UnsafeRawBufferPointer, at index: Int) {
        relativeOffset = readBigEndian(bytes, at: index)
        position = readBigEndian(bytes, at: index + 4)
    }

    func append(to bytes: inout [UInt8]) {
        appendBigEndian(relativeOffset, to: &bytes)
        appendBigEndian(position, to: &bytes)
    }
}

struct TimeIndexEntry: IndexEntry {
    static let entrySize = 12
    var timestamp: Int64
    var relativeOffset: Int32

    init(timestamp: Int64, relativeOffset: Int32) {
        self.timestamp = timestamp
        self.relativeOffset = relativeOffset
    }

    init(_ bytes: UnsafeRawBufferPointer, at index: Int) {
        timestamp = readBigEndian(bytes, at: index)
        relativeOffset = readBigEndian(bytes, at: index + 8)
    }

    func append(to bytes: inout [UInt8]) {
        appendBigEndian(timestamp, to: &bytes)
        appendBigEndian(relativeOffset, to: &bytes)
    }
}

@inline(__always)
func readBigEndian<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, at index: Int) -> T {
    var value: T = 0
    for i in 0..<MemoryLayout<T>.size {
        value = (value << 8) | T(truncatingIfNeeded: bytes[index + i])
    }
    return value
}

@inline(__always)
func appendBigEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    let size = MemoryLayout<T>.size
    for i in 0..<size {
        bytes.append(UInt8(truncatingIfNeeded: value >> (8 * (size - 1 - i))))
    }
}

/// Why an index file cannot be trusted; the segment's indexes are then rebuilt from the log.
struct IndexCorruption: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "\(path): \(reason)" }
}

/// The entries of one index file, in memory, with what has been written to the file.
struct SparseIndex<Entry: IndexEntry>: Sendable {
    let baseOffset: Int64
    /// Capacity from `segment.index.bytes`; the segment rolls when an index is full.
    let maxEntries: Int
    private(set) var entries: [Entry]
    /// How many leading entries are in the file.
    private var entriesOnDisk: Int
    /// Whether the file may hold entries past `entriesOnDisk` (after a truncation) to cut off.
    private var fileNeedsTrim: Bool

    init(baseOffset: Int64, maxIndexBytes: Int) {
        self.baseOffset = baseOffset
        self.maxEntries = max(1, maxIndexBytes / Entry.entrySize)
        self.entries = []
        self.entriesOnDisk = 0
        self.fileNeedsTrim = true
    }

    init(baseOffset: Int64, maxIndexBytes: Int, loaded: [Entry]) {
        self.init(baseOffset: baseOffset, maxIndexBytes: maxIndexBytes)
        self.entries = loaded
        self.entriesOnDisk = loaded.count
        self.fileNeedsTrim = false
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    var isFull: Bool { entries.count >= maxEntries }
    var last: Entry? { entries.last }
    /// Whether entries exist in memory that the file lacks.
    var isDirty: Bool { entriesOnDisk != entries.count || fileNeedsTrim }

    mutating func append(_ entry: Entry) {
        entries.append(entry)
    }

    /// Keeps the first `count` entries.
    mutating func truncate(keeping count: Int) {
        guard count < entries.count else { return }
        entries.removeSubrange(count...)
        if entriesOnDisk > count {
            entriesOnDisk = count
            fileNeedsTrim = true
        }
    }

    mutating func removeAll() {
        truncate(keeping: 0)
        fileNeedsTrim = true
    }

    /// The index of the last entry for which `isAtOrBelow` holds (entries are sorted so that it
    /// holds for a prefix), or nil.
    func lastIndex(where isAtOrBelow: (Entry) -> Bool) -> Int? {
        var low = 0
        var high = entries.count - 1
        var found: Int? = nil
        while low <= high {
            let mid = (low + high) / 2
            if isAtOrBelow(entries[mid]) {
                found = mid
                low = mid + 1
            } else {
                high = mid - 1
            }
        }
        return found
    }

    /// Writes the entries the file lacks (and cuts entries removed by a truncation), without
    /// fsync. Creates the file if needed.
    mutating func persist(to path: String) throws(LogStorageError) {
        guard isDirty || !FileSystem.exists(path) else { return }
        let file = try FileDescriptor(path: path, create: true)
        if fileNeedsTrim {
            try file.truncate(to: Int64(entriesOnDisk * Entry.entrySize))
            fileNeedsTrim = false
        }
        if entriesOnDisk < entries.count {
            var bytes: [UInt8] = []
            bytes.reserveCapacity((entries.count - entriesOnDisk) * Entry.entrySize)
            for entry in entries[entriesOnDisk...] { entry.append(to: &bytes) }
            try file.write(bytes, at: Int64(entriesOnDisk * Entry.entrySize))
            entriesOnDisk = entries.count
        }
    }

    /// Reads an index file. Throws `IndexCorruption` for a missing file or one whose size is not a
    /// multiple of the entry size; the caller checks the entries' order and bounds.
    static func read(path: String) throws -> [Entry] {
        guard let bytes = try FileSystem.readFile(path) else {
            throw IndexCorruption(path: path, reason: "index file is missing")
        }
        guard bytes.count % Entry.entrySize == 0 else {
            throw IndexCorruption(
                path: path, reason: "size \(bytes.count) is not a multiple of the \(Entry.entrySize)-byte entry size")
        }
        let count = bytes.count / Entry.entrySize
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<count { entries.append(Entry(raw, at: i * Entry.entrySize)) }
        }
        return entries
    }

    /// Reads only the last entry of an index file (one small `pread`), or nil if the file is empty.
    static func readLastEntry(path: String) throws -> Entry? {
        guard let size = FileSystem.fileSize(path) else {
            throw IndexCorruption(path: path, reason: "index file is missing")
        }
        guard size % Int64(Entry.entrySize) == 0 else {
            throw IndexCorruption(path: path, reason: "size \(size) is not a multiple of the \(Entry.entrySize)-byte entry size")
        }
        guard size > 0 else { return nil }
        let file = try FileDescriptor(path: path, create: false, readOnly: true)
        var buffer = ByteBufferAllocator().buffer(capacity: Entry.entrySize)
        try file.read(into: &buffer, count: Entry.entrySize, at: size - Int64(Entry.entrySize))
        guard buffer.readableBytes == Entry.entrySize else {
            throw IndexCorruption(path: path, reason: "short read of the last entry")
        }
        return buffer.withUnsafeReadableBytes { Entry($0, at: 0) }
    }
}

typealias OffsetIndex = SparseIndex<OffsetIndexEntry>
typealias TimeIndex = SparseIndex<TimeIndexEntry>

extension SparseIndex where Entry == OffsetIndexEntry {
    static var entrySize: Int { OffsetIndexEntry.entrySize }

    /// The greatest entry whose offset is at or below `offset`, as (offset, position); the segment
    /// start `(baseOffset, 0)` when there is none.
    func lookup(_ offset: Int64) -> (offset: Int64, position: Int64) {
        let relative = offset - baseOffset
        guard relative >= 0 else { return (baseOffset, 0) }
        let target = relative > Int64(Int32.max) ? Int32.max : Int32(relative)
        guard let index = lastIndex(where: { $0.relativeOffset <= target }) else { return (baseOffset, 0) }
        let entry = entries[index]
        return (baseOffset + Int64(entry.relativeOffset), Int64(entry.position))
    }

    /// Removes the entries pointing at or past `position` (used when the log is cut there).
    mutating func truncate(toPosition position: Int64) {
        let keep = (lastIndex(where: { Int64($0.position) < position }) ?? -1) + 1
        truncate(keeping: keep)
    }

    /// Checks order and bounds: relative offsets and positions strictly increasing, positions
    /// inside the log file.
    static func validate(_ entries: [OffsetIndexEntry], path: String, segmentSize: Int64) throws {
        var previous: OffsetIndexEntry? = nil
        for (i, entry) in entries.enumerated() {
            guard entry.relativeOffset >= 0, entry.position >= 0 else {
                throw IndexCorruption(path: path, reason: "entry \(i) is negative (\(entry.relativeOffset), \(entry.position))")
            }
            guard Int64(entry.position) < segmentSize else {
                throw IndexCorruption(
                    path: path, reason: "entry \(i) points at byte \(entry.position), past the end of the log (\(segmentSize) bytes)")
            }
            if let previous {
                guard entry.relativeOffset > previous.relativeOffset, entry.position > previous.position else {
                    throw IndexCorruption(path: path, reason: "entry \(i) does not increase (offsets or positions out of order)")
                }
            }
            previous = entry
        }
    }
}

extension SparseIndex where Entry == TimeIndexEntry {
    static var entrySize: Int { TimeIndexEntry.entrySize }

    /// Kafka's `maybeAppend`: adds `(timestamp, offset)` if the timestamp is larger than the last
    /// entry's (and there is room, unless `force`).
    mutating func maybeAppend(timestamp: Int64, offset: Int64, force: Bool = false) {
        guard timestamp > (last?.timestamp ?? -1) else { return }
        guard force || !isFull else { return }
        let relative = offset - baseOffset
        guard relative >= 0, relative <= Int64(Int32.max) else { return }
        if let last, Int64(last.relativeOffset) > relative { return }
        append(TimeIndexEntry(timestamp: timestamp, relativeOffset: Int32(relative)))
    }

    /// The greatest entry with a timestamp at or below `timestamp`, as (timestamp, offset), or nil.
    func lookup(timestamp: Int64) -> (timestamp: Int64, offset: Int64)? {
        guard let index = lastIndex(where: { $0.timestamp <= timestamp }) else { return nil }
        let entry = entries[index]
        return (entry.timestamp, baseOffset + Int64(entry.relativeOffset))
    }

    /// Removes the entries for offsets at or above `offset`.
    mutating func truncate(toOffset offset: Int64) {
        let relative = offset - baseOffset
        let keep = (lastIndex(where: { Int64($0.relativeOffset) < relative }) ?? -1) + 1
        truncate(keeping: keep)
    }

    /// Checks order and bounds: timestamps strictly increasing, offsets not decreasing and below
    /// `maxRelativeOffset` (exclusive) when known.
    static func validate(_ entries: [TimeIndexEntry], path: String, relativeOffsetLimit: Int64?) throws {
        var previous: TimeIndexEntry? = nil
        for (i, entry) in entries.enumerated() {
            guard entry.relativeOffset >= 0, entry.timestamp >= 0 else {
                throw IndexCorruption(path: path, reason: "entry \(i) is negative (\(entry.timestamp), \(entry.relativeOffset))")
            }
            if let limit = relativeOffsetLimit, Int64(entry.relativeOffset) >= limit {
                throw IndexCorruption(path: path, reason: "entry \(i) names offset +\(entry.relativeOffset), past the segment's last offset")
            }
            if let previous {
                guard entry.timestamp > previous.timestamp, entry.relativeOffset >= previous.relativeOffset else {
                    throw IndexCorruption(path: path, reason: "entry \(i) does not increase (timestamps or offsets out of order)")
                }
            }
            previous = entry
        }
    }
}
