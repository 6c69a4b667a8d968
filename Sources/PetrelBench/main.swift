// petrel-bench: micro-benchmarks of the wire codec.
//
//   swift run -c release petrel-bench crc        CRC-32C throughput, hardware and software
//   swift run -c release petrel-bench records    record batch build / validate / iterate, none and gzip
//   swift run -c release petrel-bench codec      Produce request with a 1 MiB batch, encode and decode
//   swift run -c release petrel-bench all        all of the above
//
// Each figure is measured `--runs` times (default 7) on a monotonic clock (ContinuousClock);
// each run repeats the operation for at least `--min-run-ms` milliseconds; the table reports the
// best and the median run as throughput.

import ArgumentParser
import KafkaProtocol
import NIOCore

// MARK: - Measurement

struct Measurement {
    var name: String
    var bytes: Int
    var seconds: [Double]  // per operation, one entry per run

    var best: Double { seconds.min() ?? .nan }
    var median: Double {
        let sorted = seconds.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// Keeps results alive so the optimiser cannot drop the work that produced them.
nonisolated(unsafe) var sink: UInt64 = 0

@inline(never)
func consume(_ value: UInt64) { sink &+= value }

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

struct Bencher {
    var runs: Int
    var minRunTime: Duration

    /// Times `body`; `bytes` is what one call processes.
    func measure(_ name: String, bytes: Int, _ body: () throws -> Void) rethrows -> Measurement {
        let clock = ContinuousClock()
        // Warm up and find an iteration count that fills minRunTime.
        var iterations = 1
        while true {
            let elapsed = try clock.measure { for _ in 0..<iterations { try body() } }
            if elapsed >= minRunTime / 4 || iterations >= 1 << 24 {
                let scale = max(1.0, minRunTime.seconds / max(elapsed.seconds, 1e-9))
                iterations = max(1, Int(Double(iterations) * scale))
                break
            }
            iterations *= 2
        }
        var seconds: [Double] = []
        for _ in 0..<runs {
            let elapsed = try clock.measure { for _ in 0..<iterations { try body() } }
            seconds.append(elapsed.seconds / Double(iterations))
        }
        return Measurement(name: name, bytes: bytes, seconds: seconds)
    }
}

enum Unit {
    case gigabytes, megabytes

    var label: String { self == .gigabytes ? "GB/s" : "MB/s" }
    func value(_ bytes: Int, _ seconds: Double) -> Double {
        Double(bytes) / seconds / (self == .gigabytes ? 1e9 : 1e6)
    }
}

func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let padding = String(repeating: " ", count: max(0, width - text.count))
    return right ? padding + text : text + padding
}

func format(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let have = text.distance(from: dot, to: text.endIndex) - 1
        if decimals == 0 { text = String(text[..<dot]) } else if have < decimals {
            text += String(repeating: "0", count: decimals - have)
        }
    } else if decimals > 0 {
        text += "." + String(repeating: "0", count: decimals)
    }
    return text
}

func printTable(_ title: String, _ rows: [Measurement], unit: Unit) {
    let nameWidth = max(30, (rows.map(\.name.count).max() ?? 0) + 2)
    print("")
    print(title)
    let header = pad("operation", nameWidth) + pad("bytes/op", 12, right: true) + pad("best \(unit.label)", 14, right: true)
        + pad("median \(unit.label)", 16, right: true) + pad("best µs/op", 14, right: true)
    print(header)
    print(String(repeating: "-", count: header.count))
    for row in rows {
        let decimals = unit == .gigabytes ? 2 : 0
        print(
            pad(row.name, nameWidth) + pad(String(row.bytes), 12, right: true)
                + pad(format(unit.value(row.bytes, row.best), decimals: decimals), 14, right: true)
                + pad(format(unit.value(row.bytes, row.median), decimals: decimals), 16, right: true)
                + pad(format(row.best * 1e6, decimals: row.best < 1e-6 ? 3 : 1), 14, right: true))
    }
}

/// Deterministic pseudo-random bytes.
func randomBytes(_ count: Int, seed: UInt64 = 0x5EED) -> [UInt8] {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
    }
    return bytes
}

/// A record value that compresses like real JSON payloads: a Collatz chain as text.
func sampleValue(size: Int, seed: Int) -> ByteBuffer {
    var text = "{\"start\":\(seed),\"chain\":["
    var n = UInt64(seed) &* 2_654_435_761 % 1_000_000_007 + 1
    while text.utf8.count < size {
        text += "\(n),"
        n = n % 2 == 0 ? n / 2 : 3 * n + 1
        if n == 1 { n = UInt64(text.utf8.count) &* 7_919 + 3 }
    }
    var buffer = ByteBuffer(string: text)
    buffer.moveWriterIndex(to: size)
    return buffer
}

struct CommonOptions: ParsableArguments {
    @Option(help: "Measured runs per figure (best and median are reported).")
    var runs: Int = 7

    @Option(help: "Minimum duration of one run, in milliseconds.")
    var minRunMs: Int = 200

    var bencher: Bencher { Bencher(runs: max(1, runs), minRunTime: .milliseconds(max(1, minRunMs))) }
}

// MARK: - crc

func runCRC(options: CommonOptions, size: Int) {
    let bencher = options.bencher
    let bytes = randomBytes(size)
    let buffer = ByteBuffer(bytes: bytes)
    var rows: [Measurement] = []
    bytes.withUnsafeBytes { raw in
        rows.append(
            bencher.measure("hardware (dispatching) path", bytes: size) {
                consume(UInt64(CRC32C.update(0, bytes: raw)))
            })
        rows.append(
            bencher.measure("software slicing-by-8", bytes: size) {
                consume(UInt64(CRC32C.softwareUpdate(0, bytes: raw)))
            })
    }
    rows.append(
        bencher.measure("CRC32C.checksum(ByteBuffer)", bytes: size) {
            consume(UInt64(CRC32C.checksum(buffer)))
        })
    let small = Array(bytes.prefix(100))
    small.withUnsafeBytes { raw in
        rows.append(
            bencher.measure("hardware, 100-byte input", bytes: 100) {
                consume(UInt64(CRC32C.update(0, bytes: raw)))
            })
    }
    let path = CRC32C.isHardwareAccelerated ? "hardware CRC instruction in use" : "no hardware CRC: table fallback in use"
    printTable("CRC-32C over \(size) bytes (\(path))", rows, unit: .gigabytes)
}

struct CRCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "crc", abstract: "CRC-32C throughput, hardware and software.")
    @OptionGroup var options: CommonOptions
    @Option(help: "Buffer size in bytes.") var size: Int = 1 << 20

    func run() throws { runCRC(options: options, size: size) }
}

// MARK: - records

/// Distinct record values, made once so that "build" measures encoding, not making payloads up.
nonisolated(unsafe) var valueCache: [Int: [ByteBuffer]] = [:]

func sampleValues(recordSize: Int, count: Int) -> [ByteBuffer] {
    if let cached = valueCache[recordSize], cached.count >= count { return cached }
    let values = (0..<count).map { sampleValue(size: recordSize, seed: $0 + 1) }
    valueCache[recordSize] = values
    return values
}

/// How many records of `recordSize` bytes fill an uncompressed batch of about `batchSize` bytes.
func recordCount(recordSize: Int, batchSize: Int) throws -> Int {
    let probe = try makeBatch(recordSize: recordSize, count: 64, compression: .none)
    let perRecord = Double(probe.sizeInBytes - RecordBatch.headerSize) / 64
    var count = max(1, Int(Double(batchSize - RecordBatch.headerSize) / perRecord))
    // Varints grow past 63 records; trim until the batch fits.
    while count > 1, try makeBatch(recordSize: recordSize, count: count, compression: .none).sizeInBytes > batchSize {
        count -= 1
    }
    return count
}

/// A batch of `count` records: a short key, a distinct JSON-like value each, a header on every
/// fourth record.
func makeBatch(recordSize: Int, count: Int, compression: CompressionCodec, level: Int = GzipCodec.defaultLevel) throws -> RecordBatch {
    let values = sampleValues(recordSize: recordSize, count: count)
    let key = ByteBuffer(string: "collatz-key")
    let header = [RecordHeader(key: "source", value: ByteBuffer(string: "bench"))]
    var builder = RecordBatchBuilder(
        compression: compression, compressionLevel: level, initialCapacity: count * (recordSize + 48) + 128)
    for index in 0..<count {
        try builder.append(
            key: key, value: values[index], headers: index % 4 == 0 ? header : [],
            timestamp: 1_700_000_000_000 + Int64(index))
    }
    return try builder.build()
}

func runRecords(options: CommonOptions, recordSize: Int, batchSize: Int) throws {
    let bencher = options.bencher
    var rows: [Measurement] = []
    var notes: [String] = []
    let count = try recordCount(recordSize: recordSize, batchSize: batchSize)
    for codec in [CompressionCodec.none, .gzip] {
        let batch = try makeBatch(recordSize: recordSize, count: count, compression: codec)
        let plain = try makeBatch(recordSize: recordSize, count: count, compression: .none)
        // Throughput is counted in uncompressed batch bytes, so the rows compare.
        let logical = plain.sizeInBytes
        notes.append(
            codec == .none
                ? "\(count) records of \(recordSize) B, batch \(batch.sizeInBytes) B"
                : "gzip level 6: \(batch.sizeInBytes) B, ratio \(format(Double(logical) / Double(batch.sizeInBytes), decimals: 2))")

        rows.append(
            try bencher.measure("build (\(codec))", bytes: logical) {
                let built = try makeBatch(recordSize: recordSize, count: count, compression: codec)
                consume(UInt64(built.crc))
            })
        rows.append(
            try bencher.measure("validate CRC (\(codec))", bytes: logical) {
                try batch.validate()
                consume(1)
            })
        rows.append(
            try bencher.measure("iterate records (\(codec))", bytes: logical) {
                var iterator = try batch.records()
                var total = 0
                while let record = try iterator.next() { total &+= record.value?.readableBytes ?? 0 }
                consume(UInt64(total))
            })
        if codec == .gzip {
            rows.append(
                try bencher.measure("build (gzip, level 1)", bytes: logical) {
                    let built = try makeBatch(recordSize: recordSize, count: count, compression: codec, level: 1)
                    consume(UInt64(built.crc))
                })
        }
        if codec == .none {
            var records = batch.buffer
            rows.append(
                try bencher.measure("broker append: validate + assign offsets", bytes: logical) {
                    let assignment = try RecordBatch.assignOffsets(in: &records, firstOffset: 1000, partitionLeaderEpoch: 3)
                    consume(UInt64(assignment.lastOffset))
                })
        }
    }
    printTable(
        "Record batches (\(notes.joined(separator: "; ")); MB/s of uncompressed batch bytes)", rows, unit: .megabytes)
}

struct RecordsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "records", abstract: "Record batch build, CRC validation and iteration, none and gzip.")
    @OptionGroup var options: CommonOptions
    @Option(help: "Record value size in bytes.") var recordSize: Int = 1024
    @Option(help: "Target uncompressed batch size in bytes.") var batchSize: Int = 1 << 20

    func run() throws { try runRecords(options: options, recordSize: recordSize, batchSize: batchSize) }
}

// MARK: - codec

func runCodec(options: CommonOptions, recordSize: Int, batchSize: Int) throws {
    let bencher = options.bencher
    let count = try recordCount(recordSize: recordSize, batchSize: batchSize)
    let batch = try makeBatch(recordSize: recordSize, count: count, compression: .none)
    let version: Int16 = 9
    var request = ProduceRequest()
    request.acks = -1
    request.timeoutMs = 30000
    request.topicData = [.init(name: "bench", partitionData: [.init(index: 0, records: batch.buffer)])]

    var encoded = ByteBuffer()
    try request.encode(into: &encoded, version: version)
    let size = encoded.readableBytes
    let allocator = ByteBufferAllocator()

    var rows: [Measurement] = []
    rows.append(
        try bencher.measure("ProduceRequest v\(version) encode", bytes: size) {
            var buffer = allocator.buffer(capacity: size)
            try request.encode(into: &buffer, version: version)
            consume(UInt64(buffer.readableBytes))
        })
    rows.append(
        try bencher.measure("ProduceRequest v\(version) decode", bytes: size) {
            var buffer = encoded
            let decoded = try ProduceRequest(from: &buffer, version: version)
            consume(UInt64(decoded.topicData.count))
        })
    rows.append(
        try bencher.measure("decode + validate + iterate records", bytes: size) {
            var buffer = encoded
            let decoded = try ProduceRequest(from: &buffer, version: version)
            var total = 0
            for topic in decoded.topicData {
                for partition in topic.partitionData {
                    guard let records = partition.records else { continue }
                    var batches = RecordBatchIterator(records, allowPartialTrailingBatch: false)
                    while let batch = try batches.next() {
                        try batch.validate()
                        var iterator = try batch.records()
                        while let record = try iterator.next() { total &+= record.value?.readableBytes ?? 0 }
                    }
                }
            }
            consume(UInt64(total))
        })
    printTable("Produce request codec (\(batch.recordCount) records of \(recordSize) B, request \(size) B)", rows, unit: .megabytes)
}

struct CodecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec", abstract: "Produce request (v9) with a 1 MiB batch: encode and decode.")
    @OptionGroup var options: CommonOptions
    @Option(help: "Record value size in bytes.") var recordSize: Int = 1024
    @Option(help: "Target batch size in bytes.") var batchSize: Int = 1 << 20

    func run() throws { try runCodec(options: options, recordSize: recordSize, batchSize: batchSize) }
}

// MARK: - all

struct AllCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "all", abstract: "Every benchmark with default sizes.")
    @OptionGroup var options: CommonOptions

    func run() throws {
        runCRC(options: options, size: 1 << 20)
        try runRecords(options: options, recordSize: 1024, batchSize: 1 << 20)
        try runCodec(options: options, recordSize: 1024, batchSize: 1 << 20)
    }
}

struct PetrelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel-bench",
        abstract: "Micro-benchmarks of Petrel's wire codec. Build with -c release.",
        subcommands: [CRCCommand.self, RecordsCommand.self, CodecCommand.self, AllCommand.self]
    )
}

PetrelBench.main()
if sink == 0x5EED_5EED { print("") }  // reads the sink so the measured work stays observable
