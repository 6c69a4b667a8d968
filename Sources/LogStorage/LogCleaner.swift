import KafkaProtocol
import Logging
import NIOCore

/// What one compaction pass did to a partition.
public struct LogCleanResult: Hashable, Sendable {
    /// Segments rewritten and swapped in.
    public var segmentsCleaned = 0
    /// Records removed (superseded values and expired tombstones).
    public var recordsRemoved = 0
    /// Bytes of the rewritten segments before and after.
    public var bytesBefore: Int64 = 0
    public var bytesAfter: Int64 = 0
    /// The offset up to which the log is clean after this pass (the base offset of the first
    /// segment that was not cleanable); nil if nothing was cleanable. What the
    /// `cleaner-offset-checkpoint` records.
    public var cleanedUpTo: Int64?

    public init() {}
}

/// How much of a compacted log is dirty (written since it was last cleaned), as Kafka's
/// `LogToClean`.
public struct CleanableState: Hashable, Sendable {
    /// Where the dirty part starts (the cleaner checkpoint, clamped to the log).
    public var firstDirtyOffset: Int64
    /// Nothing at or after this is cleaned: the active segment, the high watermark, the first open
    /// transaction and segments younger than `min.compaction.lag.ms`.
    public var firstUncleanableOffset: Int64
    /// Bytes of the cleanable segments below / at or after `firstDirtyOffset`.
    public var cleanBytes: Int64
    public var dirtyBytes: Int64
    /// A dirty segment is older than `max.compaction.lag.ms`.
    public var overdue: Bool

    public var dirtyRatio: Double {
        let total = cleanBytes + dirtyBytes
        return total == 0 ? 0 : Double(dirtyBytes) / Double(total)
    }
}

extension OffsetCheckpointFile {
    /// Kafka's `cleaner-offset-checkpoint` in each log directory: per partition, the offset up to
    /// which its log has been compacted.
    public static let cleanerOffsetFileName = "cleaner-offset-checkpoint"
}

/// The logs being cleaned right now (one cleaning at a time per log: the cleaned files have fixed
/// names).
private final class CleaningSet: @unchecked Sendable {
    private let lock = Lock()
    private var ids: Set<ObjectIdentifier> = []

    func begin(_ id: ObjectIdentifier) -> Bool { lock.withLock { ids.insert(id).inserted } }
    func end(_ id: ObjectIdentifier) { _ = lock.withLock { ids.remove(id) } }
}

private let logsBeingCleaned = CleaningSet()

/// Log compaction (Kafka's `LogCleaner`) for `cleanup.policy=compact` logs.
///
/// A pass works on the cleanable segments — closed segments wholly below the active segment, the
/// high watermark and the first open transaction, and older than `min.compaction.lag.ms`:
/// 1. it reads their batches and maps each key to its latest offset;
/// 2. it rewrites each segment as `<base>.log.cleaned`, keeping a record only if it is the latest
///    of its key (records without a key are kept), dropping tombstones once the segment's largest
///    timestamp is older than `delete.retention.ms`. Batches whose records all stay are copied as
///    they are; the others are rebuilt with the same header (base offset, last offset delta,
///    leader epoch, producer id, epoch and base sequence, attributes and codec) and only the kept
///    records, each with its original offset and timestamp deltas. Batches left empty are dropped
///    except a producer's last batch (kept as a header, for its sequence numbers) and the last
///    batch of a segment that would become empty (so segments never vanish). Control batches,
///    transactional batches and batches in codecs Petrel cannot decode are copied untouched, and
///    their records neither supersede nor are superseded;
/// 3. it builds the new indexes, fsyncs, and swaps the files under the partition lock (renaming
///    `.cleaned` to `.swap`, then over the live names, as Kafka does; recovery finishes a swap
///    left half-done). Appends and reads go on meanwhile; reads holding the old segment keep
///    reading its (unlinked) file through their descriptor.
///
/// The map is built afresh from the log start at each pass (so a lost checkpoint costs only a
/// wasted pass), and records superseded only by records in the active segment stay until that
/// segment is closed.
extension PartitionLog {
    /// The cleanable segments: `segments[0..<count]`, with the first offset that is not cleanable.
    func cleanableSegmentsLocked(now: Int64) -> (count: Int, firstUncleanableOffset: Int64) {
        var uncleanable = min(activeSegment.baseOffset, _highWatermark)
        if let unstable = producerState.firstUnstableOffset { uncleanable = min(uncleanable, unstable) }
        let minLag = _config.minCompactionLagMs
        var count = 0
        while count < segments.count - 1 {
            let next = segments[count + 1].baseOffset
            guard next <= uncleanable else { break }
            if minLag > 0 && now - segments[count].largestTimestamp < minLag { break }
            count += 1
        }
        let first = count < segments.count ? segments[count].baseOffset : uncleanable
        return (count, min(first, uncleanable))
    }

    /// How dirty the log is, given the cleaner checkpoint (nil: never cleaned).
    public func cleanableState(firstDirtyOffset checkpoint: Int64?, now: Int64 = LogClock.nowMillis()) -> CleanableState {
        lock.withLock {
            let (count, uncleanable) = cleanableSegmentsLocked(now: now)
            let firstDirty = min(max(checkpoint ?? _logStartOffset, _logStartOffset), _logEndOffset)
            var clean: Int64 = 0
            var dirty: Int64 = 0
            var overdue = false
            let maxLag = _config.maxCompactionLagMs
            for i in 0..<count {
                let segment = segments[i]
                if segments[i + 1].baseOffset <= firstDirty {
                    clean += segment.size
                } else {
                    dirty += segment.size
                    if maxLag != Int64.max, segment.size > 0, now - segment.largestTimestamp > maxLag { overdue = true }
                }
            }
            return CleanableState(
                firstDirtyOffset: firstDirty, firstUncleanableOffset: uncleanable, cleanBytes: clean, dirtyBytes: dirty,
                overdue: overdue)
        }
    }

    /// Whether a compaction pass is due: the log is compacted, has dirty cleanable bytes, and its
    /// dirty ratio reaches `min.cleanable.dirty.ratio` (or a dirty segment is older than
    /// `max.compaction.lag.ms`).
    public func needsCleaning(firstDirtyOffset: Int64?, now: Int64 = LogClock.nowMillis()) -> Bool {
        let config = self.config
        guard config.cleanupPolicy.contains(.compact), !isClosed else { return false }
        let state = cleanableState(firstDirtyOffset: firstDirtyOffset, now: now)
        guard state.dirtyBytes > 0 else { return false }
        return state.overdue || state.dirtyRatio >= config.minCleanableDirtyRatio
    }

    /// One compaction pass over the cleanable segments (see the extension's description). Does
    /// nothing for a log without `cleanup.policy` compact, or while another pass runs on this log.
    @discardableResult
    public func clean(now: Int64 = LogClock.nowMillis()) throws(LogStorageError) -> LogCleanResult {
        var result = LogCleanResult()
        let id = ObjectIdentifier(self)
        guard logsBeingCleaned.begin(id) else { return result }
        defer { logsBeingCleaned.end(id) }

        // Under the lock: what to clean.
        struct Target {
            let segment: LogSegment
            let size: Int64
            let largestTimestamp: Int64
        }
        var targets: [Target] = []
        var config = LogConfig()
        var generation: UInt64 = 0
        var producerLastOffsets: [Int64: Int64] = [:]
        lock.withLock {
            guard !closed, _config.cleanupPolicy.contains(.compact) else { return }
            config = _config
            generation = truncationGeneration
            let (count, _) = cleanableSegmentsLocked(now: now)
            for i in 0..<count {
                targets.append(Target(segment: segments[i], size: segments[i].size, largestTimestamp: segments[i].largestTimestamp))
            }
            if count > 0 { result.cleanedUpTo = segments[count].baseOffset }
            for (producerId, entry) in producerState.producers {
                if let last = entry.batches.last?.lastOffset { producerLastOffsets[producerId] = last }
            }
        }
        guard !targets.isEmpty else { return result }

        // 1. The latest offset of each key.
        var latest: [[UInt8]: Int64] = [:]
        for target in targets {
            try forEachStoredBatch(target.segment, limit: target.size) { batch in
                guard Self.isCompactable(batch), let records = try? batch.decodeRecords() else { return }
                for record in records {
                    if let key = record.key { latest[Array(key.readableBytesView), default: -1] = record.offset }
                }
            }
        }

        // 2 and 3. Rewrite and swap each segment.
        let deleteHorizon = now - config.deleteRetentionMs
        for target in targets {
            let dropTombstones = target.largestTimestamp < deleteHorizon
            let cleaned = try LogSegment.createCleaned(
                directory: directory, baseOffset: target.segment.baseOffset, config: config, now: now)
            var swapped = false
            defer {
                if !swapped { Self.removeCleanedFiles(directory: directory, baseOffset: target.segment.baseOffset) }
            }
            var output = allocator.buffer(capacity: 64 * 1024)
            var written: Int64 = 0
            var changed = false
            var removed = 0
            var lastDropped: RecordBatch? = nil
            try forEachStoredBatch(target.segment, limit: target.size) { (batch) throws(LogStorageError) in
                let (filtered, removedRecords) = Self.filter(
                    batch, latest: latest, dropTombstones: dropTombstones, producerLastOffsets: producerLastOffsets)
                removed += removedRecords
                switch filtered {
                case .keep:
                    var bytes = batch.buffer
                    output.writeBuffer(&bytes)
                    lastDropped = nil
                case .rebuilt(var bytes):
                    changed = true
                    output.writeBuffer(&bytes)
                    lastDropped = nil
                case .drop:
                    changed = true
                    lastDropped = batch
                }
                if output.readableBytes >= 1 << 20 {
                    try cleaned.log.write(output, at: written)
                    written += Int64(output.readableBytes)
                    output.clear()
                }
            }
            if written == 0 && output.readableBytes == 0, let last = lastDropped {
                // Keep the segment's last batch as an empty batch rather than an empty segment.
                var bytes = Self.rebuild(last, keeping: [])
                output.writeBuffer(&bytes)
            }
            guard changed else { continue }
            if output.readableBytes > 0 {
                try cleaned.log.write(output, at: written)
                written += Int64(output.readableBytes)
            }
            let scan = try cleaned.recover(indexIntervalBytes: config.indexIntervalBytes, validateCRC: true, truncate: false)
            if let problem = scan.problem {
                throw .corruptSegment(
                    path: cleaned.logPath, position: scan.validBytes, reason: "the cleaned segment failed its check: \(problem)")
            }
            try cleaned.finishIndexes()
            let (cleanedSize, syncIndexes) = try cleaned.prepareFlush()
            try cleaned.syncToDisk(indexes: syncIndexes)
            cleaned.flushedSize = cleanedSize

            swapped = try lock.withLock { () throws(LogStorageError) -> Bool in
                guard !closed, truncationGeneration == generation,
                    let i = segments.firstIndex(where: { $0 === target.segment }), i < segments.count - 1,
                    target.segment.size == target.size
                else { return false }
                try cleaned.renameFiles(toSuffix: SegmentFiles.swapSuffix)
                try cleaned.renameFiles(toSuffix: "")
                segments[i] = cleaned
                directoryNeedsSync = true
                return true
            }
            guard swapped else {
                logger.info("log cleaning of \(topicPartition) stopped: the log changed under the cleaner")
                result.cleanedUpTo = nil
                break
            }
            result.segmentsCleaned += 1
            result.recordsRemoved += removed
            result.bytesBefore += target.size
            result.bytesAfter += written
            logger.info(
                "cleaned segment \(cleaned.name) of \(topicPartition): \(target.size) -> \(written) bytes, \(removed) record(s) removed"
            )
        }
        if result.cleanedUpTo != nil {
            // The directory entries of the swaps become durable with the next flush; make them so now.
            let sync = lock.withLock { () -> Bool in
                let needed = directoryNeedsSync
                directoryNeedsSync = false
                return needed
            }
            if sync { try FileSystem.syncDirectory(directory) }
        }
        return result
    }

    // MARK: Helpers

    private static func removeCleanedFiles(directory: String, baseOffset: Int64) {
        let stem = directory + "/" + SegmentFiles.name(baseOffset)
        for suffix in [SegmentFiles.logSuffix, SegmentFiles.indexSuffix, SegmentFiles.timeIndexSuffix] {
            try? FileSystem.removeFile(stem + suffix + SegmentFiles.cleanedSuffix)
        }
    }

    /// Batches whose records the cleaner may remove (and whose keys supersede older records).
    private static func isCompactable(_ batch: RecordBatch) -> Bool {
        !batch.isControl && !batch.isTransactional && (batch.compression?.isSupported ?? false)
    }

    private enum Filtered {
        case keep
        case drop
        case rebuilt(ByteBuffer)
    }

    private static func filter(
        _ batch: RecordBatch, latest: [[UInt8]: Int64], dropTombstones: Bool, producerLastOffsets: [Int64: Int64]
    ) -> (Filtered, removed: Int) {
        guard isCompactable(batch), let records = try? batch.decodeRecords() else { return (.keep, 0) }
        let retained = records.filter { record in
            guard let key = record.key else { return true }
            guard let newest = latest[Array(key.readableBytesView)] else { return true }
            if newest != record.offset { return false }
            return !(record.value == nil && dropTombstones)
        }
        let removed = records.count - retained.count
        if removed == 0 { return (.keep, 0) }
        let lastOffset = batch.baseOffset + Int64(batch.lastOffsetDelta)
        if retained.isEmpty && !(batch.producerId >= 0 && producerLastOffsets[batch.producerId] == lastOffset) {
            return (.drop, removed)
        }
        return (.rebuilt(rebuild(batch, keeping: retained)), removed)
    }

    /// The batch with only `records`: the same header (base offset, last offset delta, epochs,
    /// producer fields, base timestamp, attributes), the records with their original deltas,
    /// compressed with the batch's codec (none or gzip), a new record count, length, max timestamp
    /// (create time) and CRC.
    static func rebuild(_ batch: RecordBatch, keeping records: [Record]) -> ByteBuffer {
        var body = ByteBufferAllocator().buffer(capacity: batch.buffer.readableBytes)
        for record in records {
            var size = 1 + VarintSize.signed(record.timestampDelta) + VarintSize.signed(Int64(record.offsetDelta))
            size += encodedSize(record.key) + encodedSize(record.value) + VarintSize.signed(Int64(record.headers.count))
            for header in record.headers {
                let keyLength = header.key.utf8.count
                size += VarintSize.signed(Int64(keyLength)) + keyLength + encodedSize(header.value)
            }
            body.writeVarint(Int32(size))
            body.writeInteger(record.attributes)
            body.writeVarlong(record.timestampDelta)
            body.writeVarint(record.offsetDelta)
            write(record.key, to: &body)
            write(record.value, to: &body)
            body.writeVarint(Int32(record.headers.count))
            for header in record.headers {
                body.writeVarint(Int32(header.key.utf8.count))
                body.writeString(header.key)
                write(header.value, to: &body)
            }
        }
        if batch.compression == .gzip, !records.isEmpty, let compressed = try? GzipCodec.compress(body) {
            body = compressed
        }
        typealias O = RecordBatch.Offset
        var output = ByteBufferAllocator().buffer(capacity: RecordBatch.headerSize + body.readableBytes)
        var header = batch.buffer.getSlice(at: batch.buffer.readerIndex, length: RecordBatch.headerSize)!
        output.writeBuffer(&header)
        output.writeBuffer(&body)
        let start = output.readerIndex
        output.setInteger(Int32(output.readableBytes - RecordBatch.logOverhead), at: start + O.batchLength)
        output.setInteger(Int32(records.count), at: start + O.recordsCount)
        if batch.timestampType == .createTime, let max = records.map(\.timestamp).max() {
            output.setInteger(max, at: start + O.maxTimestamp)
        }
        let crc = CRC32C.checksum(output, at: start + O.attributes, length: output.readableBytes - O.attributes) ?? 0
        output.setInteger(crc, at: start + O.crc)
        return output
    }

    private static func encodedSize(_ bytes: ByteBuffer?) -> Int {
        guard let bytes else { return 1 }
        return VarintSize.signed(Int64(bytes.readableBytes)) + bytes.readableBytes
    }

    private static func write(_ bytes: ByteBuffer?, to buffer: inout ByteBuffer) {
        guard var bytes else {
            buffer.writeVarint(-1)
            return
        }
        buffer.writeVarint(Int32(bytes.readableBytes))
        buffer.writeBuffer(&bytes)
    }

    /// Calls `body` with every batch of `segment` below `limit`, read in chunks of about 1 MiB.
    func forEachStoredBatch(
        _ segment: LogSegment, limit: Int64, _ body: (RecordBatch) throws(LogStorageError) -> Void
    ) throws(LogStorageError) {
        let chunkSize = 1 << 20
        var position: Int64 = 0
        while position < limit {
            var chunk = try segment.log.read(
                count: Int(min(Int64(chunkSize), limit - position)), at: position, allocator: allocator)
            var used = 0
            while let header = BatchHeader(chunk, at: chunk.readerIndex + used) {
                let available = Int64(chunk.readableBytes - used)
                if let problem = header.structuralProblem(available: limit - position - Int64(used)) {
                    throw .corruptSegment(path: segment.logPath, position: position + Int64(used), reason: problem)
                }
                guard Int64(header.sizeInBytes) <= available else { break }
                let slice = chunk.getSlice(at: chunk.readerIndex + used, length: header.sizeInBytes)!
                let batch: RecordBatch
                do {
                    batch = try RecordBatch(slice)
                } catch {
                    throw .corruptSegment(path: segment.logPath, position: position + Int64(used), reason: "\(error)")
                }
                try body(batch)
                used += header.sizeInBytes
            }
            if used == 0 {
                // A batch larger than the chunk (or a torn header at the end): read it whole.
                guard let header = BatchHeader(chunk, at: chunk.readerIndex) else {
                    throw .corruptSegment(path: segment.logPath, position: position, reason: "torn batch header")
                }
                chunk = try segment.log.read(count: header.sizeInBytes, at: position, allocator: allocator)
                let batch: RecordBatch
                do {
                    batch = try RecordBatch(chunk)
                } catch {
                    throw .corruptSegment(path: segment.logPath, position: position, reason: "\(error)")
                }
                try body(batch)
                used = header.sizeInBytes
            }
            position += Int64(used)
        }
    }
}
