import Foundation
import KafkaProtocol
import Logging
import NIOCore
import Testing

@testable import LogStorage

/// A fresh directory under the system temp dir, removed after `body` (also when it throws).
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let base = FileManager.default.temporaryDirectory.path
    let path = base + "/petrel-logstorage-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let base = FileManager.default.temporaryDirectory.path
    let path = base + "/petrel-logstorage-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// A log handler that keeps every message, so tests can check what recovery reported.
final class CapturingLogHandler: LogHandler, @unchecked Sendable {
    final class Storage: @unchecked Sendable {
        private let lock = NSLock()
        private var _messages: [(Logger.Level, String)] = []
        func append(_ level: Logger.Level, _ message: String) {
            lock.lock()
            _messages.append((level, message))
            lock.unlock()
        }
        var messages: [(Logger.Level, String)] {
            lock.lock()
            defer { lock.unlock() }
            return _messages
        }
        func contains(_ text: String, level: Logger.Level? = nil) -> Bool {
            messages.contains { (level == nil || $0.0 == level) && $0.1.contains(text) }
        }
    }

    let storage: Storage
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    init(storage: Storage) { self.storage = storage }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        storage.append(event.level, event.message.description)
        if ProcessInfo.processInfo.environment["PETREL_TEST_LOG"] != nil {
            print("[\(event.level)] \(event.message)")
        }
    }
}

func makeLogger() -> (Logger, CapturingLogHandler.Storage) {
    let storage = CapturingLogHandler.Storage()
    let logger = Logger(label: "petrel.logstorage.test") { _ in CapturingLogHandler(storage: storage) }
    return (logger, storage)
}

let testTopic = TopicPartition(topic: "orders", partition: 0)

/// One batch of `count` records with values of `valueSize` bytes and timestamps from `timestamp`.
func makeBatch(
    count: Int = 1, valueSize: Int = 10, timestamp: Int64 = 1_700_000_000_000, timestampStep: Int64 = 1,
    producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1, isTransactional: Bool = false,
    seed: UInt8 = 0
) -> ByteBuffer {
    var builder = RecordBatchBuilder(
        isTransactional: isTransactional, producerId: producerId, producerEpoch: producerEpoch, baseSequence: baseSequence)
    for i in 0..<count {
        let value = ByteBuffer(bytes: (0..<valueSize).map { UInt8(truncatingIfNeeded: $0 &+ i &+ Int(seed)) })
        try! builder.append(key: ByteBuffer(string: "k\(i)"), value: value, timestamp: timestamp + Int64(i) * timestampStep)
    }
    return try! builder.build().buffer
}

/// Several batches concatenated in one buffer (one Produce request's records).
func concatenate(_ buffers: [ByteBuffer]) -> ByteBuffer {
    var out = ByteBufferAllocator().buffer(capacity: buffers.reduce(0) { $0 + $1.readableBytes })
    for var b in buffers { out.writeBuffer(&b) }
    return out
}

func openLog(
    _ dir: String, config: LogConfig = LogConfig(), clean: Bool = true, recoveryPoint: Int64 = 0,
    logStartOffset: Int64? = nil, highWatermark: Int64? = nil, logger: Logger? = nil, now: Int64 = LogClock.nowMillis()
) throws -> PartitionLog {
    try PartitionLog.open(
        directory: dir + "/" + testTopic.directoryName, topicPartition: testTopic, config: config,
        recoveryPoint: recoveryPoint, logStartOffset: logStartOffset, highWatermark: highWatermark,
        hadCleanShutdown: clean, logger: logger ?? makeLogger().0, now: now)
}

/// All batches of the log read from its start, as (baseOffset, lastOffset, bytes) triples.
func readAll(_ log: PartitionLog, maxBytes: Int = 1 << 20) throws -> [RecordBatch] {
    var batches: [RecordBatch] = []
    var offset = log.logStartOffset
    let end = log.logEndOffset
    while offset < end {
        let result = try log.read(from: offset, maxBytes: maxBytes)
        if result.records.readableBytes == 0 { break }
        batches.append(contentsOf: try RecordBatch.batches(in: result.records))
        offset = result.nextOffset
    }
    return batches
}

func fileBytes(_ path: String) -> [UInt8] {
    (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
}

func writeFileBytes(_ path: String, _ bytes: [UInt8]) {
    try! Data(bytes).write(to: URL(fileURLWithPath: path))
}

func appendToFile(_ path: String, _ bytes: [UInt8]) {
    let handle = FileHandle(forWritingAtPath: path)!
    handle.seekToEndOfFile()
    handle.write(Data(bytes))
    try! handle.close()
}

func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

func listFiles(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}

func segmentName(_ offset: Int64, _ suffix: String) -> String {
    SegmentFiles.name(offset) + suffix
}
