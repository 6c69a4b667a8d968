import KafkaProtocol
import NIOCore

/// Records of one partition being collected into one record batch, then sent (maybe retried).
final class ProducerBatch: @unchecked Sendable {
    // Mutable state is only touched under the producer's lock (or by the one task completing the
    // batch after it left the accumulator): no runtime exclusivity checks on the hot path.
    let topicPartition: TopicPartition
    /// Monotonic nanoseconds at the first append.
    let createdAt: UInt64
    @exclusivity(unchecked) var writer: ProducerBatchWriter
    /// Records are still appended (it is its partition's open batch).
    @exclusivity(unchecked) var isOpen = true
    /// The built batch once closed (producer id, epoch and sequence are in it).
    @exclusivity(unchecked) var built: RecordBatch?
    /// Bytes charged against `buffer.memory`.
    @exclusivity(unchecked) var reservedBytes = 0
    /// Continuations of awaited sends: (index in batch, continuation). Fire-and-forget records add none.
    @exclusivity(unchecked) var waiters: [(Int32, CheckedContinuation<RecordMetadata, any Error>)] = []
    @exclusivity(unchecked) var baseSequence: Int32 = -1
    @exclusivity(unchecked) var attempts = 0
    var recordCount: Int { writer.recordCount }

    init(topicPartition: TopicPartition, createdAt: UInt64, compression: CompressionCodec, compressionLevel: Int, initialCapacity: Int) {
        self.topicPartition = topicPartition
        self.createdAt = createdAt
        self.writer = ProducerBatchWriter(compression: compression, compressionLevel: compressionLevel, initialCapacity: initialCapacity)
    }

    /// Stamps a built batch with a new producer id, epoch and base sequence (after an epoch bump)
    /// and recomputes its CRC; the records are unchanged.
    func restamp(producerId: Int64, producerEpoch: Int16, baseSequence: Int32) {
        guard var buffer = built?.buffer else { return }
        built = nil  // the buffer is then uniquely referenced: written in place
        typealias O = RecordBatch.Offset
        buffer.withUnsafeMutableReadableBytes { raw in
            raw.storeBytes(of: producerId.bigEndian, toByteOffset: O.producerId, as: Int64.self)
            raw.storeBytes(of: producerEpoch.bigEndian, toByteOffset: O.producerEpoch, as: Int16.self)
            raw.storeBytes(of: baseSequence.bigEndian, toByteOffset: O.baseSequence, as: Int32.self)
            let crc = CRC32C.checksum(bytes: UnsafeRawBufferPointer(rebasing: raw[O.attributes...]))
            raw.storeBytes(of: crc.bigEndian, toByteOffset: O.crc, as: UInt32.self)
        }
        self.baseSequence = baseSequence
        built = try? RecordBatch(buffer)
    }

    /// Completes every awaited record of the batch.
    func complete(baseOffset: Int64, timestamp: Int64) {
        for (index, c) in waiters {
            let offset = baseOffset >= 0 ? baseOffset + Int64(index) : -1
            c.resume(returning: RecordMetadata(topic: topicPartition.topic, partition: topicPartition.partition, offset: offset, timestamp: timestamp))
        }
        waiters.removeAll()
    }

    func fail(_ error: KafkaClientError) {
        for (_, c) in waiters { c.resume(throwing: error) }
        waiters.removeAll()
    }
}

/// Per-partition batching: which batch a record goes into, when batches are ready, what a send
/// may take, and sequence numbers. No I/O and no clock of its own (times are passed in), so it is
/// unit-tested directly.
struct RecordAccumulator {
    struct PartitionQueue {
        /// The batch records are appended to.
        var open: ProducerBatch?
        /// Closed batches waiting to be sent, oldest (lowest sequence) first.
        var ready: [ProducerBatch] = []
        var inFlight = 0
        /// Next sequence number (idempotence).
        var nextSequence: Int32 = 0
        /// Batches put back after a retriable error; while any is queued, the partition sends one
        /// batch at a time, in sequence order.
        var requeued = 0

        /// Moves the open batch to the ready list: no more appends.
        mutating func closeOpen() {
            guard let batch = open else { return }
            batch.isOpen = false
            ready.append(batch)
            open = nil
        }
    }

    let batchSize: Int
    let lingerNanos: UInt64
    let compression: CompressionCodec
    let compressionLevel: Int
    let idempotent: Bool
    let maxInFlightPerPartition: Int
    private(set) var queues: [TopicPartition: PartitionQueue] = [:]
    /// Bytes in batches not yet acknowledged.
    private(set) var bufferedBytes = 0
    /// Batches not yet completed (open, ready, in flight).
    private(set) var pendingBatches = 0
    /// While > 0, every open batch is ready at once (flush / close).
    var flushing = 0
    /// The batch the last record went to, while it is open: the next record for the same
    /// partition is appended without a dictionary lookup (``appendToLast(...)``).
    private(set) var lastBatch: ProducerBatch?

    init(batchSize: Int, lingerMs: Int, compression: CompressionCodec = .none, compressionLevel: Int = -1, idempotent: Bool = false, maxInFlightPerPartition: Int = 5) {
        self.batchSize = batchSize
        self.lingerNanos = UInt64(lingerMs) * 1_000_000
        self.compression = compression
        self.compressionLevel = compressionLevel
        self.idempotent = idempotent
        self.maxInFlightPerPartition = maxInFlightPerPartition
    }

    enum AppendOutcome {
        /// Appended; `newBatch`: it opened a batch (the sender should arm a linger timer);
        /// `closedBatch`: a full batch was closed and is ready to send.
        case appended(index: Int32, batch: ProducerBatch, newBatch: Bool, closedBatch: Bool)
    }

    /// Appends a record to the partition's open batch, closing it first when the record would
    /// overflow `batch.size`.
    mutating func append(
        _ tp: TopicPartition, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader], timestamp: Int64, size: Int, now: UInt64
    ) throws(KafkaClientError) -> AppendOutcome {
        // In place in the dictionary: one hash lookup, no copy of the queue.
        let outcome = try Self.append(
            to: &queues[tp, default: PartitionQueue()], tp, key: key, value: value, headers: headers, timestamp: timestamp,
            size: size, now: now, batchSize: batchSize, compression: compression, compressionLevel: compressionLevel)
        let (_, batch, newBatch, _) = outcome.parts
        if newBatch { pendingBatches += 1 }
        bufferedBytes += size
        lastBatch = batch.isOpen ? batch : nil
        return outcome
    }

    /// The fast path: appends to the batch the previous record went to, if it is still open and
    /// the record fits without reaching `batch.size`. Nil: use ``append(_:key:value:headers:timestamp:size:now:)``.
    @inline(__always)
    mutating func appendToLast(
        _ batch: ProducerBatch, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader], timestamp: Int64, size: Int
    ) throws(KafkaClientError) -> (index: Int32, closedBatch: Bool)? {
        guard batch.isOpen, batch.writer.uncompressedSizeInBytes + size < batchSize else { return nil }
        let index = Int32(truncatingIfNeeded: batch.writer.recordCount)
        try batch.writer.append(key: key, value: value, headers: headers, timestamp: timestamp)
        batch.reservedBytes += size
        bufferedBytes += size
        if batch.writer.uncompressedSizeInBytes >= batchSize {
            queues[batch.topicPartition]?.closeOpen()
            lastBatch = nil
            return (index, true)
        }
        return (index, false)
    }

    private static func append(
        to queue: inout PartitionQueue, _ tp: TopicPartition, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader],
        timestamp: Int64, size: Int, now: UInt64, batchSize: Int, compression: CompressionCodec, compressionLevel: Int
    ) throws(KafkaClientError) -> AppendOutcome {
        var closed = false
        if let open = queue.open, !open.writer.isEmpty, open.writer.uncompressedSizeInBytes + size > batchSize {
            queue.closeOpen()
            closed = true
        }
        var newBatch = false
        let batch: ProducerBatch
        if let open = queue.open {
            batch = open
        } else {
            batch = ProducerBatch(
                topicPartition: tp, createdAt: now, compression: compression, compressionLevel: compressionLevel,
                initialCapacity: min(batchSize, max(16384, size * 64)) + RecordBatch.headerSize)
            queue.open = batch
            newBatch = true
        }
        let index = Int32(batch.writer.recordCount)
        try batch.writer.append(key: key, value: value, headers: headers, timestamp: timestamp)
        batch.reservedBytes += size
        if batch.writer.uncompressedSizeInBytes >= batchSize {
            queue.closeOpen()
            closed = true
        }
        return .appended(index: index, batch: batch, newBatch: newBatch, closedBatch: closed)
    }

    /// Closes open batches whose linger time is over (or all, when flushing).
    mutating func closeExpired(now: UInt64) {
        for (tp, queue) in queues {
            guard let open = queue.open else { continue }
            if flushing > 0 || now >= open.createdAt + lingerNanos {
                queues[tp]?.closeOpen()
            }
        }
        if let last = lastBatch, !last.isOpen { lastBatch = nil }
    }

    /// Removes batches that waited longer than `delivery.timeout.ms` without ever being sent
    /// (no leader, say). Batches already sent are not expired here: with idempotence their
    /// sequence numbers are spoken for.
    mutating func expire(now: UInt64, deliveryNanos: UInt64) -> [ProducerBatch] {
        var out: [ProducerBatch] = []
        for (tp, var queue) in queues {
            let before = queue.ready.count
            queue.ready.removeAll { b in
                let old = b.built == nil && b.attempts == 0 && now > b.createdAt + deliveryNanos
                if old { out.append(b) }
                return old
            }
            if queue.ready.count != before { queues[tp] = queue }
        }
        for b in out {
            bufferedBytes -= b.reservedBytes
            pendingBatches -= 1
        }
        return out
    }

    /// When the next open batch's linger time ends, if any.
    func nextLingerDeadline() -> UInt64? {
        var best: UInt64?
        for queue in queues.values {
            if let open = queue.open {
                let d = open.createdAt + lingerNanos
                best = best.map { min($0, d) } ?? d
            }
        }
        return best
    }

    /// Takes at most one ready batch per partition whose leader is known and which may be sent
    /// now, grouped by leader, building (and sequencing) it if it was never sent.
    mutating func drain(
        leaderOf: (TopicPartition) -> Int32?, nodeMayTake: (Int32) -> Bool, producerId: Int64, producerEpoch: Int16,
        maxBytesPerNode: Int
    ) throws(KafkaClientError) -> [Int32: [ProducerBatch]] {
        var result: [Int32: [ProducerBatch]] = [:]
        var bytes: [Int32: Int] = [:]
        for (tp, var queue) in queues {
            guard let batch = queue.ready.first, let leader = leaderOf(tp), nodeMayTake(leader) else { continue }
            if queue.requeued > 0 && queue.inFlight > 0 { continue }
            if queue.inFlight >= maxInFlightPerPartition { continue }
            if batch.built == nil {
                if idempotent {
                    batch.baseSequence = queue.nextSequence
                    batch.writer.producerId = producerId
                    batch.writer.producerEpoch = producerEpoch
                    batch.writer.baseSequence = queue.nextSequence
                    queue.nextSequence = Self.sequence(after: queue.nextSequence, count: batch.recordCount)
                }
                batch.built = try batch.writer.build()
            }
            let size = batch.built?.sizeInBytes ?? 0
            if let used = bytes[leader], used + size > maxBytesPerNode { continue }
            bytes[leader, default: 0] += size
            queue.ready.removeFirst()
            if batch.attempts > 0 { queue.requeued = max(0, queue.requeued - 1) }
            batch.attempts += 1
            queue.inFlight += 1
            queues[tp] = queue
            result[leader, default: []].append(batch)
        }
        return result
    }

    /// Sequence numbers wrap from Int32.max to 0 (as Kafka's).
    static func sequence(after base: Int32, count: Int) -> Int32 {
        let next = Int64(base) + Int64(count)
        return Int32(truncatingIfNeeded: next > Int64(Int32.max) ? next - Int64(Int32.max) - 1 : next)
    }

    /// A batch is done (acknowledged or failed for good): frees its memory.
    mutating func finished(_ batch: ProducerBatch) {
        let tp = batch.topicPartition
        if var queue = queues[tp] {
            queue.inFlight = max(0, queue.inFlight - 1)
            if queue.open == nil && queue.ready.isEmpty && queue.inFlight == 0 && !idempotent {
                queues[tp] = nil
            } else {
                queues[tp] = queue
            }
        }
        bufferedBytes -= batch.reservedBytes
        pendingBatches -= 1
    }

    /// A sent batch failed retriably: back into its queue, in sequence order.
    mutating func requeue(_ batch: ProducerBatch) {
        var queue = queues[batch.topicPartition] ?? PartitionQueue()
        queue.inFlight = max(0, queue.inFlight - 1)
        let position = queue.ready.firstIndex { $0.built == nil || ($0.baseSequence > batch.baseSequence && batch.baseSequence >= 0) } ?? queue.ready.count
        queue.ready.insert(batch, at: batch.baseSequence >= 0 ? position : 0)
        queue.requeued += 1
        queues[batch.topicPartition] = queue
    }

    /// Whether an earlier batch of the partition is being retried (then a later batch's
    /// OUT_OF_ORDER_SEQUENCE_NUMBER is expected and retriable).
    func hasRetryPending(_ tp: TopicPartition) -> Bool {
        (queues[tp]?.requeued ?? 0) > 0
    }

    /// Batches in flight, over all partitions.
    var inFlightCount: Int { queues.values.reduce(0) { $0 + $1.inFlight } }

    /// After the producer epoch was bumped (KIP-360): every partition's sequence starts again at
    /// 0 under the new epoch, and batches already built (waiting for a retry) are stamped with
    /// the new epoch and renumbered in their order. Only while nothing is in flight.
    mutating func resetSequences(producerId: Int64, producerEpoch: Int16) {
        for (tp, var queue) in queues {
            queue.nextSequence = 0
            for batch in queue.ready where batch.built != nil {
                batch.restamp(producerId: producerId, producerEpoch: producerEpoch, baseSequence: queue.nextSequence)
                queue.nextSequence = Self.sequence(after: queue.nextSequence, count: batch.recordCount)
            }
            queues[tp] = queue
        }
    }

    /// Ready batches (not sent yet, or waiting for a retry), for tests and close.
    var readyCount: Int { queues.values.reduce(0) { $0 + $1.ready.count } }
    var isEmpty: Bool { pendingBatches == 0 }

    /// Removes every batch not in flight (on close after a failure).
    mutating func removeAllUnsent() -> [ProducerBatch] {
        var out: [ProducerBatch] = []
        for (tp, var queue) in queues {
            queue.closeOpen()
            out.append(contentsOf: queue.ready)
            queue.ready = []
            queue.requeued = 0
            queues[tp] = queue
        }
        lastBatch = nil
        for b in out {
            bufferedBytes -= b.reservedBytes
            pendingBatches -= 1
        }
        return out
    }
}

extension RecordAccumulator.AppendOutcome {
    var parts: (index: Int32, batch: ProducerBatch, newBatch: Bool, closedBatch: Bool) {
        switch self {
        case let .appended(index, batch, newBatch, closedBatch): return (index, batch, newBatch, closedBatch)
        }
    }
}
