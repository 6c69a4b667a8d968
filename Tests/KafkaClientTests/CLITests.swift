import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `petrel` client tools (topics, groups, produce, consume, perf) end to end: the built
/// binary as a subprocess against a Petrel broker started in this process.
///
/// The binary is looked up next to the test bundle (`<scratch>/<triple>/debug/petrel`, which
/// `swift test` builds); if it is missing it is built with
/// `swift build --product petrel --scratch-path <scratch>-cli-tool` (`swift test` holds the lock
/// on its own scratch path). When that fails the tests skip with the reason, or fail under PETREL_CI=1.
@Suite("petrel CLI", .serialized)
struct CLITests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
    }

    static let binary: Result<String, ClientTestEnvironment.Missing> = {
        let fm = FileManager.default
        let bundleDir = URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0]).deletingLastPathComponent()
        var dirs = [bundleDir]
        // <scratch>/<triple>/debug/PetrelPackageTests.xctest(/...)
        var d = bundleDir
        for _ in 0..<4 {
            if d.lastPathComponent == "debug" { dirs.append(d); break }
            d = d.deletingLastPathComponent()
        }
        for dir in dirs {
            let p = dir.appendingPathComponent("petrel").path
            if fm.isExecutableFile(atPath: p) { return .success(p) }
        }
        // Build it (another scratch path: `swift test` holds the lock on its own).
        var scratch = d.deletingLastPathComponent()
        if scratch.lastPathComponent.contains("-linux-") || scratch.lastPathComponent.contains("-apple-") {
            scratch = scratch.deletingLastPathComponent()
        }
        let toolScratch = scratch.path + "-cli-tool"
        print("CLITests: petrel binary not found next to \(bundleDir.path); building it in \(toolScratch)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["swift", "build", "--product", "petrel", "--scratch-path", toolScratch]
        p.currentDirectoryURL = ClientTestEnvironment.packageRoot
        do { try p.run() } catch { return .failure(.init(description: "cannot run swift build: \(error)")) }
        let buildStatus = ProcessWait.wait(p, timeout: 1800)
        let built = toolScratch + "/debug/petrel"
        guard buildStatus == 0, fm.isExecutableFile(atPath: built) else {
            return .failure(.init(description: "the petrel binary (swift build --product petrel failed)"))
        }
        return .success(built)
    }()

    /// The binary, or nil (test skipped with a printed reason; a failure under PETREL_CI=1).
    static func petrel() throws -> String? {
        switch binary {
        case let .success(path): return path
        case let .failure(missing):
            guard ClientTestEnvironment.available(missing.description) else { return nil }
            throw missing
        }
    }

    /// Runs petrel with `arguments`, `stdin` as its input, killing it after `timeout` seconds.
    static func run(_ bin: String, _ arguments: [String], stdin: String? = nil, timeout: Double = 60) throws -> Run {
        let dir = NSTemporaryDirectory() + "petrel-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let inPath = dir + "/in", outPath = dir + "/out", errPath = dir + "/err"
        try (stdin ?? "").write(toFile: inPath, atomically: false, encoding: .utf8)
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = arguments
        p.standardInput = FileHandle(forReadingAtPath: inPath)
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        let start = Date()
        try p.run()
        guard let status = ProcessWait.wait(p, timeout: timeout) else {
            ProcessWait.kill(p)
            let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw ClientTestEnvironment.Missing(description: "petrel \(arguments.joined(separator: " ")) did not exit within \(timeout) s; stderr: \(err)")
        }
        let r = Run(
            status: status,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
            seconds: Date().timeIntervalSince(start))
        if r.status != 0 { print("petrel \(arguments.joined(separator: " ")) -> \(r.status)\n\(r.stderr)") }
        return r
    }

    @Test("topics: create, describe, list, alter, delete", .timeLimit(.minutes(3)))
    func topics() async throws {
        guard let bin = try Self.petrel() else { return }
        let broker = try await InProcessBroker.start()
        let b = ["--bootstrap-server", broker.bootstrap]
        var r = try Self.run(bin, ["topics"] + b + ["--create", "--topic", "cli-t", "--partitions", "2", "--replication-factor", "1", "--config", "retention.ms=60000"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Created topic cli-t."))
        r = try Self.run(bin, ["topics"] + b + ["--create", "--topic", "cli-t", "--partitions", "2"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("TOPIC_ALREADY_EXISTS"))
        r = try Self.run(bin, ["topics"] + b + ["--create", "--topic", "cli-t", "--if-not-exists"])
        #expect(r.status == 0)

        r = try Self.run(bin, ["topics"] + b + ["--describe", "--topic", "cli-t"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Topic: cli-t\tTopicId: "))
        #expect(r.stdout.contains("PartitionCount: 2\tReplicationFactor: 1\tConfigs: "))
        #expect(r.stdout.contains("retention.ms=60000"))
        #expect(r.stdout.contains("\tTopic: cli-t\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1"))
        #expect(r.stdout.contains("\tTopic: cli-t\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1"))

        r = try Self.run(bin, ["topics"] + b + ["--list"])
        #expect(r.status == 0)
        #expect(r.stdout.split(separator: "\n").contains("cli-t"))

        r = try Self.run(bin, ["topics"] + b + ["--alter", "--topic", "cli-t", "--partitions", "4"])
        #expect(r.status == 0)
        r = try Self.run(bin, ["topics"] + b + ["--describe", "--topic", "cli-t"])
        #expect(r.stdout.contains("PartitionCount: 4"))
        r = try Self.run(bin, ["topics"] + b + ["--alter", "--topic", "cli-t", "--partitions", "2"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("INVALID_PARTITIONS"))

        r = try Self.run(bin, ["topics"] + b + ["--delete", "--topic", "cli-t"])
        #expect(r.status == 0)
        r = try Self.run(bin, ["topics"] + b + ["--describe", "--topic", "cli-t"])
        #expect(r.status == 4)
        r = try Self.run(bin, ["topics"] + b + ["--list"])
        #expect(!r.stdout.split(separator: "\n").contains("cli-t"))
        r = try Self.run(bin, ["topics"] + b + ["--delete", "--topic", "cli-t"])
        #expect(r.status == 4)
        r = try Self.run(bin, ["topics"] + b + ["--delete", "--topic", "cli-t", "--if-exists"])
        #expect(r.status == 0)
        await broker.stop()
    }

    @Test("produce lines, consume them back", .timeLimit(.minutes(3)))
    func produceConsume() async throws {
        guard let bin = try Self.petrel() else { return }
        let broker = try await InProcessBroker.start()
        let b = ["--bootstrap-server", broker.bootstrap]
        #expect(try Self.run(bin, ["topics"] + b + ["--create", "--topic", "cli-pc", "--partitions", "1"]).status == 0)
        var r = try Self.run(bin, ["produce"] + b + ["--topic", "cli-pc", "--key-separator", ":"], stdin: "k1:hello\nk2:wor:ld\nplain\n")
        #expect(r.status == 0)
        r = try Self.run(bin, ["produce"] + b + ["--topic", "cli-pc", "--acks", "1", "--compression", "gzip", "--linger-ms", "0"], stdin: "zipped")
        #expect(r.status == 0)

        r = try Self.run(bin, ["consume"] + b + ["--topic", "cli-pc", "--from-beginning", "--exit-at-end", "--format", "%p/%o %k=%v\\n"])
        #expect(r.status == 0)
        #expect(r.stdout == "0/0 k1=hello\n0/1 k2=wor:ld\n0/2 =plain\n0/3 =zipped\n")
        #expect(r.stderr.contains("Processed a total of 4 messages"))

        r = try Self.run(bin, ["consume"] + b + ["--topic", "cli-pc", "--from-beginning", "--max-messages", "2", "--print-key", "--key-separator", ":"])
        #expect(r.stdout == "k1:hello\nk2:wor:ld\n")
        r = try Self.run(bin, ["consume"] + b + ["--topic", "cli-pc", "--partition", "0", "--offset", "2", "-e"])
        #expect(r.stdout == "plain\nzipped\n")
        r = try Self.run(bin, ["consume"] + b + ["--topic", "cli-pc", "--offset", "-1", "-e"])
        #expect(r.stdout == "zipped\n")
        // Nothing new after the end: exits at once with --exit-at-end, or after --timeout-ms of silence.
        r = try Self.run(bin, ["consume"] + b + ["--topic", "cli-pc", "-e"])
        #expect(r.status == 0 && r.stdout.isEmpty)
        r = try Self.run(bin, ["consume"] + b + ["--topic", "cli-pc", "--timeout-ms", "500"])
        #expect(r.status == 0 && r.stdout.isEmpty)

        // perf produce / consume on a small scale.
        r = try Self.run(bin, ["perf", "produce"] + b + ["--topic", "cli-pc", "--num-records", "2000", "--record-size", "50", "--acks", "1", "--latency-every", "10"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("2000 records sent"))
        #expect(r.stdout.contains("ms 99.9th."))
        r = try Self.run(bin, ["perf", "consume"] + b + ["--topic", "cli-pc", "--messages", "2004"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("2004 records consumed"))
        r = try Self.run(bin, ["perf", "consume"] + b + ["--topic", "cli-pc", "--messages", "3000", "--timeout-ms", "500"])
        #expect(r.status == 1)
        await broker.stop()
    }

    @Test("groups: describe with lag, reset offsets, delete", .timeLimit(.minutes(3)))
    func groups() async throws {
        guard let bin = try Self.petrel() else { return }
        let broker = try await InProcessBroker.start()
        let b = ["--bootstrap-server", broker.bootstrap]
        #expect(try Self.run(bin, ["topics"] + b + ["--create", "--topic", "cli-g", "--partitions", "1"]).status == 0)
        #expect(try Self.run(bin, ["produce"] + b + ["--topic", "cli-g"], stdin: "a\nb\nc\nd\ne\n").status == 0)
        // A group member reads 3 records and commits on exit.
        var r = try Self.run(bin, ["consume"] + b + ["--topic", "cli-g", "--group", "cli-grp", "--from-beginning", "--max-messages", "3"])
        #expect(r.status == 0)
        #expect(r.stdout == "a\nb\nc\n")

        r = try Self.run(bin, ["groups"] + b + ["--list"])
        #expect(r.stdout.split(separator: "\n").contains("cli-grp"))
        r = try Self.run(bin, ["groups"] + b + ["--describe", "--group", "cli-grp"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("GROUP"))
        #expect(r.stdout.contains("CURRENT-OFFSET"))
        #expect(r.stdout.contains("LOG-END-OFFSET"))
        #expect(r.stdout.contains("CONSUMER-ID"))
        let row = r.stdout.split(separator: "\n").first { $0.hasPrefix("cli-grp") }.map { $0.split(separator: " ").map(String.init) }
        #expect(row?.prefix(6) == ["cli-grp", "cli-g", "0", "3", "5", "2"])

        // The group resumes where it committed.
        r = try Self.run(bin, ["consume"] + b + ["--topic", "cli-g", "--group", "cli-grp", "-e"])
        #expect(r.stdout == "d\ne\n")

        r = try Self.run(bin, ["groups"] + b + ["--reset-offsets", "--group", "cli-grp", "--topic", "cli-g", "--to-offset", "1", "--dry-run"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("cli-grp  cli-g  0          1") || r.stdout.contains(" 1\n"))
        r = try Self.run(bin, ["groups"] + b + ["--describe", "--group", "cli-grp"])
        #expect(r.stdout.split(separator: "\n").first { $0.hasPrefix("cli-grp") }.map { $0.split(separator: " ").map(String.init) }?.prefix(6)
                == ["cli-grp", "cli-g", "0", "5", "5", "0"])
        r = try Self.run(bin, ["groups"] + b + ["--reset-offsets", "--group", "cli-grp", "--topic", "cli-g", "--to-earliest", "--execute"])
        #expect(r.status == 0)
        r = try Self.run(bin, ["groups"] + b + ["--describe", "--group", "cli-grp"])
        #expect(r.stdout.split(separator: "\n").first { $0.hasPrefix("cli-grp") }.map { $0.split(separator: " ").map(String.init) }?.prefix(6)
                == ["cli-grp", "cli-g", "0", "0", "5", "5"])
        r = try Self.run(bin, ["groups"] + b + ["--reset-offsets", "--group", "cli-grp", "--topic", "cli-g:0", "--to-offset", "4", "--execute"])
        #expect(r.status == 0)
        r = try Self.run(bin, ["consume"] + b + ["--topic", "cli-g", "--group", "cli-grp", "-e"])
        #expect(r.stdout == "e\n")
        r = try Self.run(bin, ["groups"] + b + ["--reset-offsets", "--group", "cli-grp", "--topic", "nope", "--to-latest", "--execute"])
        #expect(r.status == 4)

        // An active member: describe shows its member id and host; offsets cannot be reset, the group not deleted.
        let member = Process()
        member.executableURL = URL(fileURLWithPath: bin)
        member.arguments = ["consume"] + b + ["--topic", "cli-g", "--group", "cli-grp", "--timeout-ms", "20000"]
        member.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        member.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try member.run()
        var activeRow: [String]?
        for _ in 0..<100 {
            try await Task.sleep(for: .milliseconds(200))
            r = try Self.run(bin, ["groups"] + b + ["--describe", "--group", "cli-grp"])
            activeRow = r.stdout.split(separator: "\n").first { $0.hasPrefix("cli-grp") }.map { $0.split(separator: " ").map(String.init) }
            if let row = activeRow, row.count == 9, row[6] != "-" { break }
        }
        #expect(activeRow?.count == 9)
        #expect(activeRow?[6].hasPrefix("petrel-cli") == true, "\(activeRow ?? [])")
        #expect(activeRow?[7].contains("127.0.0.1") == true, "\(activeRow ?? [])")
        #expect(activeRow?[8] == "petrel-cli")
        r = try Self.run(bin, ["groups"] + b + ["--reset-offsets", "--group", "cli-grp", "--topic", "cli-g", "--to-earliest", "--execute"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("inactive"))
        r = try Self.run(bin, ["groups"] + b + ["--delete", "--group", "cli-grp"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("NON_EMPTY_GROUP"))
        ProcessWait.kill(member)

        // After the member is gone (killed: its session must expire, 10 s), the group can be deleted.
        var deleted = false
        for _ in 0..<100 where !deleted {
            r = try Self.run(bin, ["groups"] + b + ["--delete", "--group", "cli-grp"])
            deleted = r.status == 0
            if !deleted { try await Task.sleep(for: .milliseconds(300)) }
        }
        #expect(deleted)
        r = try Self.run(bin, ["groups"] + b + ["--describe", "--group", "cli-grp"])
        #expect(r.status == 4)
        r = try Self.run(bin, ["groups"] + b + ["--delete", "--group", "cli-grp"])
        #expect(r.status == 4)
        await broker.stop()
    }

    @Test("exit codes: bad flags 2, unreachable 3, unknown topic or group 4", .timeLimit(.minutes(3)))
    func exitCodes() async throws {
        guard let bin = try Self.petrel() else { return }
        // Bad flags: 2, before any connection.
        for args in [["topics", "--list"],
                     ["topics", "-b", "127.0.0.1:9", "--create"],
                     ["topics", "-b", "127.0.0.1:9", "--list", "--describe"],
                     ["topics", "-b", "127.0.0.1:9", "--list", "--no-such-flag"],
                     ["topics", "-b", "no-port", "--list"],
                     ["groups", "-b", "127.0.0.1:9", "--reset-offsets", "--group", "g", "--topic", "t"],
                     ["produce", "-b", "127.0.0.1:9", "--topic", "t", "--acks", "2"],
                     ["consume", "-b", "127.0.0.1:9", "--topic", "t", "--format", "%z"],
                     ["perf", "produce", "-b", "127.0.0.1:9", "--topic", "t", "--num-records", "0", "--record-size", "1"]] {
            let r = try Self.run(bin, args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.contains("Usage") || r.stderr.contains("Error"), "\(args): \(r.stderr)")
        }
        // --help documents the exit codes.
        let help = try Self.run(bin, ["topics", "--help"])
        #expect(help.status == 0 && help.stdout.contains("Exit codes"))

        // A closed port: 3, quickly.
        let port = try ClientTestEnvironment.freePort()
        for args in [["topics", "--list"], ["groups", "--list"], ["consume", "--topic", "t"], ["produce", "--topic", "t"],
                     ["perf", "consume", "--topic", "t", "--messages", "1"]] {
            let r = try Self.run(bin, args + ["--bootstrap-server", "127.0.0.1:\(port)", "--connect-timeout-ms", "3000"], timeout: 30)
            #expect(r.status == 3, "\(args)")
            #expect(r.stderr.contains("cannot reach any bootstrap broker"))
            #expect(r.seconds < 15)
        }
        // A listener that accepts but never answers: 3 within --connect-timeout-ms.
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(silent, 16)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(silent, $0, &len) } }
        let silentPort = Int(UInt16(bigEndian: addr.sin_port))
        defer { close(silent) }
        let r = try Self.run(bin, ["topics", "--list", "--bootstrap-server", "127.0.0.1:\(silentPort)", "--connect-timeout-ms", "2000"], timeout: 30)
        #expect(r.status == 3)
        #expect(r.seconds < 10)

        // Unknown topic / group: 4.
        let broker = try await InProcessBroker.start(["auto.create.topics.enable": "false"])
        let b = ["--bootstrap-server", broker.bootstrap]
        for args in [["consume", "--topic", "nope", "-e"], ["produce", "--topic", "nope"], ["topics", "--describe", "--topic", "nope"],
                     ["topics", "--alter", "--topic", "nope", "--partitions", "3"], ["groups", "--describe", "--group", "nope"],
                     ["perf", "produce", "--topic", "nope", "--num-records", "1", "--record-size", "1"]] {
            let r = try Self.run(bin, args + b, stdin: "x\n")
            #expect(r.status == 4, "\(args)")
        }
        #expect(try Self.run(bin, ["topics", "--create", "--topic", "x", "--partitions", "1"] + b).status == 0)
        let bad = try Self.run(bin, ["consume", "--topic", "x", "--partition", "7", "-e"] + b)
        #expect(bad.status == 4)
        await broker.stop()
    }
}
