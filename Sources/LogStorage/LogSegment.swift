import KafkaProtocol
import Logging
import NIOCore

/// Kafka's file names: the base offset as 20 zero-padded digits, then the suffix.
enum SegmentFiles {
    static let logSuffix = ".log"
    static let indexSuffix = ".index"
    static let timeIndexSuffix = ".timeindex"
    static let snapshotSuffix = ".snapshot"
    static let txnIndexSuffix = ".txnindex"
    static let deletedSuffix = ".deleted"
    static let cleanedSuffix = ".cleaned"
    static let swapSuffix = ".swap"

    /// `00000000000000000123`
    static func name(_ offset: Int64) -> String {
        let digits = String(offset)
        return digits.count >= 20 ? digits : String(repeating: "0", count: 20 - digits.count) + digits
    }

    /// The offset named by a file such as `00000000000000000123.log`, if the name has `suffix`.
    static func offset(fromFileName name: String, suffix: String) -> Int64? {
        guard name.hasSuffix(suffix) else { return nil }
        let stem = name.dropLast(suffix.count)
        guard !stem.isEmpty, stem.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int64(stem)
    }
}

/// How a segment's scan from disk ended.
struct SegmentScanResult {
    /// Bytes of valid batches from the start of the segment.
    var validBytes: Int64
    /// Bytes cut off the end (0 if none).
    var truncatedBytes: Int64
    /// What was wrong at `validBytes`, if the scan stopped before the end of the file.
    var problem: String?
    /// The offset after the last valid batch (the base offset for an empty segment).
    var nextOffset: Int64
    var batchCount: Int
}

/// One segment: a `.log` file of record batches, stored exactly as appended, with its sparse
/// `.index` and `.timeindex`.
///
/// Thread safety: the immutable properties (`baseOffset`, `log`, paths) may be used anywhere.
/// Everything else is guarded by the owning ``PartitionLog``'s lock: the log calls a segment's
/// methods only while holding it, except ``syncToDisk(indexes:)`` and reads through `log` below a
/// size captured under the lock (the file is append-only below that size unless the log is
/// truncated, which bumps the log's truncation generation so readers retry).
final class LogSegment: @unchecked Sendable {
    let baseOffset: Int64
    let directory: String
    /// The `.log` file; kept open for the life of the segment object (reads hold a reference).
    let log: FileDescriptor
    /// When this segment object was created (Kafka's `created`), for `segment.ms` on segments
    /// without timestamps.
    let createdMillis: Int64
    private let maxIndexBytes: Int

    // MARK: State guarded by the partition lock

    /// "" normally, ".deleted" once renamed for deletion.
    private(set) var fileSuffix = ""
    /// Bytes of batches in the file.
    private(set) var size: Int64
    /// The size at the last completed fdatasync.
    var flushedSize: Int64
    private var loadedOffsetIndex: OffsetIndex?
    private var loadedTimeIndex: TimeIndex?
    /// Whether index entries were written since their files were last fsynced.
    private(set) var indexesNeedSync = false
    private var bytesSinceLastIndexEntry: Int64 = 0
    /// The largest batch max timestamp in the segment (-1: none) and the last offset of the first
    /// batch that has it.
    private(set) var maxTimestampSoFar: Int64 = -1
    private(set) var offsetOfMaxTimestampSoFar: Int64 = -1
    /// The max timestamp of the first batch (Kafka's `rollingBasedTimestamp`); nil when unknown.
    private var firstBatchTimestamp: Int64?
    /// The offset after the last batch, known for the active segment (and recovered ones).
    private(set) var nextOffset: Int64?

    var logPath: String { path(SegmentFiles.logSuffix) }
    var indexPath: String { path(SegmentFiles.indexSuffix) }
    var timeIndexPath: String { path(SegmentFiles.timeIndexSuffix) }
    var name: String { SegmentFiles.name(baseOffset) + SegmentFiles.logSuffix }

    private func path(_ suffix: String) -> String {
        directory + "/" + SegmentFiles.name(baseOffset) + suffix + fileSuffix
    }

    var isEmpty: Bool { size == 0 }
    var isDirty: Bool { size != flushedSize || indexesNeedSync || (loadedOffsetIndex?.isDirty ?? false) || (loadedTimeIndex?.isDirty ?? false) }
    var indexesLoaded: Bool { loadedOffsetIndex != nil && loadedTimeIndex != nil }

    private init(baseOffset: Int64, directory: String, log: FileDescriptor, size: Int64, config: LogConfig, now: Int64) {
        self.baseOffset = baseOffset
        self.directory = directory
        self.log = log
        self.size = size
        self.flushedSize = size
        self.createdMillis = now
        self.maxIndexBytes = config.maxIndexBytes
    }

    /// Creates a new, empty segment (replacing any stale files of that name).
    static func create(directory: String, baseOffset: Int64, config: LogConfig, now: Int64) throws(LogStorageError) -> LogSegment {
        let stem = directory + "/" + SegmentFiles.name(baseOffset)
        try FileSystem.removeFile(stem + SegmentFiles.indexSuffix)
        try FileSystem.removeFile(stem + SegmentFiles.timeIndexSuffix)
        let file = try FileDescriptor(path: stem + SegmentFiles.logSuffix, create: true)
        try file.truncate(to: 0)
        let segment = LogSegment(baseOffset: baseOffset, directory: directory, log: file, size: 0, config: config, now: now)
        segment.flushedSize = -1  // the new file itself is not durable until the first flush
        segment.loadedOffsetIndex = OffsetIndex(baseOffset: baseOffset, maxIndexBytes: config.maxIndexBytes)
        segment.loadedTimeIndex = TimeIndex(baseOffset: baseOffset, maxIndexBytes: config.maxIndexBytes)
        segment.nextOffset = baseOffset
        return segment
    }

    /// Opens an existing segment's `.log`; indexes are loaded later (``loadAsActive()``,
    /// ``ensureIndexesLoaded(nextSegmentBaseOffset:)``) or rebuilt (``recover(...)``).
    static func open(directory: String, baseOffset: Int64, config: LogConfig, now: Int64) throws(LogStorageError) -> LogSegment {
        let file = try FileDescriptor(path: directory + "/" + SegmentFiles.name(baseOffset) + SegmentFiles.logSuffix, create: false)
        let size = try file.size()
        return LogSegment(baseOffset: baseOffset, directory: directory, log: file, size: size, config: config, now: now)
    }

    /// For the log cleaner: a new, empty segment written as `<base>.log.cleaned` (its indexes go to
    /// `<base>.index.cleaned` and `<base>.timeindex.cleaned`), replacing stale files of those names.
    /// The cleaner writes batches with `log.write`, then ``recover(indexIntervalBytes:validateCRC:truncate:onBatch:)``
    /// builds the indexes, and ``renameFiles(toSuffix:)`` swaps it in.
    static func createCleaned(directory: String, baseOffset: Int64, config: LogConfig, now: Int64) throws(LogStorageError) -> LogSegment {
        let stem = directory + "/" + SegmentFiles.name(baseOffset)
        let suffix = SegmentFiles.cleanedSuffix
        try FileSystem.removeFile(stem + SegmentFiles.indexSuffix + suffix)
        try FileSystem.removeFile(stem + SegmentFiles.timeIndexSuffix + suffix)
        let file = try FileDescriptor(path: stem + SegmentFiles.logSuffix + suffix, create: true)
        try file.truncate(to: 0)
        let segment = LogSegment(baseOffset: baseOffset, directory: directory, log: file, size: 0, config: config, now: now)
        segment.fileSuffix = suffix
        segment.flushedSize = -1
        return segment
    }

    /// Renames the segment's `.log`, `.index` and `.timeindex` from their current suffix to
    /// `suffix` ("" for the live names; a rename over an existing file replaces it atomically).
    /// The log is renamed last. The open descriptor keeps working.
    func renameFiles(toSuffix suffix: String) throws(LogStorageError) {
        guard suffix != fileSuffix else { return }
        for kind in [SegmentFiles.indexSuffix, SegmentFiles.timeIndexSuffix, SegmentFiles.logSuffix] {
            let stem = directory + "/" + SegmentFiles.name(baseOffset) + kind
            guard FileSystem.exists(stem + fileSuffix) else { continue }
            try FileSystem.rename(stem + fileSuffix, to: stem + suffix)
        }
        fileSuffix = suffix
    }

    // MARK: Indexes

    /// The offset index, loaded. Callers must have called a loading method first.
    var offsetIndex: OffsetIndex {
        guard let index = loadedOffsetIndex else { preconditionFailure("\(name): offset index used before loading") }
        return index
    }

    var timeIndex: TimeIndex {
        guard let index = loadedTimeIndex else { preconditionFailure("\(name): time index used before loading") }
        return index
    }

    /// Whether appending a batch ending at `lastOffset` could not be indexed (an index is full or
    /// the offset does not fit a relative int32).
    func indexCannotTake(lastOffset: Int64) -> Bool {
        (loadedOffsetIndex?.isFull ?? false) || (loadedTimeIndex?.isFull ?? false)
            || lastOffset - baseOffset > Int64(Int32.max) || lastOffset < baseOffset
    }

    /// Loads and checks both index files (lazily, on first use of an inactive segment). Throws
    /// `IndexCorruption` (or an I/O error) if they cannot be trusted.
    func ensureIndexesLoaded(nextSegmentBaseOffset: Int64?) throws {
        guard !indexesLoaded else { return }
        let offsets = try OffsetIndex.read(path: indexPath)
        try OffsetIndex.validate(offsets, path: indexPath, segmentSize: size)
        let times = try TimeIndex.read(path: timeIndexPath)
        try TimeIndex.validate(
            times, path: timeIndexPath, relativeOffsetLimit: nextSegmentBaseOffset.map { $0 - baseOffset })
        if let last = offsets.last {
            // The last entry must name the batch that starts at its position.
            var reader = BatchHeaderReader(file: log, limit: size, windowSize: BatchHeader.size)
            let header: BatchHeader?
            do { header = try reader.header(at: Int64(last.position)) } catch {
                throw IndexCorruption(path: indexPath, reason: "last entry points at an invalid batch: \(error)")
            }
            guard let header, header.lastOffset == baseOffset + Int64(last.relativeOffset) else {
                throw IndexCorruption(path: indexPath, reason: "last entry does not match the batch at position \(last.position)")
            }
        }
        loadedOffsetIndex = OffsetIndex(baseOffset: baseOffset, maxIndexBytes: maxIndexBytes, loaded: offsets)
        loadedTimeIndex = TimeIndex(baseOffset: baseOffset, maxIndexBytes: maxIndexBytes, loaded: times)
        if let last = times.last, last.timestamp > maxTimestampSoFar {
            maxTimestampSoFar = last.timestamp
            offsetOfMaxTimestampSoFar = baseOffset + Int64(last.relativeOffset)
        }
    }

    /// For an inactive segment at startup: reads only the time index's last entry, which holds the
    /// segment's largest timestamp (written when the segment was rolled), for retention and
    /// ListOffsets. Throws `IndexCorruption` if the time index is missing or implausible.
    func loadLargestTimestamp(nextSegmentBaseOffset: Int64) throws {
        guard FileSystem.exists(indexPath) else {
            throw IndexCorruption(path: indexPath, reason: "index file is missing")
        }
        if let size = FileSystem.fileSize(indexPath), size % Int64(OffsetIndexEntry.entrySize) != 0 {
            throw IndexCorruption(path: indexPath, reason: "size \(size) is not a multiple of 8")
        }
        guard let last = try TimeIndex.readLastEntry(path: timeIndexPath) else { return }
        guard last.timestamp >= 0, last.relativeOffset >= 0,
            Int64(last.relativeOffset) < nextSegmentBaseOffset - baseOffset
        else {
            throw IndexCorruption(path: timeIndexPath, reason: "last entry (\(last.timestamp), +\(last.relativeOffset)) is out of range")
        }
        maxTimestampSoFar = last.timestamp
        offsetOfMaxTimestampSoFar = baseOffset + Int64(last.relativeOffset)
    }

    /// For the active segment of a cleanly shut down log: loads and checks the indexes, then walks
    /// the batch headers after the last index entry to find the next offset and the largest
    /// timestamp. Throws if anything is off; the caller then recovers the segment.
    func loadAsActive() throws {
        try ensureIndexesLoaded(nextSegmentBaseOffset: nil)
        try scanTail()
        try loadFirstBatchTimestamp()
    }

    /// Reads the first batch's max timestamp (for `segment.ms`) if not known yet.
    private func loadFirstBatchTimestamp() throws(LogStorageError) {
        if size == 0 {
            firstBatchTimestamp = nil
        } else if firstBatchTimestamp == nil {
            var reader = BatchHeaderReader(file: log, limit: size, windowSize: BatchHeader.size)
            firstBatchTimestamp = try reader.header(at: 0)?.maxTimestamp
        }
    }

    /// Walks the headers from the last offset index entry to the end: sets `nextOffset`, the
    /// largest timestamp and `bytesSinceLastIndexEntry`.
    private func scanTail() throws(LogStorageError) {
        let start = Int64(offsetIndex.last?.position ?? 0)
        var reader = BatchHeaderReader(file: log, limit: size)
        var position = start
        var next = baseOffset
        while let header = try reader.header(at: position) {
            if header.maxTimestamp > maxTimestampSoFar {
                maxTimestampSoFar = header.maxTimestamp
                offsetOfMaxTimestampSoFar = header.lastOffset
            }
            next = header.nextOffset
            position += Int64(header.sizeInBytes)
        }
        nextOffset = next
        bytesSinceLastIndexEntry = size - start
    }

    // MARK: Append

    /// Appends `records` (whole batches, offsets assigned) with one `pwrite` at the end of the file,
    /// then indexes the batches from their headers. On a failed write the file is cut back.
    /// Appends `records`; with `patchHeaders`, the base offset and leader epoch of each batch come
    /// from `batches` (leader appends: the request's bytes are written without being modified).
    func append(_ records: ByteBuffer, batches: [AppendBatch], indexIntervalBytes: Int, patchHeaders: Bool = false) throws(LogStorageError) {
        precondition(indexesLoaded, "\(name): append before the indexes are loaded")
        let start = size
        do {
            if patchHeaders {
                try log.write(records, batches: batches, at: start)
            } else {
                try log.write(records, at: start)
            }
        } catch {
            try? log.truncate(to: start)
            throw error
        }
        if start == 0, let first = batches.first { firstBatchTimestamp = first.header.maxTimestamp }
        for batch in batches {
            index(batch.header, at: start + Int64(batch.position), indexIntervalBytes: indexIntervalBytes)
        }
        size = start + Int64(records.readableBytes)
        if let last = batches.last { nextOffset = last.header.nextOffset }
    }

    /// Kafka's per-batch index rule, identical on append and on recovery: an offset index entry
    /// (batch last offset, batch position) when more than `index.interval.bytes` were written since
    /// the last entry, and a time index entry when the largest timestamp grew.
    private func index(_ header: BatchHeader, at position: Int64, indexIntervalBytes: Int) {
        if header.maxTimestamp > maxTimestampSoFar {
            maxTimestampSoFar = header.maxTimestamp
            offsetOfMaxTimestampSoFar = header.lastOffset
        }
        if bytesSinceLastIndexEntry > Int64(indexIntervalBytes) {
            let relative = header.lastOffset - baseOffset
            if loadedOffsetIndex?.isFull == false, relative >= 0, relative <= Int64(Int32.max), position <= Int64(Int32.max) {
                loadedOffsetIndex?.append(OffsetIndexEntry(relativeOffset: Int32(relative), position: Int32(position)))
                loadedTimeIndex?.maybeAppend(timestamp: maxTimestampSoFar, offset: offsetOfMaxTimestampSoFar)
            }
            bytesSinceLastIndexEntry = 0
        }
        bytesSinceLastIndexEntry += Int64(header.sizeInBytes)
    }

    /// Whether this segment should roll before an append of `appendBytes` ending at `lastOffset`
    /// whose largest timestamp is `maxTimestamp` (Kafka's `shouldRoll`). For `segment.ms`, Kafka
    /// compares the incoming batches' timestamp with the segment's first batch's timestamp (wall
    /// clock time since the segment was created when there are no timestamps).
    func shouldRoll(appendBytes: Int, lastOffset: Int64, maxTimestamp: Int64, config: LogConfig, now: Int64) -> Bool {
        guard size > 0 else { return false }
        if size + Int64(appendBytes) > Int64(config.segmentBytes) { return true }
        if size + Int64(appendBytes) > Int64(Int32.max) { return true }
        let waited: Int64
        if let first = firstBatchTimestamp, first >= 0 {
            waited = maxTimestamp - first
        } else {
            waited = now - createdMillis
        }
        if waited > config.segmentMs { return true }
        return indexCannotTake(lastOffset: lastOffset)
    }

    /// When this segment stops being the active one (roll) or the log closes: records the final
    /// largest timestamp in the time index (as Kafka's `onBecomeInactiveSegment`) and writes the
    /// index files (without fsync).
    func finishIndexes() throws(LogStorageError) {
        loadedTimeIndex?.maybeAppend(timestamp: maxTimestampSoFar, offset: offsetOfMaxTimestampSoFar, force: true)
        try persistIndexes()
    }

    /// Writes index entries the files lack (no fsync).
    func persistIndexes() throws(LogStorageError) {
        if var index = loadedOffsetIndex, index.isDirty || !FileSystem.exists(indexPath) {
            try index.persist(to: indexPath)
            loadedOffsetIndex = index
            indexesNeedSync = true
        }
        if var index = loadedTimeIndex, index.isDirty || !FileSystem.exists(timeIndexPath) {
            try index.persist(to: timeIndexPath)
            loadedTimeIndex = index
            indexesNeedSync = true
        }
    }

    /// Called under the lock before a flush: writes the indexes and returns what
    /// ``syncToDisk(indexes:)`` must sync, with the size that will then be durable.
    func prepareFlush() throws(LogStorageError) -> (size: Int64, syncIndexes: Bool) {
        try persistIndexes()
        let syncIndexes = indexesNeedSync
        indexesNeedSync = false
        return (size, syncIndexes)
    }

    /// fdatasync of the log (and fsync of the index files): may run outside the partition lock.
    func syncToDisk(indexes: Bool) throws(LogStorageError) {
        try log.dataSync()
        guard indexes else { return }
        for path in [indexPath, timeIndexPath] where FileSystem.exists(path) {
            let file = try FileDescriptor(path: path, create: false)
            try file.sync()
        }
    }

    // MARK: Recovery

    /// Validates every batch from the start of the file (structure, CRC when `validateCRC`, offsets
    /// increasing and within the segment's int32 range), rebuilds both indexes from the batch
    /// headers, and — when `truncate` — cuts the file at the first invalid batch. `onBatch` sees
    /// each valid batch's header in order.
    func recover(
        indexIntervalBytes: Int, validateCRC: Bool = true, truncate: Bool = true,
        onBatch: (BatchHeader) -> Void = { _ in }
    ) throws(LogStorageError) -> SegmentScanResult {
        let fileSize = try log.size()
        loadedOffsetIndex = OffsetIndex(baseOffset: baseOffset, maxIndexBytes: maxIndexBytes)
        loadedOffsetIndex?.removeAll()
        loadedTimeIndex = TimeIndex(baseOffset: baseOffset, maxIndexBytes: maxIndexBytes)
        loadedTimeIndex?.removeAll()
        bytesSinceLastIndexEntry = 0
        maxTimestampSoFar = -1
        offsetOfMaxTimestampSoFar = -1
        firstBatchTimestamp = nil

        let chunkSize = 1 << 20
        var chunk = ByteBufferAllocator().buffer(capacity: validateCRC ? chunkSize : 16 * 1024)
        var chunkStart: Int64 = 0
        var position: Int64 = 0
        var lastOffset = baseOffset - 1
        var problem: String? = nil
        var count = 0

        /// Makes [position, position + length) readable in `chunk`; false at end of file.
        func ensure(_ length: Int) throws(LogStorageError) -> Bool {
            let end = position + Int64(length)
            if position >= chunkStart && end <= chunkStart + Int64(chunk.readableBytes) { return true }
            guard end <= fileSize else { return false }
            chunk.clear()
            let wanted = validateCRC ? max(length, chunkSize) : max(length, 16 * 1024)
            try log.read(into: &chunk, count: Int(min(Int64(wanted), fileSize - position)), at: position)
            chunkStart = position
            return chunk.readableBytes >= length
        }

        while position < fileSize {
            guard try ensure(BatchHeader.size),
                let header = BatchHeader(chunk, at: chunk.readerIndex + Int(position - chunkStart))
            else {
                problem = "\(fileSize - position) bytes at the end are too few for a batch header: torn write"
                break
            }
            if let structural = header.structuralProblem(available: fileSize - position) {
                problem = structural
                break
            }
            if header.baseOffset <= lastOffset || header.baseOffset < baseOffset {
                problem = "batch base offset \(header.baseOffset) does not follow offset \(lastOffset)"
                break
            }
            if header.lastOffset - baseOffset > Int64(Int32.max) {
                problem = "batch last offset \(header.lastOffset) is too far above the segment base offset"
                break
            }
            if validateCRC {
                guard try ensure(header.sizeInBytes),
                    let slice = chunk.getSlice(at: chunk.readerIndex + Int(position - chunkStart), length: header.sizeInBytes)
                else {
                    problem = "batch runs past the end of the file: torn write"
                    break
                }
                do {
                    try RecordBatch(slice).validate()
                } catch {
                    problem = "\(error)"
                    break
                }
            }
            if position == 0 { firstBatchTimestamp = header.maxTimestamp }
            index(header, at: position, indexIntervalBytes: indexIntervalBytes)
            onBatch(header)
            lastOffset = header.lastOffset
            position += Int64(header.sizeInBytes)
            count += 1
        }

        var truncated: Int64 = 0
        if position < fileSize && truncate {
            try log.truncate(to: position)
            truncated = fileSize - position
            flushedSize = min(flushedSize, position)
        }
        size = truncate ? position : fileSize
        nextOffset = lastOffset + 1
        indexesNeedSync = true
        try persistIndexes()
        return SegmentScanResult(
            validBytes: position, truncatedBytes: truncated, problem: problem, nextOffset: lastOffset + 1, batchCount: count)
    }

    // MARK: Truncation

    /// Removes the batches at and after the one containing `offset` (Kafka's `truncateTo`).
    /// Returns the bytes removed.
    @discardableResult
    func truncate(to offset: Int64) throws(LogStorageError) -> Int64 {
        precondition(indexesLoaded, "\(name): truncate before the indexes are loaded")
        let start = offsetIndex.lookup(offset).position
        var reader = BatchHeaderReader(file: log, limit: size)
        var position = start
        var cut: Int64? = nil
        while let header = try reader.header(at: position) {
            if header.lastOffset >= offset {
                cut = position
                break
            }
            position += Int64(header.sizeInBytes)
        }
        guard let cut, cut < size else {
            if nextOffset == nil { try scanTail() }
            try loadFirstBatchTimestamp()
            return 0
        }
        let removed = size - cut
        try log.truncate(to: cut)
        size = cut
        flushedSize = min(flushedSize, cut)
        loadedOffsetIndex?.truncate(toPosition: cut)
        loadedTimeIndex?.truncate(toOffset: offset)
        maxTimestampSoFar = -1
        offsetOfMaxTimestampSoFar = -1
        if let last = loadedTimeIndex?.last {
            maxTimestampSoFar = last.timestamp
            offsetOfMaxTimestampSoFar = baseOffset + Int64(last.relativeOffset)
        }
        try scanTail()
        try loadFirstBatchTimestamp()
        return removed
    }

    // MARK: Lookups

    /// The position of the first batch whose last offset is at or above `offset`, with its header;
    /// nil if every batch below `limit` ends before `offset`.
    func findBatch(
        atOrAfter offset: Int64, from startPosition: Int64, reader: inout BatchHeaderReader
    ) throws(LogStorageError) -> (position: Int64, header: BatchHeader)? {
        var position = startPosition
        while let header = try reader.header(at: position) {
            if header.lastOffset >= offset { return (position, header) }
            position += Int64(header.sizeInBytes)
        }
        return nil
    }

    /// The first batch at or after `startPosition` satisfying `predicate`.
    func findBatch(from startPosition: Int64, where predicate: (BatchHeader) -> Bool) throws(LogStorageError) -> (position: Int64, header: BatchHeader)? {
        var reader = BatchHeaderReader(file: log, limit: size)
        var position = startPosition
        while let header = try reader.header(at: position) {
            if predicate(header) { return (position, header) }
            position += Int64(header.sizeInBytes)
        }
        return nil
    }

    /// Calls `body` with every batch header from `startPosition` to the end.
    func forEachBatch(from startPosition: Int64 = 0, _ body: (Int64, BatchHeader) -> Void) throws(LogStorageError) {
        var reader = BatchHeaderReader(file: log, limit: size)
        var position = startPosition
        while let header = try reader.header(at: position) {
            body(position, header)
            position += Int64(header.sizeInBytes)
        }
    }

    /// The segment's largest timestamp for retention: the largest batch timestamp, or the file's
    /// modification time when no batch has one (as Kafka's `largestTimestamp`).
    var largestTimestamp: Int64 {
        if maxTimestampSoFar >= 0 { return maxTimestampSoFar }
        return FileSystem.modificationTimeMillis(logPath) ?? createdMillis
    }

    // MARK: Deletion

    /// Renames the segment's files to `*.deleted` (Kafka's async delete): they are removed after
    /// `file.delete.delay.ms`. Open descriptors keep working for in-flight reads. Returns the new
    /// paths.
    func renameForDeletion() throws(LogStorageError) -> [String] {
        guard fileSuffix.isEmpty else { return [] }
        var renamed: [String] = []
        for suffix in [SegmentFiles.logSuffix, SegmentFiles.indexSuffix, SegmentFiles.timeIndexSuffix, SegmentFiles.txnIndexSuffix] {
            let from = path(suffix)
            guard FileSystem.exists(from) else { continue }
            try FileSystem.rename(from, to: from + SegmentFiles.deletedSuffix)
            renamed.append(from + SegmentFiles.deletedSuffix)
        }
        fileSuffix = SegmentFiles.deletedSuffix
        return renamed
    }
}
