import KafkaProtocol
import Logging
import NIOCore

/// What one maintenance pass did to a partition.
public struct LogMaintenanceResult: Hashable, Sendable {
    public var segmentsDeleted = 0
    public var flushed = false
    public var filesRemoved = 0
    public var producersExpired = 0
    /// Segments rewritten by log compaction (`cleanup.policy` compact).
    public var segmentsCleaned = 0

    public init() {}
}

extension PartitionLog {
    // MARK: Open and recovery

    /// Opens (or creates) a partition's log in `directory` (`<log.dir>/<topic>-<partition>`).
    ///
    /// After a crash (`hadCleanShutdown` false) every segment from the one holding
    /// `recoveryPoint` on is validated batch by batch (structure, CRC, increasing offsets); the
    /// first torn or corrupt batch and everything after it are cut, later segments deleted, and the
    /// indexes rebuilt. After a clean shutdown the indexes are trusted but checked, and rebuilt
    /// from the log if they are missing or inconsistent. Then the leader epoch cache is trimmed to
    /// the log, and the producer state is loaded from the latest snapshot at or below the log end
    /// offset and brought up to date from the batch headers after it.
    ///
    /// - Parameters:
    ///   - recoveryPoint: from `recovery-point-offset-checkpoint` (0 if absent: recover everything).
    ///   - logStartOffset: from `log-start-offset-checkpoint` (nil: the first segment's base offset).
    ///   - highWatermark: from `replication-offset-checkpoint`.
    public static func open(
        directory: String, topicPartition: TopicPartition, config: LogConfig,
        recoveryPoint: Int64 = 0, logStartOffset: Int64? = nil, highWatermark: Int64? = nil,
        hadCleanShutdown: Bool, logger: Logger, now: Int64 = LogClock.nowMillis()
    ) throws(LogStorageError) -> PartitionLog {
        try config.validate()
        try FileSystem.createDirectory(directory)
        let log = PartitionLog(directory: directory, topicPartition: topicPartition, config: config, logger: logger, now: now)
        try log.lock.withLock { () throws(LogStorageError) in
            try log.loadLocked(
                checkpointedRecoveryPoint: recoveryPoint, checkpointedLogStart: logStartOffset,
                checkpointedHighWatermark: highWatermark, hadCleanShutdown: hadCleanShutdown, now: now)
        }
        return log
    }

    private func loadLocked(
        checkpointedRecoveryPoint: Int64, checkpointedLogStart: Int64?, checkpointedHighWatermark: Int64?,
        hadCleanShutdown: Bool, now: Int64
    ) throws(LogStorageError) {
        let started = LogClock.monotonicMillis()
        var logOffsets: [Int64] = []
        var indexFiles: [(offset: Int64, path: String)] = []
        try completeInterruptedSwapsLocked()
        for name in try FileSystem.listDirectory(directory) {
            let path = directory + "/" + name
            if name.hasSuffix(SegmentFiles.deletedSuffix) {
                try FileSystem.removeFile(path)
                logger.info("removed \(path), left over from a segment deletion")
            } else if name.hasSuffix(".tmp") {
                try FileSystem.removeFile(path)
                logger.info("removed temporary file \(path), left over from an interrupted write")
            } else if name.hasSuffix(SegmentFiles.cleanedSuffix) {
                // The cleaner had not finished writing it: the original segment is intact.
                try FileSystem.removeFile(path)
                logger.warning("removed \(path), left over from an interrupted log compaction")
            } else if name.hasSuffix(SegmentFiles.swapSuffix) {
                logger.warning("ignoring \(path): a swap file not named after a segment. Move it away.")
            } else if let offset = SegmentFiles.offset(fromFileName: name, suffix: SegmentFiles.logSuffix) {
                logOffsets.append(offset)
            } else if let offset = SegmentFiles.offset(fromFileName: name, suffix: SegmentFiles.indexSuffix)
                ?? SegmentFiles.offset(fromFileName: name, suffix: SegmentFiles.timeIndexSuffix)
                ?? SegmentFiles.offset(fromFileName: name, suffix: SegmentFiles.txnIndexSuffix)
            {
                indexFiles.append((offset, path))
            }
        }
        let logSet = Set(logOffsets)
        for file in indexFiles where !logSet.contains(file.offset) {
            try FileSystem.removeFile(file.path)
            logger.info("removed \(file.path): an index without its log segment")
        }
        logOffsets.sort()
        for offset in logOffsets {
            segments.append(try LogSegment.open(directory: directory, baseOffset: offset, config: _config, now: now))
        }

        // The leader epoch checkpoint, read before recovery so that recovery can add to it.
        var epochFileEntries: [EpochEntry]? = nil
        do {
            epochFileEntries = try LeaderEpochCheckpointFile.read(path: epochCheckpointPath)
        } catch {
            logger.warning("\(error); rebuilding the leader epoch cache of \(topicPartition) from the log")
        }
        epochCache = LeaderEpochCache(entries: epochFileEntries ?? [])

        if segments.isEmpty {
            let base = max(checkpointedLogStart ?? 0, 0)
            segments = [try LogSegment.create(directory: directory, baseOffset: base, config: _config, now: now)]
            directoryNeedsSync = true
        }

        // Recovery: after a crash, everything from the segment holding the recovery point.
        let recoverFrom = hadCleanShutdown ? segments.count : segmentIndexLocked(containing: checkpointedRecoveryPoint)
        var recovered: [LogSegment] = []
        var i = 0
        while i < segments.count {
            let segment = segments[i]
            let isLast = i == segments.count - 1
            if i >= recoverFrom {
                let result = try recoverSegmentLocked(segment, why: "no clean shutdown")
                recovered.append(segment)
                if result.truncatedBytes > 0 && !isLast {
                    for later in segments[(i + 1)...] {
                        logger.warning(
                            "recovered \(topicPartition): deleting segment \(later.logPath) (\(later.size) bytes), which follows the corrupt batch in \(segment.name)")
                        for path in try later.renameForDeletion() { try FileSystem.removeFile(path) }
                    }
                    segments.removeSubrange((i + 1)...)
                    directoryNeedsSync = true
                }
            } else if isLast {
                do {
                    try segment.loadAsActive()
                } catch {
                    _ = try recoverSegmentLocked(segment, why: "its indexes failed the check (\(error))")
                    recovered.append(segment)
                }
            } else {
                do {
                    try segment.loadLargestTimestamp(nextSegmentBaseOffset: segments[i + 1].baseOffset)
                } catch {
                    _ = try recoverSegmentLocked(segment, why: "its indexes failed the check (\(error))")
                    recovered.append(segment)
                }
            }
            i += 1
        }

        let active = activeSegment
        _logEndOffset = max(active.baseOffset, active.nextOffset ?? active.baseOffset)

        var logStart = max(checkpointedLogStart ?? segments[0].baseOffset, segments[0].baseOffset)
        if logStart > _logEndOffset {
            logger.warning(
                "\(topicPartition): the log start offset \(logStart) from the checkpoint is beyond the log end offset \(_logEndOffset) (records lost in a crash?); starting the log empty at \(logStart)")
            for segment in segments {
                for path in try segment.renameForDeletion() { try FileSystem.removeFile(path) }
            }
            segments = [try LogSegment.create(directory: directory, baseOffset: logStart, config: _config, now: now)]
            directoryNeedsSync = true
            recovered = []
            epochCache.clear()
            _logEndOffset = logStart
        }
        logStart = min(logStart, _logEndOffset)
        _logStartOffset = logStart

        if !recovered.isEmpty {
            // What recovery kept must be durable before the recovery point moves past it.
            for segment in recovered where segments.contains(where: { $0 === segment }) {
                let (size, indexes) = try segment.prepareFlush()
                try segment.syncToDisk(indexes: indexes)
                segment.flushedSize = size
            }
            try FileSystem.syncDirectory(directory)
            directoryNeedsSync = false
            _recoveryPoint = _logEndOffset
        } else {
            _recoveryPoint = hadCleanShutdown ? _logEndOffset : min(max(checkpointedRecoveryPoint, 0), _logEndOffset)
        }

        // Leader epochs: rebuild from the headers if the file was missing or corrupt.
        if epochFileEntries == nil && _logEndOffset > segments[0].baseOffset {
            epochCache.clear()
            for segment in segments {
                do {
                    try segment.forEachBatch { _, header in
                        if header.partitionLeaderEpoch >= 0, header.partitionLeaderEpoch > (epochCache.latestEpoch ?? -1) {
                            epochCache.assign(epoch: header.partitionLeaderEpoch, startOffset: header.baseOffset)
                        }
                    }
                } catch {
                    logger.error("\(error); the leader epoch cache of \(topicPartition) may be incomplete")
                }
            }
            logger.info("rebuilt the leader epoch cache of \(topicPartition) from the log: \(epochCache.entries)")
        }
        epochCache.truncateFromEnd(endOffset: _logEndOffset)
        epochCache.truncateFromStart(startOffset: _logStartOffset)
        if epochFileEntries != epochCache.entries {
            try writeEpochCheckpointLocked()
        }

        try rebuildProducerStateLocked()

        _highWatermark = min(max(checkpointedHighWatermark ?? _logStartOffset, _logStartOffset), _logEndOffset)
        lastFlushTime = now
        let elapsed = LogClock.monotonicMillis() - started
        logger.info(
            "loaded \(topicPartition) from \(directory): \(segments.count) segment(s), log start offset \(_logStartOffset), log end offset \(_logEndOffset), recovery point \(_recoveryPoint), \(recovered.count) segment(s) recovered, in \(elapsed) ms\(hadCleanShutdown ? "" : " (no clean shutdown)")"
        )
    }

    /// Finishes the swaps of a log compaction interrupted by a crash, as Kafka does: the cleaner
    /// renames a complete, fsynced `<base>.log.cleaned` (and its indexes) to `.swap` before
    /// renaming over the live files, so a `<base>.log.swap` is a complete cleaned segment and
    /// replaces `<base>.log`. Index files of a segment with any `.swap` file may belong to either
    /// version, so they are removed and rebuilt from the log when the segment is loaded.
    private func completeInterruptedSwapsLocked() throws(LogStorageError) {
        for name in try FileSystem.listDirectory(directory).sorted() where name.hasSuffix(SegmentFiles.swapSuffix) {
            let path = directory + "/" + name
            let live = String(name.dropLast(SegmentFiles.swapSuffix.count))
            let offset: Int64
            if let logOffset = SegmentFiles.offset(fromFileName: live, suffix: SegmentFiles.logSuffix) {
                try FileSystem.rename(path, to: directory + "/" + live)
                logger.warning("completed the interrupted log compaction swap of \(path)")
                offset = logOffset
            } else if let indexOffset = SegmentFiles.offset(fromFileName: live, suffix: SegmentFiles.indexSuffix)
                ?? SegmentFiles.offset(fromFileName: live, suffix: SegmentFiles.timeIndexSuffix)
            {
                try FileSystem.removeFile(path)
                offset = indexOffset
            } else {
                continue
            }
            let stem = directory + "/" + SegmentFiles.name(offset)
            for suffix in [SegmentFiles.indexSuffix, SegmentFiles.timeIndexSuffix] {
                try FileSystem.removeFile(stem + suffix)
                try FileSystem.removeFile(stem + suffix + SegmentFiles.swapSuffix)
            }
            directoryNeedsSync = true
        }
    }

    /// Validates a segment batch by batch, cuts a torn or corrupt tail, rebuilds its indexes, and
    /// feeds the leader epochs of its batches to the epoch cache. Logs what it did.
    @discardableResult
    private func recoverSegmentLocked(_ segment: LogSegment, why: String) throws(LogStorageError) -> SegmentScanResult {
        logger.info("recovering segment \(segment.logPath) of \(topicPartition): \(why)")
        // As Kafka's `LogSegment.recover`: only epochs newer than the cache's latest are added
        // (entries beyond the recovered end are removed afterwards).
        let result = try segment.recover(indexIntervalBytes: _config.indexIntervalBytes) { header in
            if header.partitionLeaderEpoch >= 0, header.partitionLeaderEpoch > (epochCache.latestEpoch ?? -1) {
                epochCache.assign(epoch: header.partitionLeaderEpoch, startOffset: header.baseOffset)
            }
        }
        // An inactive segment's time index ends with its largest timestamp, as written at roll.
        if segment !== activeSegment { try segment.finishIndexes() }
        if result.truncatedBytes > 0 {
            logger.warning(
                "recovered \(topicPartition): truncated \(result.truncatedBytes) bytes of \(result.problem ?? "invalid data") at position \(result.validBytes) in \(segment.logPath); kept \(result.batchCount) valid batch(es), next offset \(result.nextOffset)"
            )
        } else {
            logger.info(
                "recovered \(topicPartition): \(segment.name) holds \(result.batchCount) valid batch(es) (\(result.validBytes) bytes), next offset \(result.nextOffset); indexes rebuilt"
            )
        }
        return result
    }

    // MARK: Producer state and snapshots

    func snapshotPath(_ offset: Int64) -> String {
        directory + "/" + SegmentFiles.name(offset) + SegmentFiles.snapshotSuffix
    }

    func snapshotOffsetsLocked() throws(LogStorageError) -> [Int64] {
        try FileSystem.listDirectory(directory)
            .compactMap { SegmentFiles.offset(fromFileName: $0, suffix: SegmentFiles.snapshotSuffix) }
            .sorted()
    }

    /// Writes `<offset>.snapshot` with the producer state (all batches below `offset` applied).
    func writeProducerSnapshotLocked(at offset: Int64, sync: Bool) throws(LogStorageError) {
        try FileSystem.writeFileAtomically(snapshotPath(offset), bytes: producerState.snapshotBytes(), sync: sync)
    }

    func deleteSnapshotsLocked(where predicate: (Int64) -> Bool) throws(LogStorageError) {
        for offset in try snapshotOffsetsLocked() where predicate(offset) {
            try FileSystem.removeFile(snapshotPath(offset))
        }
    }

    /// Loads the latest valid snapshot at or below the log end offset (deleting later and corrupt
    /// ones) and replays the batch headers after it.
    func rebuildProducerStateLocked() throws(LogStorageError) {
        var loaded: ProducerStateManager? = nil
        var from = _logStartOffset
        let offsets = try snapshotOffsetsLocked()
        for offset in offsets where offset > _logEndOffset {
            try FileSystem.removeFile(snapshotPath(offset))
            logger.info("removed producer snapshot \(snapshotPath(offset)): beyond the log end offset \(_logEndOffset)")
        }
        for offset in offsets.reversed() where offset <= _logEndOffset {
            let path = snapshotPath(offset)
            guard let bytes = try FileSystem.readFile(path) else { continue }
            do {
                loaded = try ProducerStateManager(snapshot: bytes)
                from = offset
                break
            } catch {
                logger.warning("ignoring producer snapshot \(path): \(error)")
                try FileSystem.removeFile(path)
            }
        }
        producerState = loaded ?? ProducerStateManager()
        let replayed = try replayProducerStateLocked(from: max(from, segments[0].baseOffset))
        if replayed > 0 {
            logger.info(
                "rebuilt producer state of \(topicPartition): \(loaded == nil ? "no snapshot" : "snapshot at \(from)"), \(replayed) batch header(s) replayed, \(producerState.producers.count) producer(s)"
            )
        }
    }

    /// Applies the headers of the batches starting at or after `offset` to the producer state.
    private func replayProducerStateLocked(from offset: Int64) throws(LogStorageError) -> Int {
        guard offset < _logEndOffset else { return 0 }
        var count = 0
        let first = segmentIndexLocked(containing: offset)
        try loadIndexesLocked(first)
        for i in first..<segments.count {
            let segment = segments[i]
            let start = i == first ? segment.offsetIndex.lookup(offset).position : 0
            do {
                try segment.forEachBatch(from: start) { _, header in
                    guard header.baseOffset >= offset, header.producerId >= 0 else { return }
                    producerState.append(
                        producerId: header.producerId, epoch: header.producerEpoch, firstSequence: header.baseSequence,
                        lastSequence: header.lastSequence, firstOffset: header.baseOffset, lastOffset: header.lastOffset,
                        timestamp: header.maxTimestamp, isTransactional: header.isTransactional, isControl: header.isControl)
                    count += 1
                }
            } catch {
                logger.error("\(error); producer state of \(topicPartition) rebuilt up to there only")
                break
            }
        }
        return count
    }

    /// Drops idempotent producers idle longer than `producer.id.expiration.ms`.
    @discardableResult
    public func expireProducers(now: Int64 = LogClock.nowMillis()) -> Int {
        lock.withLock { producerState.removeExpired(now: now, expirationMs: _config.producerIdExpirationMs) }
    }

    // MARK: Flush

    /// fsyncs everything below `offset` (default: the log end offset) — `fdatasync` of each dirty
    /// segment's `.log`, its index files, the directory if files were created — then advances the
    /// recovery point. The syncs run outside the partition lock, so appends and reads continue.
    public func flush(upTo offset: Int64? = nil, now: Int64 = LogClock.nowMillis()) throws(LogStorageError) {
        try flushLock.withLock { () throws(LogStorageError) in
            var targets: [(segment: LogSegment, size: Int64, indexes: Bool)] = []
            var syncDirectory = false
            var generation: UInt64 = 0
            var target: Int64 = 0
            let proceed = try lock.withLock { () throws(LogStorageError) -> Bool in
                guard !closed else { return false }
                target = min(offset ?? _logEndOffset, _logEndOffset)
                generation = truncationGeneration
                for segment in segments where segment.baseOffset < target && segment.isDirty {
                    let (size, indexes) = try segment.prepareFlush()
                    targets.append((segment, size, indexes))
                }
                syncDirectory = directoryNeedsSync
                directoryNeedsSync = false
                return true
            }
            guard proceed else { return }
            do throws(LogStorageError) {
                for target in targets { try target.segment.syncToDisk(indexes: target.indexes) }
                if syncDirectory { try FileSystem.syncDirectory(directory) }
            } catch {
                lock.withLock { if syncDirectory { directoryNeedsSync = true } }
                logger.error("flush of \(topicPartition) failed: \(error)")
                throw error
            }
            lock.withLock {
                for target in targets {
                    target.segment.flushedSize = max(target.segment.flushedSize, min(target.size, target.segment.size))
                }
                if truncationGeneration == generation {
                    _recoveryPoint = max(_recoveryPoint, target)
                }
                _recoveryPoint = min(_recoveryPoint, _logEndOffset)
                lastFlushTime = now
                if let pending = pendingRollFlushOffset, pending <= _recoveryPoint { pendingRollFlushOffset = nil }
            }
        }
    }

    /// The broker's flush timer: flushes when `flush.ms` has passed since the last flush (never
    /// with Kafka's default), and flushes the segments before a recent roll (as Kafka does right
    /// after each roll, so that only the active segment needs recovery after a crash).
    @discardableResult
    public func flushIfDue(now: Int64 = LogClock.nowMillis()) throws(LogStorageError) -> Bool {
        let (timeDue, rollOffset) = lock.withLock { () -> (Bool, Int64?) in
            guard !closed else { return (false, nil) }
            let interval = _config.flushIntervalMs
            let due = interval != Int64.max && now - lastFlushTime >= interval && _logEndOffset > _recoveryPoint
            return (due, pendingRollFlushOffset)
        }
        if timeDue {
            try flush(now: now)
            return true
        }
        if let rollOffset {
            try flush(upTo: rollOffset, now: now)
            return true
        }
        return false
    }

    // MARK: Retention and DeleteRecords

    /// Deletes old segments (never the active one, never one the high watermark has not passed):
    /// those wholly below the log start offset, those whose largest timestamp is older than
    /// `retention.ms`, and the oldest while the log is larger than `retention.bytes`. The log start
    /// offset moves to the first remaining segment. Returns how many segments were deleted.
    @discardableResult
    public func deleteOldSegments(now: Int64 = LogClock.nowMillis()) throws(LogStorageError) -> Int {
        try lock.withLock { () throws(LogStorageError) -> Int in
            guard !closed else { return 0 }
            var deleted = try deletePrefixLocked(reason: "below the log start offset", now: now) { _, nextBase in
                nextBase <= _logStartOffset
            }
            // Time and size retention only for `cleanup.policy` delete (or compact,delete).
            let retains = _config.cleanupPolicy.contains(.delete)
            let retentionMs = _config.retentionMs
            if retains && retentionMs >= 0 {
                deleted += try deletePrefixLocked(reason: "retention.ms \(retentionMs) breached", now: now) { segment, _ in
                    now - segment.largestTimestamp > retentionMs
                }
            }
            let retentionBytes = _config.retentionBytes
            if retains && retentionBytes >= 0 {
                var excess = segments.reduce(0) { $0 + $1.size } - retentionBytes
                deleted += try deletePrefixLocked(reason: "retention.bytes \(retentionBytes) breached", now: now) { segment, _ in
                    guard excess - segment.size >= 0 else { return false }
                    excess -= segment.size
                    return true
                }
            }
            return deleted
        }
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the high watermark) and
    /// deletes the segments wholly below it. Returns the new log start offset.
    @discardableResult
    public func deleteRecords(before offset: Int64, now: Int64 = LogClock.nowMillis()) throws(LogStorageError) -> Int64 {
        try lock.withLock { () throws(LogStorageError) -> Int64 in
            guard !closed else { throw .logClosed(topicPartition) }
            guard offset <= _highWatermark else {
                throw .offsetBeyondHighWatermark(topicPartition, requested: offset, highWatermark: _highWatermark)
            }
            guard offset >= 0 else {
                throw .offsetOutOfRange(topicPartition, requested: offset, logStartOffset: _logStartOffset, logEndOffset: _logEndOffset)
            }
            if offset > _logStartOffset {
                try incrementLogStartOffsetLocked(to: offset)
                logger.info("\(topicPartition): log start offset raised to \(offset) (DeleteRecords)")
            }
            _ = try deletePrefixLocked(reason: "below the log start offset after DeleteRecords", now: now) { _, nextBase in
                nextBase <= _logStartOffset
            }
            return _logStartOffset
        }
    }

    private func incrementLogStartOffsetLocked(to offset: Int64) throws(LogStorageError) {
        guard offset > _logStartOffset else { return }
        _logStartOffset = offset
        if _highWatermark < offset { _highWatermark = offset }
        if _recoveryPoint < offset { _recoveryPoint = offset }
        if epochCache.truncateFromStart(startOffset: offset) { try writeEpochCheckpointLocked() }
    }

    /// Deletes segments from the front while `predicate(segment, nextSegmentBaseOffset)` holds,
    /// keeping the active segment and anything the high watermark has not passed.
    private func deletePrefixLocked(
        reason: String, now: Int64, _ predicate: (LogSegment, Int64) -> Bool
    ) throws(LogStorageError) -> Int {
        var count = 0
        while segments.count > 1 {
            let segment = segments[0]
            let nextBase = segments[1].baseOffset
            guard _highWatermark >= nextBase, predicate(segment, nextBase) else { break }
            segments.removeFirst()
            try deleteSegmentLocked(segment, reason: reason, now: now)
            count += 1
        }
        if count > 0 {
            try incrementLogStartOffsetLocked(to: segments[0].baseOffset)
            let firstBase = segments[0].baseOffset
            try deleteSnapshotsLocked(where: { $0 < firstBase })
        }
        return count
    }

    /// Renames a segment's files `*.deleted`; they are removed after `file.delete.delay.ms`.
    private func deleteSegmentLocked(_ segment: LogSegment, reason: String, now: Int64) throws(LogStorageError) {
        let paths = try segment.renameForDeletion()
        directoryNeedsSync = true
        logger.info(
            "deleting segment \(segment.name) of \(topicPartition) (\(reason)): base offset \(segment.baseOffset), \(segment.size) bytes, largest timestamp \(segment.maxTimestampSoFar)"
        )
        if _config.fileDeleteDelayMs <= 0 {
            for path in paths { try FileSystem.removeFile(path) }
        } else {
            pendingDeletions.append((now + _config.fileDeleteDelayMs, paths))
        }
    }

    /// Removes `*.deleted` files whose delay has passed. Returns how many were removed.
    @discardableResult
    public func removeDeletedFiles(now: Int64 = LogClock.nowMillis(), force: Bool = false) throws(LogStorageError) -> Int {
        try lock.withLock { () throws(LogStorageError) -> Int in
            var removed = 0
            var keep: [(due: Int64, paths: [String])] = []
            for pending in pendingDeletions {
                if force || pending.due <= now {
                    for path in pending.paths { try FileSystem.removeFile(path) }
                    removed += pending.paths.count
                } else {
                    keep.append(pending)
                }
            }
            pendingDeletions = keep
            return removed
        }
    }

    /// One maintenance pass: retention, flush if due, removal of deleted files, producer expiry.
    public func runMaintenance(now: Int64 = LogClock.nowMillis()) throws(LogStorageError) -> LogMaintenanceResult {
        var result = LogMaintenanceResult()
        result.segmentsDeleted = try deleteOldSegments(now: now)
        result.flushed = try flushIfDue(now: now)
        result.filesRemoved = try removeDeletedFiles(now: now)
        result.producersExpired = expireProducers(now: now)
        return result
    }

    // MARK: Truncation

    /// Removes every batch at or after `offset` (a follower cutting a divergent tail): later
    /// segments are deleted, the segment holding `offset` is cut at the start of the batch holding
    /// it, the indexes, leader epoch cache and producer state follow. Returns false if there was
    /// nothing to remove. The log end offset becomes the end of the last remaining batch (at most
    /// `offset`).
    @discardableResult
    public func truncate(to offset: Int64, now: Int64 = LogClock.nowMillis()) throws(LogStorageError) -> Bool {
        try lock.withLock { () throws(LogStorageError) -> Bool in
            guard !closed else { throw .logClosed(topicPartition) }
            guard offset >= 0 else {
                throw .offsetOutOfRange(topicPartition, requested: offset, logStartOffset: _logStartOffset, logEndOffset: _logEndOffset)
            }
            guard offset < _logEndOffset else { return false }
            truncationGeneration &+= 1
            let originalEnd = _logEndOffset
            if offset < segments[0].baseOffset {
                try truncateFullyLocked(startAt: offset, now: now)
                return true
            }
            var removed: Int64 = 0
            while segments.count > 1 && activeSegment.baseOffset > offset {
                let segment = segments.removeLast()
                removed += segment.size
                try deleteSegmentLocked(segment, reason: "truncation to offset \(offset)", now: now)
            }
            try loadIndexesLocked(segments.count - 1)
            let active = activeSegment
            removed += try active.truncate(to: offset)
            _logEndOffset = max(active.baseOffset, active.nextOffset ?? active.baseOffset)
            _recoveryPoint = min(_recoveryPoint, _logEndOffset)
            _highWatermark = min(_highWatermark, _logEndOffset)
            _logStartOffset = min(_logStartOffset, _logEndOffset)
            if let pending = pendingRollFlushOffset, pending > _logEndOffset { pendingRollFlushOffset = nil }
            if epochCache.truncateFromEnd(endOffset: _logEndOffset) { try writeEpochCheckpointLocked() }
            try rebuildProducerStateLocked()
            logger.info(
                "truncated \(topicPartition) to offset \(offset): log end offset \(originalEnd) -> \(_logEndOffset), \(removed) bytes removed"
            )
            return true
        }
    }

    /// Deletes every segment and starts the log empty at `offset` (log start = log end = offset),
    /// as a follower does when the leader's log starts after its own end.
    public func truncateFullyAndStartAt(_ offset: Int64, now: Int64 = LogClock.nowMillis()) throws(LogStorageError) {
        try lock.withLock { () throws(LogStorageError) in
            guard !closed else { throw .logClosed(topicPartition) }
            truncationGeneration &+= 1
            try truncateFullyLocked(startAt: offset, now: now)
        }
    }

    private func truncateFullyLocked(startAt offset: Int64, now: Int64) throws(LogStorageError) {
        let originalEnd = _logEndOffset
        for segment in segments {
            try deleteSegmentLocked(segment, reason: "full truncation", now: now)
        }
        segments = [try LogSegment.create(directory: directory, baseOffset: offset, config: _config, now: now)]
        directoryNeedsSync = true
        _logEndOffset = offset
        _logStartOffset = offset
        _recoveryPoint = offset
        _highWatermark = offset
        pendingRollFlushOffset = nil
        epochCache.clear()
        try writeEpochCheckpointLocked()
        producerState.removeAll()
        try deleteSnapshotsLocked(where: { _ in true })
        logger.info("truncated \(topicPartition) fully (log end offset was \(originalEnd)); the log now starts at \(offset)")
    }

    // MARK: Close

    /// Flushes everything, writes the indexes and a producer snapshot at the log end offset, and
    /// closes the log for appends and reads. Idempotent.
    public func close() throws(LogStorageError) {
        try flushLock.withLock { () throws(LogStorageError) in
            try lock.withLock { () throws(LogStorageError) in
                guard !closed else { return }
                closed = true
                try activeSegment.finishIndexes()
                for segment in segments where segment.isDirty {
                    let (size, indexes) = try segment.prepareFlush()
                    try segment.syncToDisk(indexes: indexes)
                    segment.flushedSize = size
                }
                try writeProducerSnapshotLocked(at: _logEndOffset, sync: true)
                if directoryNeedsSync {
                    try FileSystem.syncDirectory(directory)
                    directoryNeedsSync = false
                }
                _recoveryPoint = _logEndOffset
                pendingRollFlushOffset = nil
                for pending in pendingDeletions {
                    for path in pending.paths { try FileSystem.removeFile(path) }
                }
                pendingDeletions.removeAll()
                logger.debug("closed \(topicPartition) at log end offset \(_logEndOffset)")
            }
        }
    }

    /// Closes without flushing (the partition is being deleted).
    func markDeleted() {
        lock.withLock { closed = true }
    }
}
