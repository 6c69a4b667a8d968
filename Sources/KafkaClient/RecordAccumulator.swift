import KafkaProtocol
import NIOCore

/// Records of one partition being collected into one record batch, then sent (maybe retried).
final class ProducerBatch: @unchecked Sendable {
    let topicPartition: TopicPartition
    /// Monotonic nanoseconds at the first append.
    let createdAt: UInt64
    var builder: RecordBatchBuilder
    /// The built batch once closed (producer id, epoch and sequence are in it).
    var built: RecordBatch?
    /// Bytes charged against `buffer.memory`.
    var reservedBytes = 0
    /// Continuations of awaited sends: (index in batch, continuation). Fire-and-forget records add none.
    var waiters: [(Int32, CheckedContinuation<RecordMetadata, any Error>)] = []
    var baseSequence: Int32 = -1
    var attempts = 0
    var recordCount: Int { builder.recordCount == 0 ? Int(built?.recordCount ?? 0) : builder.recordCount }

    init(topicPartition: TopicPartition, createdAt: UInt64, compression: CompressionCodec, compressionLevel: Int, initialCapacity: Int) {
        self.topicPartition = topicPartition
        self.createdAt = createdAt
        self.builder = RecordBatchBuilder(compression: compression, compressionLevel: compressionLevel, initialCapacity: initialCapacity)
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
        if case let .appended(_, _, newBatch, _) = outcome, newBatch { pendingBatches += 1 }
        bufferedBytes += size
        return outcome
    }

    private static func append(
        to queue: inout PartitionQueue, _ tp: TopicPartition, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader],
        timestamp: Int64, size: Int, now: UInt64, batchSize: Int, compression: CompressionCodec, compressionLevel: Int
    ) throws(KafkaClientError) -> AppendOutcome {
        var closed = false
        if let open = queue.open, !open.builder.isEmpty, open.builder.uncompressedSizeInBytes + size > batchSize {
            queue.ready.append(open)
            queue.open = nil
            closed = true
        }
        var newBatch = false
        let batch: ProducerBatch
        if let open = queue.open {
            batch = open
        } else {
            batch = ProducerBatch(
                topicPartition: tp, createdAt: now, compression: compression, compressionLevel: compressionLevel,
                initialCapacity: min(batchSize, max(4096, size * 16)) + RecordBatch.headerSize)
            queue.open = batch
            newBatch = true
        }
        let index = Int32(batch.builder.recordCount)
        do {
            try batch.builder.append(key: key, value: value, headers: headers, timestamp: timestamp)
        } catch {
            throw .protocolViolation("cannot encode record: \(error)")
        }
        batch.reservedBytes += size
        if batch.builder.uncompressedSizeInBytes >= batchSize {
            queue.ready.append(batch)
            queue.open = nil
            closed = true
        }
        return .appended(index: index, batch: batch, newBatch: newBatch, closedBatch: closed)
    }

    /// Closes open batches whose linger time is over (or all, when flushing).
    mutating func closeExpired(now: UInt64) {
        for (tp, var queue) in queues {
            guard let open = queue.open else { continue }
            if flushing > 0 || now >= open.createdAt + lingerNanos {
                queue.ready.append(open)
                queue.open = nil
                queues[tp] = queue
            }
        }
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
                    batch.builder.producerId = producerId
                    batch.builder.producerEpoch = producerEpoch
                    batch.builder.baseSequence = queue.nextSequence
                    let next = Int64(queue.nextSequence) + Int64(batch.builder.recordCount)
                    queue.nextSequence = Int32(truncatingIfNeeded: next > Int64(Int32.max) ? next - Int64(Int32.max) - 1 : next)
                }
                do {
                    batch.built = try batch.builder.build()
                } catch {
                    throw .protocolViolation("cannot build batch: \(error)")
                }
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

    /// Ready batches (not sent yet, or waiting for a retry), for tests and close.
    var readyCount: Int { queues.values.reduce(0) { $0 + $1.ready.count } }
    var isEmpty: Bool { pendingBatches == 0 }

    /// Removes every batch not in flight (on close after a failure).
    mutating func removeAllUnsent() -> [ProducerBatch] {
        var out: [ProducerBatch] = []
        for (tp, var queue) in queues {
            if let open = queue.open { out.append(open) }
            out.append(contentsOf: queue.ready)
            queue.open = nil
            queue.ready = []
            queues[tp] = queue
        }
        for b in out {
            bufferedBytes -= b.reservedBytes
            pendingBatches -= 1
        }
        return out
    }
}
