import ArgumentParser
import Foundation
import Histogram
import KafkaClient
import KafkaProtocol
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `petrel perf produce|consume`: like kafka-producer-perf-test / kafka-consumer-perf-test.
struct PerfCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perf",
        abstract: "Producer and consumer throughput tests (like kafka-producer-perf-test and kafka-consumer-perf-test).",
        subcommands: [PerfProduce.self, PerfConsume.self])
}

/// Latencies in microseconds, shared by the tasks that time sampled records.
final class LatencyRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    private var window = (count: 0, sumUs: UInt64(0), maxUs: UInt64(0))
    private(set) var errors = 0
    private var firstError: (any Error)?

    private var _pending = 0
    var pending: Int { lock.lock(); defer { lock.unlock() }; return _pending }

    func started() {
        lock.lock(); defer { lock.unlock() }
        _pending += 1
    }

    func record(_ us: UInt64) {
        lock.lock(); defer { lock.unlock() }
        _pending -= 1
        _ = histogram.record(min(us, 600_000_000))
        window.count += 1
        window.sumUs += us
        window.maxUs = max(window.maxUs, us)
    }

    func failed(_ error: any Error) {
        lock.lock(); defer { lock.unlock() }
        _pending -= 1
        errors += 1
        if firstError == nil { firstError = error }
    }

    func takeWindow() -> (count: Int, avgMs: Double, maxMs: Double) {
        lock.lock(); defer { lock.unlock() }
        let w = window
        window = (0, 0, 0)
        return (w.count, w.count == 0 ? 0 : Double(w.sumUs) / Double(w.count) / 1000, Double(w.maxUs) / 1000)
    }

    var result: (histogram: Histogram<UInt64>, errors: Int, firstError: (any Error)?) {
        lock.lock(); defer { lock.unlock() }
        return (histogram, errors, firstError)
    }
}

struct PerfProduce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Produce --num-records records of --record-size bytes as fast as possible (or at --throughput).",
        discussion: """
            petrel perf produce -b 127.0.0.1:9092 --topic perf --num-records 1000000 --record-size 100 --acks 1 --linger-ms 5

            Prints progress every 5 s and a summary as kafka-producer-perf-test does: records/s, MB/s \
            (10^6 bytes of values), and the latency from produce to acknowledgement (avg, max, p50, \
            p95, p99, p99.9; HdrHistogram, 3 significant digits). Latency is measured on every \
            --latency-every'th record: by default about 10,000 records evenly spread (every record \
            up to 10,000 records), because timing a record costs a task and a continuation resumed on \
            its acknowledgement (with every record timed, 1,000,000 records take several times \
            longer). The other records go through the fire-and-forget path. Values are random letters, no keys; the partitioner spreads them (sticky). \
            The topic must exist. Exit code 1 if any record failed.

            \(ClientExit.helpText)
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(name: [.customLong("topic"), .customShort("t")], help: "The topic (must exist).") var topic: String
    @Option(name: .customLong("num-records"), help: "How many records.") var numRecords: Int
    @Option(name: .customLong("record-size"), help: "Value size in bytes.") var recordSize: Int
    @Option(help: "Records per second to aim for; -1: as fast as possible.") var throughput: Double = -1
    @Option(name: .customLong("latency-every"),
            help: "Time every N-th record's acknowledgement (1: every record). Default: num-records / 10000, at least 1.")
    var latencyEvery: Int?
    @Option(name: .customLong("report-interval-ms"), help: "Progress line interval; 0: none.") var reportIntervalMs: Int = 5_000
    @Option(name: .customLong("producer-props"), parsing: .upToNextOption,
            help: "Kafka producer properties (acks, linger.ms, batch.size, buffer.memory, compression.type, enable.idempotence); they override the flags.")
    var producerProps: [String] = []
    @OptionGroup var producer: ProducerOptions

    func validate() throws {
        guard numRecords > 0 else { throw ValidationError("--num-records must be > 0") }
        guard recordSize >= 0 else { throw ValidationError("--record-size must be >= 0") }
        guard throughput == -1 || throughput > 0 else { throw ValidationError("--throughput must be > 0 or -1") }
        guard (latencyEvery ?? 1) >= 1 else { throw ValidationError("--latency-every must be >= 1") }
        guard reportIntervalMs >= 0 else { throw ValidationError("--report-interval-ms must be >= 0") }
        _ = try producerConfiguration()
    }

    func producerConfiguration() throws -> ProducerConfiguration {
        var c = producer.configuration
        for p in producerProps {
            let (k, v) = try parseKeyValue(p, flag: "--producer-props")
            switch k {
            case "acks":
                guard let a = AcksFlag(rawValue: v) else { throw ValidationError("--producer-props acks=\(v): all, -1, 1 or 0") }
                c.acks = a.acks
            case "linger.ms": guard let n = Int(v), n >= 0 else { throw ValidationError("--producer-props \(p)") }; c.lingerMs = n
            case "batch.size": guard let n = Int(v), n > 0 else { throw ValidationError("--producer-props \(p)") }; c.batchSize = n
            case "buffer.memory": guard let n = Int(v), n > 0 else { throw ValidationError("--producer-props \(p)") }; c.bufferMemory = n
            case "compression.type":
                guard let z = CompressionFlag(rawValue: v) else { throw ValidationError("--producer-props compression.type=\(v): none or gzip") }
                c.compression = z.codec
            case "enable.idempotence": c.enableIdempotence = v == "true"
            case "bootstrap.servers", "client.id": break
            default: throw ValidationError("--producer-props \(k) is not supported (acks, linger.ms, batch.size, buffer.memory, compression.type, enable.idempotence)")
            }
        }
        return c
    }

    func run() async throws {
        let options = self
        try await runClientTool(connection, timeoutMs: nil, what: "perf produce") { client in
            try await options.perf(client)
        }
    }

    func perf(_ client: KafkaClient) async throws {
        _ = try await KafkaAdmin(client: client).describeTopics([topic])
        let producer = try KafkaProducer(client: client, configuration: try producerConfiguration())
        var generator = SystemRandomNumberGenerator()
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        let payload = ByteBuffer(bytes: (0..<recordSize).map { _ in letters.randomElement(using: &generator)! })
        let recorder = LatencyRecorder()
        let topic = self.topic, every = latencyEvery ?? max(1, numRecords / 10_000), total = numRecords, size = recordSize
        let start = DispatchTime.now().uptimeNanoseconds
        let sent = SentCounter()
        let reporter: Task<Void, Never>? = reportIntervalMs == 0 ? nil : Task { [reportIntervalMs] in
            var last = (at: start, count: 0)
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(reportIntervalMs))
                if Task.isCancelled { break }
                let now = DispatchTime.now().uptimeNanoseconds, n = sent.value
                let secs = Double(now - last.at) / 1e9
                let w = recorder.takeWindow()
                let rps = Double(n - last.count) / secs
                print(String(format: "%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.",
                             n - last.count, rps, rps * Double(size) / 1e6, w.avgMs, w.maxMs))
                fflush(nil)
                last = (now, n)
            }
        }
        let throttle = throughput > 0 ? throughput : nil
        // One record value, sent `total` times (the payload is the same; no copy per iteration).
        let record = ProducerRecord(topic: topic, value: payload)
        for i in 0..<total {
            if i % every == 0 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                recorder.started()
                let timed: @Sendable () async -> Void = {
                    do {
                        _ = try await producer.send(record)
                        recorder.record((DispatchTime.now().uptimeNanoseconds - t0) / 1_000)
                    } catch {
                        recorder.failed(error)
                    }
                }
                // Task.immediate: the record is appended now, in order, by this thread (as
                // Java's send() does); only the wait for the acknowledgement is a task.
                #if os(Linux)
                Task.immediate { await timed() }
                #else
                if #available(macOS 26, *) { Task.immediate { await timed() } } else { Task { await timed() } }
                #endif
            } else {
                try await producer.produce(record)
            }
            if i & 1023 == 1023 { sent.value = i + 1 }
            if let throttle, i % 100 == 0 {
                let due = start + UInt64(Double(i) / throttle * 1e9)
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now + 2_000_000 { try await Task.sleep(for: .nanoseconds(Int(due - now))) }
            }
        }
        sent.value = total
        try await producer.flush()
        // Every record is acknowledged; wait for the timing tasks to record.
        while recorder.pending > 0 { try await Task.sleep(for: .milliseconds(1)) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        reporter?.cancel()
        await producer.close()
        let r = recorder.result
        let h = r.histogram
        let rps = Double(total) / elapsed
        func ms(_ p: Double) -> String { String(format: "%.2f", Double(h.valueAtPercentile(p)) / 1000) }
        print(String(format: "%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, ",
                     total, rps, rps * Double(size) / 1e6, h.mean / 1000, Double(h.max) / 1000)
              + "\(ms(50)) ms 50th, \(ms(95)) ms 95th, \(ms(99)) ms 99th, \(ms(99.9)) ms 99.9th.")
        print(String(format: "elapsed %.3f s; latency from %llu timed records (every %d)", elapsed, h.totalCount, every))
        if r.errors > 0 {
            throw ClientFailure(exit: .failed, message: "\(r.errors) timed record(s) failed, the first: \(describe(r.firstError!, what: "produce").message)")
        }
    }
}

/// A counter read by the progress reporter (torn reads are harmless: progress only).
final class SentCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var _value = 0
    var value: Int {
        get { lock.lock(); defer { lock.unlock() }; return _value }
        set { lock.lock(); _value = newValue; lock.unlock() }
    }
}

struct PerfConsume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Consume --messages records from the beginning of a topic as fast as possible.",
        discussion: """
            petrel perf consume -b 127.0.0.1:9092 --topic perf --messages 1000000

            Reads every partition from the earliest offset (or joins --group), stops after --messages \
            records, and prints kafka-consumer-perf-test's CSV line (start.time, end.time, \
            data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...) and a summary. \
            Exit code 1 when fewer records arrived before --timeout-ms of silence.

            \(ClientExit.helpText)
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(name: [.customLong("topic"), .customShort("t")], help: "The topic.") var topic: String
    @Option(help: "How many records to consume.") var messages: Int
    @Option(name: .customLong("group"), help: "Consume as a member of this group (default: direct assignment, no group).") var group: String?
    @Option(name: .customLong("timeout-ms"), help: "Give up (exit 1) after this long without a record.") var timeoutMs: Int = 10_000
    @Option(name: .customLong("fetch-max-wait-ms"), help: "fetch.max.wait.ms.") var fetchMaxWaitMs: Int32 = 100
    @Option(name: .customLong("max-partition-fetch-bytes"), help: "max.partition.fetch.bytes.") var maxPartitionFetchBytes: Int32 = 1_048_576

    func validate() throws {
        guard messages > 0 else { throw ValidationError("--messages must be > 0") }
        guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be > 0") }
    }

    func run() async throws {
        let options = self
        try await runClientTool(connection, timeoutMs: nil, what: "perf consume") { client in
            try await options.perf(client)
        }
    }

    func perf(_ client: KafkaClient) async throws {
        let info = try await KafkaAdmin(client: client).describeTopics([topic])[0]
        var config = ConsumerConfiguration(groupId: group)
        config.autoOffsetReset = .earliest
        config.fetchMaxWaitMs = fetchMaxWaitMs
        config.maxPartitionFetchBytes = maxPartitionFetchBytes
        config.enableAutoCommit = group != nil
        let consumer = KafkaConsumer(client: client, configuration: config)
        let wallStart = Date()
        let start = DispatchTime.now().uptimeNanoseconds
        if group != nil {
            try await consumer.subscribe([topic])
        } else {
            try await consumer.assign(info.partitions.map { TopicPartition(topic: topic, partition: $0.partition) })
        }
        let progress = ConsumeProgress()
        let idle = timeoutMs
        let monitor = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                if progress.snapshot.idleMs >= idle { await consumer.close(); return }
            }
        }
        var count = 0, bytes = 0
        var firstAt: UInt64 = 0
        let want = messages
        for try await record in consumer.records {
            if count == 0 { firstAt = DispatchTime.now().uptimeNanoseconds }
            count += 1
            bytes += record.value?.readableBytes ?? 0
            if count & 4095 == 0 { progress.record(record.topicPartition, offset: record.offset) }
            if count >= want { break }
        }
        let end = DispatchTime.now().uptimeNanoseconds
        monitor.cancel()
        await consumer.close()
        let secs = Double(end - start) / 1e9
        let fetchSecs = firstAt == 0 ? secs : Double(end - firstAt) / 1e9
        let mb = Double(bytes) / 1e6
        let df = DateFormatter()
        df.dateFormat = "yyyy-MM-dd HH:mm:ss:SSS"
        print("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
        print("\(df.string(from: wallStart)), \(df.string(from: Date())), " + String(format: "%.4f, %.4f, %d, %.4f, %d, %d, %.4f, %.4f", mb, mb / secs, count, Double(count) / secs,
                     Int((secs - fetchSecs) * 1000), Int(fetchSecs * 1000), mb / fetchSecs, Double(count) / fetchSecs))
        print(String(format: "%d records consumed in %.3f s: %.1f records/sec (%.2f MB/sec)", count, secs, Double(count) / secs, mb / secs))
        if count < want {
            throw ClientFailure(exit: .failed, message: "consumed \(count) of \(want) records: no record for \(timeoutMs) ms (--timeout-ms)")
        }
    }
}
