import ArgumentParser
import Foundation
import KafkaClient
import KafkaProtocol
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `acks` as the tools spell it.
enum AcksFlag: String, ExpressibleByArgument, CaseIterable {
    case all, minusOne = "-1", one = "1", zero = "0"
    var acks: Acks {
        switch self {
        case .all, .minusOne: return .all
        case .one: return .leader
        case .zero: return .none
        }
    }
}

enum CompressionFlag: String, ExpressibleByArgument, CaseIterable {
    case none, gzip
    var codec: CompressionCodec { self == .gzip ? .gzip : .none }
}

/// Producer settings shared by `petrel produce` and `petrel perf produce`.
struct ProducerOptions: ParsableArguments {
    @Option(help: "acks: all (-1), 1 or 0.") var acks: AcksFlag = .all
    @Option(help: "Compression of batches: none or gzip.") var compression: CompressionFlag = .none
    @Option(name: .customLong("linger-ms"), help: "linger.ms: how long a batch waits for more records.") var lingerMs: Int = 5
    @Option(name: .customLong("batch-size"), help: "batch.size: the largest batch per partition, bytes.") var batchSize: Int = 1_000_000
    @Option(name: .customLong("buffer-memory"), help: "buffer.memory: bytes waiting to be acknowledged before producing waits.")
    var bufferMemory: Int = 64 * 1024 * 1024
    @Flag(name: .customLong("no-idempotence"), help: "Turn idempotence off (it is on by default with acks=all).") var noIdempotence = false
    @Option(name: .customLong("delivery-timeout-ms"), help: "delivery.timeout.ms: a record fails if not acknowledged within this time.")
    var deliveryTimeoutMs: Int = 120_000

    func validate() throws {
        guard lingerMs >= 0 else { throw ValidationError("--linger-ms must be >= 0") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be > 0") }
        guard bufferMemory >= batchSize else { throw ValidationError("--buffer-memory must be >= --batch-size") }
        guard deliveryTimeoutMs > 0 else { throw ValidationError("--delivery-timeout-ms must be > 0") }
    }

    var configuration: ProducerConfiguration {
        var c = ProducerConfiguration()
        c.acks = acks.acks
        c.compression = compression.codec
        c.lingerMs = lingerMs
        c.batchSize = batchSize
        c.bufferMemory = bufferMemory
        c.enableIdempotence = !noIdempotence
        c.deliveryTimeoutMs = deliveryTimeoutMs
        return c
    }
}

/// `petrel produce`: stdin lines in, one record per line (kcat -P like).
struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Produce one record per line of stdin (or --file), like kcat -P.",
        discussion: """
            printf 'k1:hello\\nk2:world\\n' | petrel produce -b 127.0.0.1:9092 --topic demo --key-separator :
            petrel produce -b 127.0.0.1:9092 --topic demo --partition 0 --acks 1 --compression gzip < lines.txt

            Each line (without its newline) is a record value; with --key-separator the text before the \
            first separator is the key (a line without the separator has no key). Exits once every record \
            is acknowledged; a record the broker refused makes the exit code 1.

            \(ClientExit.helpText)
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(name: [.customLong("topic"), .customShort("t")], help: "The topic (must exist).") var topic: String
    @Option(name: [.customLong("key-separator"), .customShort("K")], help: "Split each line into key and value at the first occurrence.")
    var keySeparator: String?
    @Option(name: [.customLong("partition"), .customShort("p")], help: "Produce to this partition (default: the partitioner; keys by murmur2).")
    var partition: Int32?
    @Option(name: [.customLong("header"), .customShort("H")], help: "A header added to every record, key=value (repeatable).")
    var headers: [String] = []
    @Option(name: [.customLong("file"), .customShort("l")], help: "Read lines from this file instead of stdin.") var file: String?
    @OptionGroup var producerOptions: ProducerOptions
    @Option(name: .customLong("timeout-ms"), help: "Give up (exit 5) when producing everything takes longer (default: no limit).")
    var timeoutMs: Int?

    func validate() throws {
        if let s = keySeparator, s.isEmpty { throw ValidationError("--key-separator must not be empty") }
        if let p = partition, p < 0 { throw ValidationError("--partition must be >= 0") }
        for h in headers { _ = try parseKeyValue(h, flag: "--header") }
        if let t = timeoutMs, t <= 0 { throw ValidationError("--timeout-ms must be > 0") }
        if let f = file, !FileManager.default.isReadableFile(atPath: f) { throw ValidationError("--file \(f) cannot be read") }
    }

    func run() async throws {
        let options = self
        try await runClientTool(connection, timeoutMs: timeoutMs, what: "produce") { client in
            try await options.produce(client)
        }
    }

    func produce(_ client: KafkaClient) async throws {
        let info = try await KafkaAdmin(client: client).describeTopics([topic])[0]
        if let p = partition, !info.partitions.contains(where: { $0.partition == p }) {
            throw KafkaClientError.unknownPartition(TopicPartition(topic: topic, partition: p))
        }
        let recordHeaders = try headers.map { h -> RecordHeader in
            let (k, v) = try parseKeyValue(h, flag: "--header")
            return RecordHeader(key: k, value: ByteBuffer(string: v))
        }
        let producer = try KafkaProducer(client: client, configuration: producerOptions.configuration)
        let separator = keySeparator.map { Array($0.utf8) }
        var count = 0
        let fd: Int32 = file.map { open($0, O_RDONLY) } ?? 0
        defer { if fd > 0 { close(fd) } }
        var lines = LineReader(fd: fd)
        while let line = lines.next() {
            var key: ByteBuffer?
            var value: ByteBuffer
            if let separator, let at = firstIndex(of: separator, in: line) {
                key = ByteBuffer(bytes: line[line.startIndex..<at])
                value = ByteBuffer(bytes: line[(at + separator.count)...])
            } else {
                value = ByteBuffer(bytes: line)
            }
            try await producer.produce(ProducerRecord(topic: topic, partition: partition, key: key, value: value, headers: recordHeaders))
            count += 1
        }
        try await producer.flush()
        await producer.close()
        if connection.verbose { writeStderr("petrel: produced \(count) records to \(topic)\n") }
    }
}

/// Lines of a file descriptor, read in large chunks (no newline; a last line without one counts).
struct LineReader {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false

    init(fd: Int32) { self.fd = fd }

    mutating func next() -> ArraySlice<UInt8>? {
        while true {
            if let nl = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[start..<nl]
                start = nl + 1
                return line
            }
            if eof {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                return line
            }
            // Compact, then read more.
            if start > 0 { buffer.removeSubrange(0..<start); start = 0 }
            let chunk = 1 << 20
            let old = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: chunk))
            let n = buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + old, chunk) }
            buffer.removeSubrange((old + max(n, 0))...)
            if n <= 0 { eof = true }
        }
    }
}

func firstIndex(of needle: [UInt8], in hay: ArraySlice<UInt8>) -> Int? {
    guard !needle.isEmpty, hay.count >= needle.count else { return nil }
    var i = hay.startIndex
    let last = hay.endIndex - needle.count
    while i <= last {
        if hay[i] == needle[0] {
            var j = 1
            while j < needle.count && hay[i + j] == needle[j] { j += 1 }
            if j == needle.count { return i }
        }
        i += 1
    }
    return nil
}

/// A compiled `--format` string (kcat's tokens).
struct RecordFormat {
    enum Token { case literal([UInt8]), key, value, topic, partition, offset, timestamp, keyLength, valueLength, headers }
    let tokens: [Token]

    init(_ format: String) throws {
        var tokens: [Token] = []
        var literal: [UInt8] = []
        var chars = Array(format.unicodeScalars)[...]
        func flush() { if !literal.isEmpty { tokens.append(.literal(literal)); literal = [] } }
        while let c = chars.popFirst() {
            if c == "%" {
                guard let t = chars.popFirst() else { throw ValidationError("--format ends with a lone %") }
                let token: Token?
                switch t {
                case "k": token = .key
                case "v": token = .value
                case "t": token = .topic
                case "p": token = .partition
                case "o": token = .offset
                case "T": token = .timestamp
                case "K": token = .keyLength
                case "S": token = .valueLength
                case "h": token = .headers
                case "%": token = nil; literal.append(UInt8(ascii: "%"))
                default: throw ValidationError("--format: unknown token %\(t) (known: %k %v %t %p %o %T %K %S %h %%)")
                }
                if let token { flush(); tokens.append(token) }
            } else if c == "\\" {
                guard let e = chars.popFirst() else { literal.append(UInt8(ascii: "\\")); break }
                switch e {
                case "n": literal.append(10)
                case "t": literal.append(9)
                case "r": literal.append(13)
                case "0": literal.append(0)
                case "\\": literal.append(UInt8(ascii: "\\"))
                default: literal.append(UInt8(ascii: "\\")); literal.append(contentsOf: Array(String(e).utf8))
                }
            } else {
                literal.append(contentsOf: Array(String(c).utf8))
            }
        }
        flush()
        self.tokens = tokens
    }

    func render(_ r: ConsumerRecord, into out: inout [UInt8]) {
        for t in tokens {
            switch t {
            case let .literal(bytes): out.append(contentsOf: bytes)
            case .key: if let k = r.key { out.append(contentsOf: k.readableBytesView) }
            case .value: if let v = r.value { out.append(contentsOf: v.readableBytesView) }
            case .topic: out.append(contentsOf: Array(r.topic.utf8))
            case .partition: out.append(contentsOf: Array(String(r.partition).utf8))
            case .offset: out.append(contentsOf: Array(String(r.offset).utf8))
            case .timestamp: out.append(contentsOf: Array(String(r.timestamp).utf8))
            case .keyLength: out.append(contentsOf: Array(String(r.key.map { $0.readableBytes } ?? -1).utf8))
            case .valueLength: out.append(contentsOf: Array(String(r.value.map { $0.readableBytes } ?? -1).utf8))
            case .headers:
                var first = true
                for h in r.headers {
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    out.append(contentsOf: Array(h.key.utf8))
                    out.append(UInt8(ascii: "="))
                    if let v = h.value { out.append(contentsOf: v.readableBytesView) }
                }
            }
        }
    }
}

/// Where a partition starts: `--offset`.
enum StartOffset: ExpressibleByArgument, Equatable {
    case beginning, end, stored, absolute(Int64), fromEnd(Int64)

    init?(argument: String) {
        switch argument {
        case "beginning", "earliest": self = .beginning
        case "end", "latest": self = .end
        case "stored", "committed": self = .stored
        default:
            guard let n = Int64(argument) else { return nil }
            self = n >= 0 ? .absolute(n) : .fromEnd(-n)
        }
    }
}

/// State shared between the consuming loop and its monitor.
final class ConsumeProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var next: [TopicPartition: Int64] = [:]
    private var count = 0
    private var lastRecord = monotonicMillis()

    func record(_ tp: TopicPartition, offset: Int64) {
        lock.lock(); defer { lock.unlock() }
        next[tp] = offset + 1
        count += 1
        lastRecord = monotonicMillis()
    }

    var snapshot: (next: [TopicPartition: Int64], count: Int, idleMs: Int64) {
        lock.lock(); defer { lock.unlock() }
        return (next, count, monotonicMillis() - lastRecord)
    }
}

/// Our own FILE for records (Swift 6 does not allow touching the C global `stdout`).
nonisolated(unsafe) let standardOutput: UnsafeMutablePointer<FILE> = fdopen(STDOUT_FILENO, "w")!

func monotonicMillis() -> Int64 {
    Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000)
}

/// `petrel consume`: records out (kcat -C like).
struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Write a topic's records to stdout, like kcat -C.",
        discussion: """
            petrel consume -b 127.0.0.1:9092 --topic demo --from-beginning --exit-at-end
            petrel consume -b 127.0.0.1:9092 --topic demo --group g --max-messages 10 --format '%k:%v\\n'
            petrel consume -b 127.0.0.1:9092 --topic demo --partition 0 --offset 42 --print-key --key-separator =

            Without --group every partition (or --partition) is read directly; with --group the group \
            assigns partitions and offsets are committed. Start: --offset (beginning, end, stored, N, \
            -N = N before the end), else --from-beginning, else the group's committed offset, else the end.

            --format tokens: %k key, %v value, %t topic, %p partition, %o offset, %T timestamp (ms), \
            %K key length, %S value length (-1 for null), %h headers (k=v,...), %% ; escapes \\n \\t \\r \\\\. \
            Null keys and values print as nothing.

            SIGINT / SIGTERM stop it cleanly (offsets committed, group left; exit 0).

            \(ClientExit.helpText)
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(name: [.customLong("topic"), .customShort("t")], help: "The topic.") var topic: String
    @Option(name: [.customLong("group"), .customShort("G")], help: "Consume as a member of this group (commits offsets).") var group: String?
    @Flag(name: .customLong("from-beginning"), help: "Start at the earliest offset when there is no committed offset (or no group).")
    var fromBeginning = false
    @Option(name: [.customLong("partition"), .customShort("p")], help: "Only this partition.") var partition: Int32?
    @Option(name: [.customLong("offset"), .customShort("o")], parsing: .unconditional,
            help: "Start offset: beginning, end, stored, N, or -N (N before the end).")
    var offset: StartOffset?
    @Option(name: [.customLong("max-messages"), .customShort("c")], help: "Exit after this many records.") var maxMessages: Int?
    @Flag(name: [.customLong("exit-at-end"), .customShort("e")], help: "Exit once the end of every partition (as of the start) is reached.")
    var exitAtEnd = false
    @Option(name: .customLong("timeout-ms"), help: "Exit (status 0) when no record arrived for this long.") var timeoutMs: Int?
    @Option(name: [.customLong("format"), .customShort("f")], help: "Output format per record (see below). Default: '%v\\n'.")
    var format: String?
    @Flag(name: .customLong("print-key"), help: "Print the key before the value (format '%k<key-separator>%v\\n').") var printKey = false
    @Option(name: .customLong("key-separator"), help: "Separator between key and value with --print-key (default: a tab).")
    var keySeparatorFlag: String?
    var keySeparator: String { keySeparatorFlag ?? "\t" }
    @Flag(name: [.customLong("quiet"), .customShort("q")], help: "Do not print the record count to stderr at the end.") var quiet = false

    func validate() throws {
        if let p = partition, p < 0 { throw ValidationError("--partition must be >= 0") }
        if let m = maxMessages, m < 1 { throw ValidationError("--max-messages must be >= 1") }
        if let t = timeoutMs, t <= 0 { throw ValidationError("--timeout-ms must be > 0") }
        if format != nil && printKey { throw ValidationError("--format and --print-key exclude each other") }
        if offset == .stored && group == nil { throw ValidationError("--offset stored needs --group") }
        if offset != nil && fromBeginning { throw ValidationError("--offset and --from-beginning exclude each other") }
        _ = try RecordFormat(effectiveFormat)
    }

    var effectiveFormat: String {
        if let format { return format }
        return printKey ? "%k\(keySeparator.replacingOccurrences(of: "%", with: "%%"))%v\\n" : "%v\\n"
    }

    func run() async throws {
        let options = self
        try await runClientTool(connection, timeoutMs: nil, what: "consume") { client in
            try await options.consume(client)
        }
    }

    func consume(_ client: KafkaClient) async throws {
        let admin = KafkaAdmin(client: client)
        let info = try await admin.describeTopics([topic])[0]
        var targets = info.partitions.map { TopicPartition(topic: topic, partition: $0.partition) }.sorted()
        if let p = partition {
            guard targets.contains(TopicPartition(topic: topic, partition: p)) else {
                throw KafkaClientError.unknownPartition(TopicPartition(topic: topic, partition: p))
            }
            targets = [TopicPartition(topic: topic, partition: p)]
        }
        var config = ConsumerConfiguration(groupId: group)
        config.autoOffsetReset = fromBeginning || offset == .beginning ? .earliest : .latest
        config.fetchMaxWaitMs = 100
        config.heartbeatIntervalMs = 1_000
        config.sessionTimeoutMs = 10_000
        let consumer = KafkaConsumer(client: client, configuration: config)

        // Where each partition starts, and (for --exit-at-end) where it ends now.
        let earliest = try await admin.listOffsets(targets, spec: .earliest)
        let ends = try await admin.listOffsets(targets, spec: .latest)
        var committed: [TopicPartition: Int64] = [:]
        if let group { committed = try await admin.committedOffsets(group: group, partitions: targets) }
        var starts: [TopicPartition: Int64] = [:]
        for tp in targets {
            let lo = earliest[tp] ?? 0, hi = ends[tp] ?? 0
            switch offset {
            case .beginning: starts[tp] = lo
            case .end: starts[tp] = hi
            case let .absolute(n): starts[tp] = n
            case let .fromEnd(n): starts[tp] = max(lo, hi - n)
            case .stored, nil:
                starts[tp] = committed[tp] ?? (fromBeginning ? lo : hi)
            }
        }
        let explicitStart = offset != nil && offset != .stored
        if group != nil && partition == nil && !explicitStart {
            try await consumer.subscribe([topic])
        } else {
            try await consumer.assign(targets)
            if group == nil || explicitStart {
                for tp in targets { try await consumer.seek(tp, to: starts[tp]!) }
            }
        }

        let progress = ConsumeProgress()
        let startOffsets = starts
        let formatter = try RecordFormat(effectiveFormat)
        let exitAtEnd = self.exitAtEnd, idleMs = timeoutMs, useGroup = group != nil && partition == nil && !explicitStart
        let monitor = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
                fflush(nil)
                let s = progress.snapshot
                if let idleMs, s.idleMs >= idleMs { break }
                if exitAtEnd {
                    let mine = useGroup ? await consumer.assignment() : targets
                    if useGroup && mine.isEmpty { continue }
                    if mine.allSatisfy({ (s.next[$0] ?? startOffsets[$0] ?? 0) >= (ends[$0] ?? 0) }) { break }
                }
            }
            await consumer.close()
        }
        // SIGINT / SIGTERM: close the consumer (commit, leave the group), then exit normally.
        var signalSources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { monitor.cancel(); Task { await consumer.close() } }
            source.resume()
            signalSources.append(source)
        }
        defer { for s in signalSources { s.cancel() } }
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        var count = 0
        do {
            for try await record in consumer.records {
                out.removeAll(keepingCapacity: true)
                formatter.render(record, into: &out)
                _ = out.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, standardOutput) }
                progress.record(record.topicPartition, offset: record.offset)
                count += 1
                if let m = maxMessages, count >= m { break }
            }
        } catch {
            monitor.cancel()
            await consumer.close()
            throw error
        }
        monitor.cancel()
        await consumer.close()
        fflush(nil)
        if !quiet { writeStderr("Processed a total of \(count) messages\n") }
    }
}
