import KafkaProtocol

/// One appended batch of an idempotent producer, kept so that a retry can be recognised and
/// answered with the offsets it got the first time.
public struct ProducerBatchMetadata: Hashable, Sendable {
    public var firstSequence: Int32
    public var lastSequence: Int32
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// The batch's max timestamp.
    public var timestamp: Int64

    public init(firstSequence: Int32, lastSequence: Int32, firstOffset: Int64, lastOffset: Int64, timestamp: Int64) {
        self.firstSequence = firstSequence
        self.lastSequence = lastSequence
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.timestamp = timestamp
    }
}

/// What the log knows of one producer id.
public struct ProducerStateEntry: Hashable, Sendable {
    public var producerId: Int64
    public var producerEpoch: Int16
    /// The last appended batches, oldest first, at most ``ProducerStateManager/maxBatchesPerProducer``.
    public var batches: [ProducerBatchMetadata]
    /// The first offset of the producer's open transaction, if one is open.
    public var currentTxnFirstOffset: Int64?
    /// The coordinator epoch of the last transaction marker (-1 if none was recorded).
    public var coordinatorEpoch: Int32
    /// The max timestamp of the producer's last batch (for `producer.id.expiration.ms`).
    public var lastTimestamp: Int64

    public init(
        producerId: Int64, producerEpoch: Int16, batches: [ProducerBatchMetadata] = [],
        currentTxnFirstOffset: Int64? = nil, coordinatorEpoch: Int32 = -1, lastTimestamp: Int64 = -1
    ) {
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.batches = batches
        self.currentTxnFirstOffset = currentTxnFirstOffset
        self.coordinatorEpoch = coordinatorEpoch
        self.lastTimestamp = lastTimestamp
    }

    /// The last sequence number written in the current epoch, -1 if none.
    public var lastSequence: Int32 { batches.last?.lastSequence ?? -1 }
    /// The last offset written by this producer, -1 if unknown.
    public var lastOffset: Int64 { batches.last?.lastOffset ?? -1 }

    /// The earlier batch with exactly this sequence range, if the producer is retrying it.
    public func duplicate(firstSequence: Int32, lastSequence: Int32) -> ProducerBatchMetadata? {
        batches.first { $0.firstSequence == firstSequence && $0.lastSequence == lastSequence }
    }
}

/// The verdict on an idempotent batch before it is appended.
public enum SequenceCheck: Hashable, Sendable {
    /// In sequence (or the first batch of a new producer or epoch): append it.
    case new
    /// A retry of a batch already in the log: answer with its original offsets, append nothing.
    case duplicate(firstOffset: Int64, lastOffset: Int64)
    /// Not the next sequence; Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER.
    case outOfOrderSequence(expected: Int32)
    /// An epoch older than the producer's current one: the producer is fenced (INVALID_PRODUCER_EPOCH).
    case invalidProducerEpoch(current: Int16)
    /// No state for this producer and the batch does not start at sequence 0. Either the state
    /// expired (retention, `producer.id.expiration.ms`) or the producer is confused. Kafka since
    /// 2.5 (KIP-360) accepts such a batch, since expired state cannot be told apart; the log's
    /// `appendAsLeader` does too, and the broker may answer UNKNOWN_PRODUCER_ID instead.
    case unknownProducer
}

/// Kafka's `ProducerStateManager` as a plain value: per producer id, its epoch and last five
/// batches' sequence ranges and offsets, updated from batch headers only.
///
/// Rules (Kafka's `ProducerAppendInfo`):
/// - epoch below the current: fenced;
/// - epoch above the current (a bump): the sequence restarts, the first batch must have sequence 0;
/// - same epoch: a batch with the sequence range of one of the last five is a duplicate; otherwise
///   its first sequence must follow the last one (`last + 1`, wrapping from Int32.max to 0).
/// - unknown producer: sequence 0 starts it; anything else is ``SequenceCheck/unknownProducer``.
public struct ProducerStateManager: Hashable, Sendable {
    /// Kafka's `NUM_BATCHES_TO_RETAIN`: the last five batches of each producer are remembered
    /// (a producer has at most five requests in flight with idempotence).
    public static let maxBatchesPerProducer = 5

    public private(set) var producers: [Int64: ProducerStateEntry]

    public init(producers: [Int64: ProducerStateEntry] = [:]) {
        self.producers = producers
    }

    public func entry(for producerId: Int64) -> ProducerStateEntry? {
        producers[producerId]
    }

    public var isEmpty: Bool { producers.isEmpty }

    /// The verdict for a batch of `producerId` with `epoch` and sequences `firstSequence...lastSequence`.
    public func checkSequence(producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32) -> SequenceCheck {
        Self.checkSequence(entry: producers[producerId], epoch: epoch, firstSequence: firstSequence, lastSequence: lastSequence)
    }

    public static func checkSequence(
        entry: ProducerStateEntry?, epoch: Int16, firstSequence: Int32, lastSequence: Int32
    ) -> SequenceCheck {
        guard let entry else {
            return firstSequence == 0 ? .new : .unknownProducer
        }
        if epoch < entry.producerEpoch {
            return .invalidProducerEpoch(current: entry.producerEpoch)
        }
        if epoch != entry.producerEpoch {
            // A new epoch restarts the sequence at 0 (an entry without a known epoch accepts any).
            if firstSequence == 0 || entry.producerEpoch < 0 { return .new }
            return .outOfOrderSequence(expected: 0)
        }
        if let duplicate = entry.duplicate(firstSequence: firstSequence, lastSequence: lastSequence) {
            return .duplicate(firstOffset: duplicate.firstOffset, lastOffset: duplicate.lastOffset)
        }
        let last = entry.lastSequence
        if inSequence(last: last, next: firstSequence) { return .new }
        return .outOfOrderSequence(expected: nextSequence(after: last))
    }

    /// Whether `next` follows `last`, wrapping at Int32.max.
    public static func inSequence(last: Int32, next: Int32) -> Bool {
        Int64(next) == Int64(last) + 1 || (next == 0 && last == Int32.max)
    }

    public static func nextSequence(after last: Int32) -> Int32 {
        last == Int32.max ? 0 : last + 1
    }

    /// The sequence of the last record of a batch, wrapping past Int32.max as Kafka does; -1 when
    /// the batch has no sequence.
    public static func lastSequence(baseSequence: Int32, offsetDelta: Int32) -> Int32 {
        guard baseSequence >= 0 else { return -1 }
        let last = Int64(baseSequence) + Int64(offsetDelta)
        return last > Int64(Int32.max) ? Int32(last - Int64(Int32.max) - 1) : Int32(last)
    }

    /// Records an appended batch (a data batch or a transaction marker) of `producerId`.
    public mutating func append(
        producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32,
        firstOffset: Int64, lastOffset: Int64, timestamp: Int64,
        isTransactional: Bool = false, isControl: Bool = false
    ) {
        guard producerId >= 0 else { return }
        var entry = producers[producerId]
        Self.apply(
            to: &entry, producerId: producerId, epoch: epoch, firstSequence: firstSequence, lastSequence: lastSequence,
            firstOffset: firstOffset, lastOffset: lastOffset, timestamp: timestamp,
            isTransactional: isTransactional, isControl: isControl)
        producers[producerId] = entry
    }

    /// Applies an appended batch to one producer's entry (nil: not known yet).
    public static func apply(
        to entry: inout ProducerStateEntry?, producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32,
        firstOffset: Int64, lastOffset: Int64, timestamp: Int64, isTransactional: Bool, isControl: Bool
    ) {
        var updated = entry ?? ProducerStateEntry(producerId: producerId, producerEpoch: epoch)
        if updated.producerEpoch != epoch {
            updated.producerEpoch = epoch
            updated.batches.removeAll()
        }
        updated.lastTimestamp = max(updated.lastTimestamp, timestamp)
        if isControl {
            // A transaction marker ends the producer's open transaction.
            updated.currentTxnFirstOffset = nil
        } else {
            if firstSequence >= 0 {
                updated.batches.append(
                    ProducerBatchMetadata(
                        firstSequence: firstSequence, lastSequence: lastSequence, firstOffset: firstOffset,
                        lastOffset: lastOffset, timestamp: timestamp))
                if updated.batches.count > maxBatchesPerProducer {
                    updated.batches.removeFirst(updated.batches.count - maxBatchesPerProducer)
                }
            }
            if isTransactional && updated.currentTxnFirstOffset == nil {
                updated.currentTxnFirstOffset = firstOffset
            }
        }
        entry = updated
    }

    /// Records the coordinator epoch of a transaction marker (the broker decodes the marker).
    public mutating func setCoordinatorEpoch(_ coordinatorEpoch: Int32, for producerId: Int64) {
        producers[producerId]?.coordinatorEpoch = coordinatorEpoch
    }

    /// The first offset of the oldest open transaction: the log's first unstable offset, below which
    /// `read_committed` consumers may read (the broker caps it at the high watermark).
    public var firstUnstableOffset: Int64? {
        producers.values.compactMap(\.currentTxnFirstOffset).min()
    }

    /// Drops producers that last wrote before `now - expirationMs` and have no open transaction
    /// (Kafka's `producer.id.expiration.ms`). Returns how many were dropped.
    @discardableResult
    public mutating func removeExpired(now: Int64, expirationMs: Int64) -> Int {
        let expired = producers.values.filter {
            $0.currentTxnFirstOffset == nil && now - $0.lastTimestamp >= expirationMs
        }
        for entry in expired { producers[entry.producerId] = nil }
        return expired.count
    }

    public mutating func removeAll() {
        producers.removeAll()
    }

    // MARK: Snapshots

    /// The snapshot format version. Kafka's own format (version 1) keeps only each producer's last
    /// batch; Petrel's keeps all five, so that retries are recognised after a restart too.
    public static let snapshotVersion: Int16 = 100

    /// A snapshot file: `version int16, crc uint32 (CRC-32C of everything after it), count int32`,
    /// then per producer `producerId int64, epoch int16, coordinatorEpoch int32,
    /// currentTxnFirstOffset int64 (-1 none), lastTimestamp int64, batchCount int8` and per batch
    /// `firstSequence int32, lastSequence int32, firstOffset int64, lastOffset int64, timestamp int64`.
    public func snapshotBytes() -> [UInt8] {
        var body: [UInt8] = []
        appendBigEndian(Int32(producers.count), to: &body)
        for entry in producers.values.sorted(by: { $0.producerId < $1.producerId }) {
            appendBigEndian(entry.producerId, to: &body)
            appendBigEndian(entry.producerEpoch, to: &body)
            appendBigEndian(entry.coordinatorEpoch, to: &body)
            appendBigEndian(entry.currentTxnFirstOffset ?? -1, to: &body)
            appendBigEndian(entry.lastTimestamp, to: &body)
            appendBigEndian(Int8(entry.batches.count), to: &body)
            for batch in entry.batches {
                appendBigEndian(batch.firstSequence, to: &body)
                appendBigEndian(batch.lastSequence, to: &body)
                appendBigEndian(batch.firstOffset, to: &body)
                appendBigEndian(batch.lastOffset, to: &body)
                appendBigEndian(batch.timestamp, to: &body)
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.count + 6)
        appendBigEndian(Self.snapshotVersion, to: &bytes)
        appendBigEndian(CRC32C.checksum(body), to: &bytes)
        bytes.append(contentsOf: body)
        return bytes
    }

    /// Decodes a snapshot; throws a description of the problem for a corrupt one.
    public init(snapshot bytes: [UInt8]) throws(SnapshotCorruption) {
        guard bytes.count >= 10 else { throw SnapshotCorruption(reason: "\(bytes.count) bytes is too short") }
        var producers: [Int64: ProducerStateEntry] = [:]
        let result: SnapshotCorruption? = bytes.withUnsafeBytes { raw -> SnapshotCorruption? in
            let version: Int16 = readBigEndian(raw, at: 0)
            guard version == Self.snapshotVersion else {
                return SnapshotCorruption(reason: "unknown version \(version)")
            }
            let crc: UInt32 = readBigEndian(raw, at: 2)
            let computed = CRC32C.checksum(bytes: UnsafeRawBufferPointer(rebasing: raw[6...]))
            guard crc == computed else {
                return SnapshotCorruption(reason: "CRC mismatch (stored \(crc), computed \(computed))")
            }
            var at = 6
            func need(_ n: Int) -> Bool { at + n <= raw.count }
            guard need(4) else { return SnapshotCorruption(reason: "truncated count") }
            let count: Int32 = readBigEndian(raw, at: at)
            at += 4
            guard count >= 0 else { return SnapshotCorruption(reason: "negative count") }
            for _ in 0..<count {
                guard need(8 + 2 + 4 + 8 + 8 + 1) else { return SnapshotCorruption(reason: "truncated entry") }
                let pid: Int64 = readBigEndian(raw, at: at)
                let epoch: Int16 = readBigEndian(raw, at: at + 8)
                let coordinatorEpoch: Int32 = readBigEndian(raw, at: at + 10)
                let txnFirst: Int64 = readBigEndian(raw, at: at + 14)
                let lastTimestamp: Int64 = readBigEndian(raw, at: at + 22)
                let batchCount: Int8 = readBigEndian(raw, at: at + 30)
                at += 31
                guard batchCount >= 0, Int(batchCount) <= Self.maxBatchesPerProducer, need(Int(batchCount) * 32) else {
                    return SnapshotCorruption(reason: "invalid batch count \(batchCount)")
                }
                var batches: [ProducerBatchMetadata] = []
                for _ in 0..<Int(batchCount) {
                    batches.append(
                        ProducerBatchMetadata(
                            firstSequence: readBigEndian(raw, at: at), lastSequence: readBigEndian(raw, at: at + 4),
                            firstOffset: readBigEndian(raw, at: at + 8), lastOffset: readBigEndian(raw, at: at + 16),
                            timestamp: readBigEndian(raw, at: at + 24)))
                    at += 32
                }
                producers[pid] = ProducerStateEntry(
                    producerId: pid, producerEpoch: epoch, batches: batches,
                    currentTxnFirstOffset: txnFirst >= 0 ? txnFirst : nil, coordinatorEpoch: coordinatorEpoch,
                    lastTimestamp: lastTimestamp)
            }
            guard at == raw.count else { return SnapshotCorruption(reason: "\(raw.count - at) trailing bytes") }
            return nil
        }
        if let result { throw result }
        self.producers = producers
    }
}

/// Why a producer snapshot file could not be read.
public struct SnapshotCorruption: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { "corrupt producer snapshot: \(reason)" }
}
