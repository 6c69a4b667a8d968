import KafkaProtocol
import Logging
import NIOCore

/// What an append did.
public struct LogAppendInfo: Hashable, Sendable {
    /// The offset of the first record appended (or, for a duplicate, first appended originally).
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// The largest batch max timestamp of the append (-1 if none).
    public var maxTimestamp: Int64
    /// The last offset of the batch carrying `maxTimestamp`.
    public var offsetOfMaxTimestamp: Int64
    /// The broker time written into the batches for `LogAppendTime` topics, else -1.
    public var logAppendTime: Int64
    public var logStartOffset: Int64
    /// The log end offset after the append.
    public var logEndOffset: Int64
    public var recordCount: Int
    public var batchCount: Int
    public var validBytes: Int
    /// The batch was a retry of one already in the log (idempotent producer): nothing was written,
    /// the offsets are those of the original.
    public var isDuplicate: Bool
    /// The append started a new segment.
    public var rolled: Bool
}

/// The answer to a read: whole batches from one segment, as stored.
public struct LogReadResult: Sendable {
    /// Whole record batches, exactly as on disk (empty if there is nothing to read).
    public var records: ByteBuffer
    /// The base offset of the first batch in `records` (it may be below the requested offset: the
    /// batch containing it is returned whole); the requested offset when `records` is empty.
    public var firstOffset: Int64
    /// The offset after the last batch in `records`; the requested offset when empty.
    public var nextOffset: Int64
    public var batchCount: Int
    /// Records in `records`, from the batch headers.
    public var recordCount: Int
    public var logStartOffset: Int64
    public var logEndOffset: Int64
    public var highWatermark: Int64
}

/// A record found by timestamp (ListOffsets), with the leader epoch of its batch.
public struct TimestampAndOffset: Hashable, Sendable {
    public var timestamp: Int64
    public var offset: Int64
    public var leaderEpoch: Int32?

    public init(timestamp: Int64, offset: Int64, leaderEpoch: Int32?) {
        self.timestamp = timestamp
        self.offset = offset
        self.leaderEpoch = leaderEpoch
    }
}

/// One partition's log: segments in `<log.dir>/<topic>-<partition>/`, the leader epoch cache and
/// the producer state, in Kafka's formats.
///
/// Concurrency: every `PartitionLog` has its own lock; partitions never contend. All mutable
/// state (segment list, offsets, caches, segment internals) is read and written only with `lock`
/// held, which is what makes the `@unchecked Sendable` sound. Two things happen outside it:
/// - the data `pread` of a read (and its header scan), on a segment object and a size bound
///   captured under the lock. Segments are append-only below that bound; a truncation bumps
///   `truncationGeneration` and the read retries. Reference counting keeps a segment's file
///   descriptor open while a read holds it, even if the segment is deleted meanwhile.
/// - the `fdatasync` of a flush, on segments captured under the lock; `flushLock` serialises
///   flushes, and the recovery point only advances if no truncation happened meanwhile.
/// Appends hold the lock for their one `pwrite` (so they are ordered); the CRC check of the
/// incoming batches happens before the lock is taken.
public final class PartitionLog: @unchecked Sendable {
    public let topicPartition: TopicPartition
    /// `<log.dir>/<topic>-<partition>`
    public let directory: String
    let logger: Logger
    let lock = Lock()
    let flushLock = Lock()
    let allocator = ByteBufferAllocator()

    // MARK: State guarded by `lock`

    var _config: LogConfig
    /// Sorted by base offset; never empty.
    var segments: [LogSegment] = []
    var _logStartOffset: Int64 = 0
    var _logEndOffset: Int64 = 0
    var _recoveryPoint: Int64 = 0
    var _highWatermark: Int64 = 0
    var lastFlushTime: Int64
    /// The base offset of the newest rolled segment whose predecessors are not yet flushed.
    var pendingRollFlushOffset: Int64?
    var epochCache = LeaderEpochCache()
    var producerState = ProducerStateManager()
    var truncationGeneration: UInt64 = 0
    var closed = false
    var directoryNeedsSync = false
    /// Files renamed `*.deleted`, removed once due.
    var pendingDeletions: [(due: Int64, paths: [String])] = []

    init(directory: String, topicPartition: TopicPartition, config: LogConfig, logger: Logger, now: Int64) {
        self.directory = directory
        self.topicPartition = topicPartition
        self._config = config
        var logger = logger
        logger[metadataKey: "partition"] = "\(topicPartition)"
        self.logger = logger
        self.lastFlushTime = now
    }

    var activeSegment: LogSegment { segments[segments.count - 1] }

    // MARK: Public state

    public var config: LogConfig { lock.withLock { _config } }

    /// Changes the partition's settings (`segment.bytes`, retention, flush, ...). New index sizes
    /// apply to segments created afterwards.
    public func updateConfig(_ config: LogConfig) throws(LogStorageError) {
        try config.validate()
        lock.withLock { _config = config }
    }

    /// The first offset a consumer can read.
    public var logStartOffset: Int64 { lock.withLock { _logStartOffset } }
    /// The offset the next record will get.
    public var logEndOffset: Int64 { lock.withLock { _logEndOffset } }
    /// The offset up to which the log is known to be on disk (fsynced).
    public var recoveryPoint: Int64 { lock.withLock { _recoveryPoint } }
    /// The high watermark, as last set by the broker (``updateHighWatermark(_:)``) and checkpointed
    /// by `LogManager`. Retention never deletes a segment the high watermark has not passed.
    public var highWatermark: Int64 { lock.withLock { _highWatermark } }
    /// Messages appended since the last flush (Kafka: log end offset - recovery point).
    public var unflushedMessages: Int64 { lock.withLock { _logEndOffset - _recoveryPoint } }
    /// Total bytes of all segments.
    public var size: Int64 { lock.withLock { segments.reduce(0) { $0 + $1.size } } }
    public var segmentCount: Int { lock.withLock { segments.count } }
    /// The base offsets of the segments, oldest first.
    public var segmentBaseOffsets: [Int64] { lock.withLock { segments.map(\.baseOffset) } }
    public var isClosed: Bool { lock.withLock { closed } }

    /// Sets the high watermark, clamped to `[logStartOffset, logEndOffset]`; returns the value set.
    @discardableResult
    public func updateHighWatermark(_ offset: Int64) -> Int64 {
        lock.withLock {
            _highWatermark = min(max(offset, _logStartOffset), _logEndOffset)
            return _highWatermark
        }
    }

    // MARK: Leader epochs

    public var latestEpoch: Int32? { lock.withLock { epochCache.latestEpoch } }
    public var leaderEpochEntries: [EpochEntry] { lock.withLock { epochCache.entries } }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` and where it ended.
    public func endOffset(forEpoch epoch: Int32) -> (epoch: Int32, endOffset: Int64) {
        lock.withLock { epochCache.endOffset(for: epoch, logEndOffset: _logEndOffset) }
    }

    public func epoch(forOffset offset: Int64) -> Int32? {
        lock.withLock { epochCache.epoch(forOffset: offset) }
    }

    /// Records that `epoch` starts at `startOffset` (a new leader calls this with its log end offset
    /// when it takes over, before it appends anything).
    public func assignEpochStartOffset(epoch: Int32, startOffset: Int64) throws(LogStorageError) {
        try lock.withLock { () throws(LogStorageError) in
            if epochCache.assign(epoch: epoch, startOffset: startOffset) { try writeEpochCheckpointLocked() }
        }
    }

    var epochCheckpointPath: String { directory + "/" + LeaderEpochCheckpointFile.fileName }

    func writeEpochCheckpointLocked() throws(LogStorageError) {
        try LeaderEpochCheckpointFile.write(epochCache.entries, to: epochCheckpointPath)
    }

    // MARK: Producer state

    /// Kafka's sequence rules for a batch of an idempotent producer, against the current state.
    public func checkSequence(producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32) -> SequenceCheck {
        lock.withLock {
            producerState.checkSequence(producerId: producerId, epoch: epoch, firstSequence: firstSequence, lastSequence: lastSequence)
        }
    }

    public func producerStateEntry(for producerId: Int64) -> ProducerStateEntry? {
        lock.withLock { producerState.entry(for: producerId) }
    }

    public var producerStates: [Int64: ProducerStateEntry] { lock.withLock { producerState.producers } }

    /// The first offset of the oldest open transaction (the broker's last stable offset is the
    /// smaller of this and the high watermark).
    public var firstUnstableOffset: Int64? { lock.withLock { producerState.firstUnstableOffset } }

    /// Records a transaction marker's coordinator epoch (decoded by the broker).
    public func setCoordinatorEpoch(_ coordinatorEpoch: Int32, producerId: Int64) {
        lock.withLock { producerState.setCoordinatorEpoch(coordinatorEpoch, for: producerId) }
    }

    // MARK: Append

    /// Appends a Produce request's `records` (one or more record batches v2) as the leader.
    ///
    /// Every batch is checked (complete, magic 2, CRC, record count consistent with its offset
    /// delta, at most `max.message.bytes`) before the lock is taken; idempotent batches are checked
    /// against the producer state (a retry returns the original offsets with `isDuplicate`, nothing
    /// written); then offsets from the log end offset and `leaderEpoch` are written into the batch
    /// headers in place (outside the CRC) and the bytes go to the active segment in one `pwrite`.
    /// With `logAppendTime`, each batch's max timestamp becomes the broker's time and its CRC is
    /// recomputed (topics with `message.timestamp.type=LogAppendTime`).
    ///
    /// Pass the buffer uniquely referenced (`consume`/last use) to avoid a copy-on-write of its
    /// bytes when the headers are rewritten.
    public func appendAsLeader(
        _ records: consuming ByteBuffer, leaderEpoch: Int32, logAppendTime: Bool = false,
        validateSequences: Bool = true, now: Int64 = LogClock.nowMillis()
    ) throws(LogStorageError) -> LogAppendInfo {
        let config = self.config
        var batches = try analyze(records, config: config, leader: true)
        if logAppendTime {
            for i in batches.indices {
                Self.setLogAppendTime(now, in: &records, batch: &batches[i])
            }
        }
        let info: LogAppendInfo
        var needsFlush = false
        do {
            lock.lock()
            defer { lock.unlock() }
            guard !closed else { throw .logClosed(topicPartition) }
            let firstOffset = _logEndOffset
            // Offsets are assigned consecutively from the log end offset.
            var next = firstOffset
            for i in batches.indices {
                batches[i].header.baseOffset = next
                batches[i].header.partitionLeaderEpoch = leaderEpoch
                next += Int64(batches[i].header.lastOffsetDelta) + 1
            }
            if validateSequences, let duplicate = try checkProducerBatchesLocked(batches) {
                return LogAppendInfo(
                    firstOffset: duplicate.firstOffset, lastOffset: duplicate.lastOffset, maxTimestamp: -1,
                    offsetOfMaxTimestamp: -1, logAppendTime: logAppendTime ? now : -1, logStartOffset: _logStartOffset,
                    logEndOffset: _logEndOffset, recordCount: 0, batchCount: 0, validBytes: 0, isDuplicate: true, rolled: false)
            }
            // The new offsets and epoch are in `batches`; the segment writes them in place of the
            // request's header bytes (pwritev), leaving `records` untouched: no copy-on-write.
            info = try appendLocked(
                records, batches: batches, config: config, now: now, logAppendTime: logAppendTime ? now : -1,
                patchHeaders: true)
            needsFlush = _logEndOffset - _recoveryPoint >= config.flushIntervalMessages
        }
        if needsFlush { try flush(now: now) }
        return info
    }

    /// Appends batches replicated from the leader, offsets already assigned. The first batch must
    /// start at or after the log end offset and offsets must increase. The CRC is checked.
    public func appendAsFollower(_ records: ByteBuffer, now: Int64 = LogClock.nowMillis()) throws(LogStorageError) -> LogAppendInfo {
        let config = self.config
        let batches = try analyze(records, config: config, leader: false)
        let info: LogAppendInfo
        var needsFlush = false
        do {
            lock.lock()
            defer { lock.unlock() }
            guard !closed else { throw .logClosed(topicPartition) }
            guard let first = batches.first, first.header.baseOffset >= _logEndOffset else {
                throw .unexpectedAppendOffset(
                    topicPartition, firstOffset: batches.first?.header.baseOffset ?? -1, logEndOffset: _logEndOffset)
            }
            info = try appendLocked(records, batches: batches, config: config, now: now, logAppendTime: -1)
            needsFlush = _logEndOffset - _recoveryPoint >= config.flushIntervalMessages
        }
        if needsFlush { try flush(now: now) }
        return info
    }

    /// Checks idempotent batches against the producer state (and each other). Returns the original
    /// offsets if a batch is a retry; throws for out-of-order sequences and fenced epochs.
    private func checkProducerBatchesLocked(_ batches: [AppendBatch]) throws(LogStorageError) -> (firstOffset: Int64, lastOffset: Int64)? {
        var overlay: [Int64: ProducerStateEntry] = [:]
        for batch in batches {
            let header = batch.header
            guard header.producerId >= 0 else { continue }
            var entry = overlay[header.producerId] ?? producerState.entry(for: header.producerId)
            if header.isControl {
                if let current = entry?.producerEpoch, header.producerEpoch < current {
                    throw .invalidProducerEpoch(
                        topicPartition, producerId: header.producerId, currentEpoch: current, receivedEpoch: header.producerEpoch)
                }
            } else {
                switch ProducerStateManager.checkSequence(
                    entry: entry, epoch: header.producerEpoch, firstSequence: header.baseSequence, lastSequence: header.lastSequence)
                {
                case .new:
                    break
                case .unknownProducer:
                    // Kafka >= 2.5 (KIP-360): state may have expired; accept.
                    logger.debug(
                        "accepting batch of unknown producer \(header.producerId) starting at sequence \(header.baseSequence)")
                case let .duplicate(firstOffset, lastOffset):
                    return (firstOffset, lastOffset)
                case let .outOfOrderSequence(expected):
                    throw .outOfOrderSequence(
                        topicPartition, producerId: header.producerId, expected: expected, received: header.baseSequence)
                case let .invalidProducerEpoch(current):
                    throw .invalidProducerEpoch(
                        topicPartition, producerId: header.producerId, currentEpoch: current, receivedEpoch: header.producerEpoch)
                }
            }
            ProducerStateManager.apply(
                to: &entry, producerId: header.producerId, epoch: header.producerEpoch,
                firstSequence: header.baseSequence, lastSequence: header.lastSequence,
                firstOffset: header.baseOffset, lastOffset: header.lastOffset, timestamp: header.maxTimestamp,
                isTransactional: header.isTransactional, isControl: header.isControl)
            overlay[header.producerId] = entry
        }
        return nil
    }

    /// The common tail of both appends, with the lock held: roll if needed, write, update offsets,
    /// producer state and leader epochs.
    private func appendLocked(
        _ records: ByteBuffer, batches: [AppendBatch], config: LogConfig, now: Int64, logAppendTime: Int64,
        patchHeaders: Bool = false
    ) throws(LogStorageError) -> LogAppendInfo {
        let first = batches[0].header
        let last = batches[batches.count - 1].header
        var rolled = false
        let active = activeSegment
        let appendMaxTimestamp = batches.reduce(Int64(-1)) { max($0, $1.header.maxTimestamp) }
        if active.shouldRoll(
            appendBytes: records.readableBytes, lastOffset: last.lastOffset, maxTimestamp: appendMaxTimestamp, config: config,
            now: now)
            || (active.isEmpty && (first.baseOffset - active.baseOffset > Int64(Int32.max) || last.lastOffset - active.baseOffset > Int64(Int32.max)))
        {
            try rollLocked(newBaseOffset: first.baseOffset, now: now)
            rolled = true
        }
        try activeSegment.append(records, batches: batches, indexIntervalBytes: config.indexIntervalBytes, patchHeaders: patchHeaders)
        _logEndOffset = last.nextOffset

        var maxTimestamp: Int64 = -1
        var offsetOfMaxTimestamp: Int64 = -1
        var recordCount = 0
        var epochChanged = false
        for batch in batches {
            let header = batch.header
            if header.maxTimestamp > maxTimestamp {
                maxTimestamp = header.maxTimestamp
                offsetOfMaxTimestamp = header.lastOffset
            }
            recordCount += Int(header.recordCount)
            if header.producerId >= 0 {
                producerState.append(
                    producerId: header.producerId, epoch: header.producerEpoch, firstSequence: header.baseSequence,
                    lastSequence: header.lastSequence, firstOffset: header.baseOffset, lastOffset: header.lastOffset,
                    timestamp: header.maxTimestamp, isTransactional: header.isTransactional, isControl: header.isControl)
            }
            if header.partitionLeaderEpoch >= 0,
                epochCache.assign(epoch: header.partitionLeaderEpoch, startOffset: header.baseOffset)
            {
                epochChanged = true
            }
        }
        if epochChanged { try writeEpochCheckpointLocked() }
        return LogAppendInfo(
            firstOffset: first.baseOffset, lastOffset: last.lastOffset, maxTimestamp: maxTimestamp,
            offsetOfMaxTimestamp: offsetOfMaxTimestamp, logAppendTime: logAppendTime, logStartOffset: _logStartOffset,
            logEndOffset: _logEndOffset, recordCount: recordCount, batchCount: batches.count,
            validBytes: records.readableBytes, isDuplicate: false, rolled: rolled)
    }

    /// Walks and checks the batches of an append, keeping only positions and headers (no slice of
    /// `records` outlives this call, so the caller can then write into `records` in place).
    private func analyze(_ records: ByteBuffer, config: LogConfig, leader: Bool) throws(LogStorageError) -> [AppendBatch] {
        var iterator = RecordBatchIterator(records, allowPartialTrailingBatch: false)
        var batches: [AppendBatch] = []
        var previousLastOffset: Int64 = -1
        do {
            while let batch = try iterator.next() {
                guard let index = iterator.lastBatchIndex, let header = BatchHeader(records, at: index) else {
                    throw KafkaProtocolError.corruptRecordBatch("batch shorter than its header")
                }
                if batch.sizeInBytes > config.maxMessageBytes {
                    throw LogStorageError.recordBatchTooLarge(
                        topicPartition, size: batch.sizeInBytes, max: config.maxMessageBytes, setting: "max.message.bytes")
                }
                try batch.validate()
                if leader {
                    guard header.recordCount > 0 else {
                        throw KafkaProtocolError.corruptRecordBatch("batch declares \(header.recordCount) records")
                    }
                    guard Int64(header.lastOffsetDelta) + 1 == Int64(header.recordCount) else {
                        throw KafkaProtocolError.corruptRecordBatch(
                            "lastOffsetDelta \(header.lastOffsetDelta) is inconsistent with the record count \(header.recordCount)")
                    }
                } else {
                    guard header.baseOffset > previousLastOffset, header.lastOffsetDelta >= 0 else {
                        throw LogStorageError.unexpectedAppendOffset(
                            topicPartition, firstOffset: header.baseOffset, logEndOffset: previousLastOffset + 1)
                    }
                    previousLastOffset = header.lastOffset
                }
                batches.append(AppendBatch(position: index - records.readerIndex, header: header))
            }
        } catch let error as LogStorageError {
            throw error
        } catch let error as KafkaProtocolError {
            throw .invalidRecords(topicPartition, reason: error.description)
        } catch {
            throw .invalidRecords(topicPartition, reason: "\(error)")
        }
        guard !batches.isEmpty else {
            throw .invalidRecords(topicPartition, reason: "no record batch in the records")
        }
        if records.readableBytes > config.segmentBytes {
            throw .recordBatchTooLarge(topicPartition, size: records.readableBytes, max: config.segmentBytes, setting: "segment.bytes")
        }
        return batches
    }

    /// Sets a batch's timestamp type to LogAppendTime and its max timestamp to `now`, in place, and
    /// recomputes its CRC (the one case where the broker changes bytes the CRC covers).
    private static func setLogAppendTime(_ now: Int64, in records: inout ByteBuffer, batch: inout AppendBatch) {
        typealias O = RecordBatch.Offset
        let index = records.readerIndex + batch.position
        var attributes = RecordBatchAttributes(rawValue: batch.header.attributes)
        attributes.timestampType = .logAppendTime
        records.setInteger(attributes.rawValue, at: index + O.attributes)
        records.setInteger(now, at: index + O.maxTimestamp)
        let crc = CRC32C.checksum(records, at: index + O.attributes, length: batch.header.sizeInBytes - O.attributes) ?? 0
        records.setInteger(crc, at: index + O.crc)
        batch.header.attributes = attributes.rawValue
        batch.header.maxTimestamp = now
    }

    /// Starts a new active segment at `newBaseOffset` (at least the log end offset), as Kafka's
    /// `roll`: the old segment's indexes are finished, a producer snapshot is taken at the new base
    /// offset, and the old segments are flushed by the next ``flushIfDue(now:)``.
    func rollLocked(newBaseOffset: Int64? = nil, now: Int64) throws(LogStorageError) {
        let base = max(newBaseOffset ?? _logEndOffset, _logEndOffset)
        let old = activeSegment
        if old.isEmpty {
            if old.baseOffset == base { return }
            // Replace an empty active segment (a follower jumping over a gap).
            segments.removeLast()
            for path in try old.renameForDeletion() { try FileSystem.removeFile(path) }
        } else {
            try old.finishIndexes()
            pendingRollFlushOffset = base
        }
        try writeProducerSnapshotLocked(at: base, sync: false)
        let segment = try LogSegment.create(directory: directory, baseOffset: base, config: _config, now: now)
        segments.append(segment)
        directoryNeedsSync = true
        _logEndOffset = max(_logEndOffset, base)
        logger.info(
            "rolled new log segment \(segment.name) for \(topicPartition) (previous segment \(old.name): \(old.size) bytes)")
    }

    /// Starts a new segment now (also what `segment.ms` does on the next append).
    public func roll(now: Int64 = LogClock.nowMillis()) throws(LogStorageError) {
        try lock.withLock { () throws(LogStorageError) in
            guard !closed else { throw .logClosed(topicPartition) }
            try rollLocked(now: now)
        }
    }

    // MARK: Read

    /// Reads whole batches for a Fetch, starting with the batch containing `offset`.
    ///
    /// - Parameters:
    ///   - maxBytes: the most bytes to return; batches are never split. With `minOneBatch` the
    ///     first batch is returned even if it is larger (Kafka's rule that a consumer always makes
    ///     progress); without it, a first batch larger than `maxBytes` yields nothing.
    ///   - maxOffset: an exclusive upper bound (the high watermark for consumers, the last stable
    ///     offset for `read_committed`); batches reaching it are not returned. Default: log end.
    /// - Returns: batches from one segment, read with one `pread`, plus the log's offsets. A read
    ///   at the log end offset returns nothing.
    /// - Throws: ``LogStorageError/offsetOutOfRange(_:requested:logStartOffset:logEndOffset:)`` below
    ///   the log start offset or above the log end offset.
    public func read(
        from offset: Int64, maxBytes: Int, upTo maxOffset: Int64? = nil, minOneBatch: Bool = true
    ) throws(LogStorageError) -> LogReadResult {
        var target = offset
        var attempts = 0
        while true {
            attempts += 1
            // Under the lock: bounds, the segment, the index position and the size bound.
            let segment: LogSegment
            let startPosition: Int64
            let limit: Int64
            let nextSegmentBase: Int64?
            let generation: UInt64
            let logStart: Int64
            let logEnd: Int64
            let highWatermark: Int64
            let upper: Int64
            do {
                lock.lock()
                defer { lock.unlock() }
                guard !closed else { throw .logClosed(topicPartition) }
                logStart = _logStartOffset
                logEnd = _logEndOffset
                highWatermark = _highWatermark
                generation = truncationGeneration
                guard offset >= logStart, offset <= logEnd else {
                    throw .offsetOutOfRange(topicPartition, requested: offset, logStartOffset: logStart, logEndOffset: logEnd)
                }
                upper = min(maxOffset ?? logEnd, logEnd)
                if target >= upper {
                    return emptyRead(offset, logStart, logEnd, highWatermark)
                }
                let i = segmentIndexLocked(containing: target)
                try loadIndexesLocked(i)
                segment = segments[i]
                startPosition = segment.offsetIndex.lookup(target).position
                limit = segment.size
                nextSegmentBase = i + 1 < segments.count ? segments[i + 1].baseOffset : nil
            }

            // Outside the lock: find the batch, then one pread (none if the scan's window has it all).
            // A truncation racing with this part can leave the bytes short or rewritten: any
            // failure or result is only trusted if the truncation generation did not change.
            var reader = BatchHeaderReader(file: segment.log, limit: limit)
            let found: (position: Int64, header: BatchHeader)?
            do throws(LogStorageError) {
                found = try segment.findBatch(atOrAfter: target, from: startPosition, reader: &reader)
            } catch {
                if !stillValid(generation) && attempts < 5 { continue }
                throw error
            }
            guard let (position, header) = found else {
                if let nextSegmentBase {
                    target = nextSegmentBase
                    continue
                }
                if !stillValid(generation) && attempts < 5 { continue }
                return emptyRead(offset, logStart, logEnd, highWatermark)
            }
            if header.lastOffset >= upper || (!minOneBatch && header.sizeInBytes > maxBytes) {
                if !stillValid(generation) && attempts < 5 { continue }
                return emptyRead(offset, logStart, logEnd, highWatermark)
            }
            let wanted = min(limit - position, Int64(max(maxBytes, header.sizeInBytes)))
            var buffer: ByteBuffer
            if let inWindow = reader.bytesInWindow(at: position, count: Int(wanted)) {
                buffer = inWindow
            } else {
                do throws(LogStorageError) {
                    buffer = try segment.log.read(count: Int(wanted), at: position, allocator: allocator)
                } catch {
                    if !stillValid(generation) && attempts < 5 { continue }
                    throw error
                }
            }
            // Keep whole batches below the upper bound (headers only, in memory).
            var used = 0
            var count = 0
            var records = 0
            var nextOffset = header.baseOffset
            let base = buffer.readerIndex
            while let batch = BatchHeader(buffer, at: base + used) {
                if batch.structuralProblem(available: Int64(buffer.readableBytes - used)) != nil { break }
                if batch.lastOffset >= upper { break }
                if count > 0 && batch.baseOffset < nextOffset { break }
                used += batch.sizeInBytes
                count += 1
                records += Int(batch.recordCount)
                nextOffset = batch.nextOffset
            }
            guard stillValid(generation) else {
                if attempts < 5 { continue }
                throw .corruptSegment(
                    path: segment.log.path, position: position, reason: "log kept being truncated during the read")
            }
            guard count > 0 else {
                throw .corruptSegment(
                    path: segment.log.path, position: position, reason: "no valid batch where the index scan found one")
            }
            buffer.moveWriterIndex(to: base + used)
            return LogReadResult(
                records: buffer, firstOffset: header.baseOffset, nextOffset: nextOffset, batchCount: count,
                recordCount: records, logStartOffset: logStart, logEndOffset: logEnd, highWatermark: highWatermark)
        }
    }

    private func emptyRead(_ offset: Int64, _ logStart: Int64, _ logEnd: Int64, _ highWatermark: Int64) -> LogReadResult {
        LogReadResult(
            records: allocator.buffer(capacity: 0), firstOffset: offset, nextOffset: offset, batchCount: 0,
            recordCount: 0, logStartOffset: logStart, logEndOffset: logEnd, highWatermark: highWatermark)
    }

    private func stillValid(_ generation: UInt64) -> Bool {
        lock.withLock { truncationGeneration == generation }
    }

    /// The index of the segment whose range contains `offset` (the last with base offset at or
    /// below it; the first segment for offsets below every base).
    func segmentIndexLocked(containing offset: Int64) -> Int {
        var low = 0
        var high = segments.count - 1
        var found = 0
        while low <= high {
            let mid = (low + high) / 2
            if segments[mid].baseOffset <= offset {
                found = mid
                low = mid + 1
            } else {
                high = mid - 1
            }
        }
        return found
    }

    /// Loads segment `i`'s indexes if they are not in memory; rebuilds them from the log (headers
    /// only) if the files cannot be trusted.
    func loadIndexesLocked(_ i: Int) throws(LogStorageError) {
        let segment = segments[i]
        guard !segment.indexesLoaded else { return }
        let next = i + 1 < segments.count ? segments[i + 1].baseOffset : nil
        do {
            try segment.ensureIndexesLoaded(nextSegmentBaseOffset: next)
        } catch let error as LogStorageError {
            if case .io = error { throw error }
            try rebuildIndexesLocked(segment, reason: error.description)
        } catch {
            try rebuildIndexesLocked(segment, reason: "\(error)")
        }
    }

    private func rebuildIndexesLocked(_ segment: LogSegment, reason: String) throws(LogStorageError) {
        logger.warning(
            "rebuilding indexes of \(segment.logPath) for \(topicPartition) from the log: \(reason)")
        let result = try segment.recover(indexIntervalBytes: _config.indexIntervalBytes, validateCRC: false, truncate: false)
        if segment !== activeSegment { try segment.finishIndexes() }
        if let problem = result.problem {
            logger.error(
                "\(segment.logPath) of \(topicPartition) has an invalid batch at position \(result.validBytes): \(problem); indexed up to there only")
        }
    }

    // MARK: ListOffsets

    /// The first record with a timestamp at or above `timestamp` at or after the log start offset
    /// (ListOffsets with a timestamp), or nil if there is none. Finds the segment by its largest
    /// timestamp, the batch through the time and offset indexes and a header scan, then decodes
    /// that one batch to find the record (falling back to the batch for codecs Petrel cannot read).
    public func offsetForTimestamp(_ timestamp: Int64) throws(LogStorageError) -> TimestampAndOffset? {
        try lock.withLock { () throws(LogStorageError) -> TimestampAndOffset? in
            guard !closed else { throw .logClosed(topicPartition) }
            let start = _logStartOffset
            for i in segments.indices {
                let segment = segments[i]
                if i + 1 < segments.count && segments[i + 1].baseOffset <= start { continue }
                guard segment.maxTimestampSoFar >= timestamp else { continue }
                try loadIndexesLocked(i)
                let from = max(segment.timeIndex.lookup(timestamp: timestamp)?.offset ?? segment.baseOffset, start)
                let position = segment.offsetIndex.lookup(from).position
                guard
                    let (found, header) = try segment.findBatch(
                        from: position, where: { $0.maxTimestamp >= timestamp && $0.lastOffset >= start })
                else { continue }
                let batch = try readBatchLocked(segment, at: found, header: header)
                let minimumOffset = max(start, header.baseOffset)
                if let batch, let records = try? batch.decodeRecords() {
                    if let record = records.first(where: { $0.timestamp >= timestamp && $0.offset >= minimumOffset }) {
                        return TimestampAndOffset(
                            timestamp: record.timestamp, offset: record.offset, leaderEpoch: epochOrNil(header))
                    }
                }
                return TimestampAndOffset(timestamp: header.maxTimestamp, offset: minimumOffset, leaderEpoch: epochOrNil(header))
            }
            return nil
        }
    }

    /// ListOffsets `MAX_TIMESTAMP` (-3): the record with the largest timestamp (the first one if
    /// several share it), or nil for a log without timestamps.
    public func maxTimestampAndOffset() throws(LogStorageError) -> TimestampAndOffset? {
        try lock.withLock { () throws(LogStorageError) -> TimestampAndOffset? in
            guard !closed else { throw .logClosed(topicPartition) }
            let start = _logStartOffset
            var best: Int? = nil
            for i in segments.indices {
                if i + 1 < segments.count && segments[i + 1].baseOffset <= start { continue }
                if segments[i].maxTimestampSoFar >= 0,
                    best.map({ segments[i].maxTimestampSoFar > segments[$0].maxTimestampSoFar }) ?? true
                {
                    best = i
                }
            }
            guard let i = best else { return nil }
            try loadIndexesLocked(i)
            let segment = segments[i]
            let maxTimestamp = segment.maxTimestampSoFar
            let position = segment.offsetIndex.lookup(segment.offsetOfMaxTimestampSoFar).position
            guard let (found, header) = try segment.findBatch(from: position, where: { $0.maxTimestamp == maxTimestamp }) else {
                return nil
            }
            if RecordBatchAttributes(rawValue: header.attributes).timestampType == .createTime,
                let batch = try readBatchLocked(segment, at: found, header: header),
                let records = try? batch.decodeRecords(),
                let record = records.first(where: { $0.timestamp == maxTimestamp })
            {
                return TimestampAndOffset(timestamp: maxTimestamp, offset: record.offset, leaderEpoch: epochOrNil(header))
            }
            return TimestampAndOffset(timestamp: maxTimestamp, offset: header.baseOffset, leaderEpoch: epochOrNil(header))
        }
    }

    private func epochOrNil(_ header: BatchHeader) -> Int32? {
        header.partitionLeaderEpoch >= 0 ? header.partitionLeaderEpoch : nil
    }

    private func readBatchLocked(_ segment: LogSegment, at position: Int64, header: BatchHeader) throws(LogStorageError) -> RecordBatch? {
        let buffer = try segment.log.read(count: header.sizeInBytes, at: position, allocator: allocator)
        return try? RecordBatch(buffer)
    }
}
