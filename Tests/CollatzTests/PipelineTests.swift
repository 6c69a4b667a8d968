import Collatz
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The whole pipeline as processes: `petrel broker`, `petrel collatz-producer`, two
/// `petrel clickhouse-sink` instances in one group, and ClickHouse 18.16. One sink is killed
/// with SIGKILL mid-run and ClickHouse is stopped for a while mid-run; ClickHouse must end with
/// exactly the produced (number, step, value) set and the answers must match chains computed
/// here. `clusterPipeline` runs the same workers against a three-node cluster (`petrel cluster`).
@Suite("Collatz pipeline: petrel processes, real ClickHouse", .serialized)
struct PipelineTests {
    static let petrel: String? = {
        let selfExe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        guard let exe = selfExe ?? CommandLine.arguments.first else { return nil }
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("petrel").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()

    static var available: Bool {
        guard ClickHouseTestServer.available else { return false }
        if petrel == nil {
            if ClickHouseTestServer.requireEverything { return true }
            print("SKIP: the pipeline test needs the petrel binary next to the test runner (swift build first)")
            return false
        }
        return true
    }

    final class Child: @unchecked Sendable {
        let process = Process()
        let log: URL
        init(_ arguments: [String], log: URL) throws {
            self.log = log
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.executableURL = URL(fileURLWithPath: PipelineTests.petrel!)
            process.arguments = arguments
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            var env = ProcessInfo.processInfo.environment
            for key in env.keys where key.hasPrefix("CLICKHOUSE_") || key.hasPrefix("SINK_") || key.hasPrefix("COLLATZ_")
                || key.hasPrefix("KAFKA_") || key.hasPrefix("PETREL_") { env[key] = nil }
            process.environment = env
            try process.run()
        }
        func signal(_ sig: Int32) { if process.isRunning { kill(process.processIdentifier, sig) } }
        /// Waits up to `seconds` for the exit; nil if still running. Reaps the child itself too:
        /// Foundation's `Process` on Linux was seen leaving exited children as zombies with
        /// `isRunning` still true when several processes come and go in one test.
        func wait(seconds: Double) async -> Int32? {
            let deadline = Date().addingTimeInterval(seconds)
            let pid = process.processIdentifier
            while Date() < deadline {
                if !process.isRunning { return process.terminationStatus }
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid {
                    return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return nil
        }
        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        /// The process state and each thread's wait channel, for a child that does not exit.
        var diagnosis: String {
            let pid = process.processIdentifier
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let state = status.split(separator: "\n").first { $0.hasPrefix("State:") } ?? "?"
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let threads = tasks.prefix(40).map { t -> String in
                let comm = (try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/comm", encoding: .utf8)) ?? "?"
                let wchan = (try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/wchan", encoding: .utf8)) ?? "?"
                return comm.trimmingCharacters(in: .whitespacesAndNewlines) + ":" + wchan
            }
            return "pid \(pid) \(state), \(tasks.count) threads: \(threads.joined(separator: " "))"
        }
        deinit { signal(SIGKILL) }
    }

    static func waitForPort(_ port: Int, seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
            close(fd)
            if ok { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test("produce, two sinks (one SIGKILLed), ClickHouse stopped mid-run: exact rows and answers",
          .enabled(if: PipelineTests.available), .timeLimit(.minutes(10)))
    func pipeline() async throws {
        guard Self.petrel != nil else { throw ClickHouseTestServer.Missing(description: "missing: the petrel binary") }
        let clickhouse = try ClickHouseTestServer()
        defer { clickhouse.stop() }
        try await clickhouse.start()
        let dir = clickhouse.directory
        let port = try ClickHouseTestServer.freePort()
        let bootstrap = "127.0.0.1:\(port)"
        let broker = try Child(["broker", "--override", "listeners=PLAINTEXT://\(bootstrap)",
                                "--override", "advertised.listeners=PLAINTEXT://\(bootstrap)",
                                "--override", "log.dirs=\(dir.path)/kafka", "--override", "petrel.metrics.listener="],
                               log: dir.appendingPathComponent("broker.log"))
        defer { broker.signal(SIGKILL) }
        #expect(await Self.waitForPort(port, seconds: 60), "broker: \(broker.output.suffix(2000))")

        let database = "pipeline"
        let sinkArgs = ["clickhouse-sink", "--bootstrap-server", bootstrap, "--clickhouse-url", clickhouse.url,
                        "--clickhouse-database", database, "--batch-rows", "20000", "--flush-interval-ms", "200",
                        "--session-timeout-ms", "6000"]
        let sinkA = try Child(sinkArgs, log: dir.appendingPathComponent("sink-a.log"))
        let sinkB = try Child(sinkArgs, log: dir.appendingPathComponent("sink-b.log"))
        defer { sinkA.signal(SIGKILL); sinkB.signal(SIGKILL) }

        // 600 random chains from the default range, plus the chain that passes 2^64.
        let chains = 600, seed: UInt64 = 2026
        let producer = try Child(["collatz-producer", "--bootstrap-server", bootstrap, "--replication-factor", "1",
                                  "--partitions", "4", "--max-chains", "\(chains)", "--seed", "\(seed)"],
                                 log: dir.appendingPathComponent("producer.log"))
        let client = ClickHouseClient(configuration: .init(url: clickhouse.url, database: database, requestTimeout: .seconds(5)))
        func rows(final: Bool = false) async -> Int {
            let text = try? await client.execute("SELECT count() FROM \(database).data_series\(final ? " FINAL" : "") FORMAT TabSeparated")
            return Int(text?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
        }
        // Mid-run: kill -9 one sink once rows arrive, then stop ClickHouse for 3 s.
        let deadline = Date().addingTimeInterval(120)
        while await rows() <= 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        sinkA.signal(SIGKILL)
        clickhouse.kill()
        try await Task.sleep(for: .seconds(3))
        try await clickhouse.start()

        #expect(await producer.wait(seconds: 240) == 0, "producer: \(producer.output.suffix(2000))")
        let big = try Child(["collatz-producer", "--bootstrap-server", bootstrap, "--min", "12327829503",
                             "--max", "12327829503", "--max-chains", "1"], log: dir.appendingPathComponent("producer-big.log"))
        #expect(await big.wait(seconds: 60) == 0, "producer: \(big.diagnosis) \(big.output.suffix(2000))")

        // What must be in ClickHouse, computed here from the same draws.
        var rng = SplitMix64(seed: seed)
        var numbers = Set<UInt64>()
        for _ in 0..<chains { numbers.insert(UInt64.random(in: 1...99_999_999_999_999, using: &rng)) }
        numbers.insert(12_327_829_503)
        let expected = try InMemoryAnswersStore(startNumbers: numbers)
        let expectedRows = expected.chains.values.reduce(0) { $0 + $1.count }

        let drained = Date().addingTimeInterval(240)
        while await rows(final: true) < expectedRows && Date() < drained { try await Task.sleep(for: .milliseconds(250)) }
        let text = try await client.execute("SELECT number, step, value_text FROM \(database).data_series FINAL FORMAT TabSeparated")
        var stored = [UInt64: [UInt32: UInt128]]()
        var count = 0
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t")
            stored[UInt64(f[0])!, default: [:]][UInt32(f[1])!] = UInt128(decimalDigits: f[2])!
            count += 1
        }
        #expect(count == expectedRows, "rows in ClickHouse; sink B: \(sinkB.output.suffix(3000))")
        #expect(Set(stored.keys) == numbers)
        for (n, values) in expected.chains {
            let got = (0..<values.count).map { stored[n]?[UInt32($0)] }
            #expect(got == values.map { Optional($0) }, "chain of \(n)")
        }
        let store = ClickHouseAnswersStore(client: client, schema: try ClickHouseSchema(database: database))
        #expect(try await store.longestChain() == expected.longestChain())
        #expect(try await store.highestValue() == expected.highestValue())
        #expect(try await store.highestValue()?.value == UInt128(decimalDigits: "20722398914405051728"))
        let x: UInt128 = 9232
        #expect(try await store.numbersPassingThrough(x, after: nil, offset: 0, limit: 10_000)
            == expected.numbersPassingThrough(x, after: nil, offset: 0, limit: 10_000))

        // The surviving sink stops cleanly on SIGTERM.
        sinkB.signal(SIGTERM)
        #expect(await sinkB.wait(seconds: 30) == 0, "sink B: \(sinkB.diagnosis) \(sinkB.output.suffix(2000))")
        #expect(sinkB.output.contains("clickhouse-sink: stopped"))
        print("pipeline: \(expectedRows) rows from \(numbers.count) chains, exact after a SIGKILLed sink and a ClickHouse outage")
    }

    @Test("three-node cluster (RF 3, acks=all): two sinks, exactly the produced rows, no duplicate answers",
          .enabled(if: PipelineTests.available), .timeLimit(.minutes(8)))
    func clusterPipeline() async throws {
        guard Self.petrel != nil else { throw ClickHouseTestServer.Missing(description: "missing: the petrel binary") }
        let clickhouse = try ClickHouseTestServer()
        defer { clickhouse.stop() }
        try await clickhouse.start()
        let dir = clickhouse.directory
        let base = try DemoCommandTests.freeRange(3)
        let controller = try DemoCommandTests.freeRange(3, avoiding: Set(base..<(base + 3)))
        let bootstrap = (0..<3).map { "127.0.0.1:\(base + $0)" }.joined(separator: ",")
        let cluster = try Child(["cluster", "--nodes", "3", "--data-dir", "\(dir.path)/cluster", "--base-port", "\(base)",
                                 "--controller-base-port", "\(controller)", "--log-level", "warning"],
                                log: dir.appendingPathComponent("cluster.log"))
        defer { cluster.signal(SIGKILL) }
        let up = Date().addingTimeInterval(90)
        while !cluster.output.contains("\n\(bootstrap)\n") && Date() < up && cluster.process.isRunning {
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(cluster.output.contains("\n\(bootstrap)\n"), "cluster: \(cluster.output.suffix(3000))")

        let database = "cluster_pipeline"
        let sinkArgs = ["clickhouse-sink", "--bootstrap-server", bootstrap, "--clickhouse-url", clickhouse.url,
                        "--clickhouse-database", database, "--batch-rows", "20000", "--flush-interval-ms", "200"]
        // No sink is killed here: the default session timeout (45 s), so that a loaded machine
        // (seen: COORDINATOR_NOT_AVAILABLE and rebalances with 6 s) does not churn the group.
        let sinkA = try Child(sinkArgs, log: dir.appendingPathComponent("sink-a.log"))
        let sinkB = try Child(sinkArgs, log: dir.appendingPathComponent("sink-b.log"))
        defer { sinkA.signal(SIGKILL); sinkB.signal(SIGKILL) }

        let chains = 400, seed: UInt64 = 77
        let producer = try Child(["collatz-producer", "--bootstrap-server", bootstrap, "--replication-factor", "3",
                                  "--partitions", "4", "--max-chains", "\(chains)", "--seed", "\(seed)"],
                                 log: dir.appendingPathComponent("producer.log"))
        #expect(await producer.wait(seconds: 240) == 0, "producer: \(producer.diagnosis) \(producer.output.suffix(2000))")

        var rng = SplitMix64(seed: seed)
        var numbers = Set<UInt64>()
        for _ in 0..<chains { numbers.insert(UInt64.random(in: 1...99_999_999_999_999, using: &rng)) }
        let expected = try InMemoryAnswersStore(startNumbers: numbers)
        let expectedRows = expected.chains.values.reduce(0) { $0 + $1.count }
        // The producer published exactly one record per step.
        #expect(producer.output.contains("records=\(expectedRows) "), "producer: \(producer.output.suffix(1000))")

        let client = ClickHouseClient(configuration: .init(url: clickhouse.url, database: database, requestTimeout: .seconds(5)))
        func scalar(_ sql: String) async -> Int {
            let text = try? await client.execute(sql + " FORMAT TabSeparated")
            return Int(text?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
        }
        let drained = Date().addingTimeInterval(240)
        while await scalar("SELECT count() FROM \(database).data_series FINAL") < expectedRows && Date() < drained {
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(await scalar("SELECT count() FROM \(database).data_series FINAL") == expectedRows,
                "sink A: \(sinkA.output.suffix(2000)) sink B: \(sinkB.output.suffix(2000))")
        #expect(await scalar("SELECT count() FROM (SELECT number, step FROM \(database).data_series FINAL GROUP BY number, step HAVING count() > 1)") == 0)
        let text = try await client.execute("SELECT number, step, value_text FROM \(database).data_series FINAL FORMAT TabSeparated")
        var stored = [UInt64: [UInt32: UInt128]]()
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t")
            stored[UInt64(f[0])!, default: [:]][UInt32(f[1])!] = UInt128(decimalDigits: f[2])!
        }
        #expect(Set(stored.keys) == numbers)
        for (n, values) in expected.chains {
            #expect((0..<values.count).map { stored[n]?[UInt32($0)] } == values.map { Optional($0) }, "chain of \(n)")
        }
        // The answers, with no number twice however often a batch was replayed.
        let store = ClickHouseAnswersStore(client: client, schema: try ClickHouseSchema(database: database))
        #expect(try await store.longestChain() == expected.longestChain())
        #expect(try await store.highestValue() == expected.highestValue())
        for x: UInt128 in [16, 9232, 1] {
            let got = try await store.numbersPassingThrough(x, after: nil, offset: 0, limit: 10_000)
            let want = try await expected.numbersPassingThrough(x, after: nil, offset: 0, limit: 10_000)
            #expect(got == want, "part/\(x)")
            #expect(Set(got).count == got.count, "part/\(x) lists a number twice")
        }

        sinkA.signal(SIGTERM)
        sinkB.signal(SIGTERM)
        #expect(await sinkA.wait(seconds: 60) == 0, "sink A: \(sinkA.diagnosis) \(sinkA.output.suffix(2000))")
        #expect(await sinkB.wait(seconds: 60) == 0, "sink B: \(sinkB.diagnosis) \(sinkB.output.suffix(2000))")
        cluster.signal(SIGTERM)
        #expect(await cluster.wait(seconds: 60) == 0, "cluster: \(cluster.output.suffix(2000))")
        print("cluster pipeline: \(expectedRows) rows from \(numbers.count) chains through 3 nodes, exact, no duplicates")
    }
}
