import Collatz
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `petrel demo` as a user runs it: the built binary with its own ClickHouse (started by the
/// demo on a free port: nothing answers at the URL given), a three-node cluster on free ports,
/// the producer, the sink and the API. The four answers are fetched with curl once rows arrive
/// and checked against chains computed here; the demo stops by itself (`--duration`) and no
/// process it started may be left.
@Suite("petrel demo", .serialized)
struct DemoCommandTests {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static let curl: String? = ["/usr/bin/curl", "/bin/curl", "/usr/local/bin/curl"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Three consecutive free loopback ports (the cluster's client or controller ports).
    static func freeRange(_ count: Int, avoiding: Set<Int> = []) throws -> Int {
        for _ in 0..<200 {
            let base = Int.random(in: 20_000...40_000)
            let ports = Set(base..<(base + count))
            if ports.isDisjoint(with: avoiding), ports.allSatisfy(canBind) { return base }
        }
        throw Failure(description: "no \(count) consecutive free ports")
    }

    static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    struct HTTPAnswer {
        var status: Int
        var contentType: String
        var body: Data
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// `curl -s` of `url`: status, content type and body.
    static func get(_ url: String) throws -> HTTPAnswer {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-demo-curl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bodyFile = dir.appendingPathComponent("body").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: curl!)
        p.arguments = ["-s", "--max-time", "10", "-o", bodyFile, "-w", "%{http_code} %{content_type}", url]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let meta = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // Reap curl ourselves, bounded: Foundation's `Process` on Linux was seen leaving exited
        // children as zombies (and `waitUntilExit()` spinning forever) when several processes
        // come and go at once.
        let deadline = Date().addingTimeInterval(15)
        var raw: Int32 = 0
        while p.isRunning && waitpid(p.processIdentifier, &raw, WNOHANG) != p.processIdentifier && Date() < deadline {
            usleep(10_000)
        }
        let parts = meta.split(separator: " ", maxSplits: 1).map(String.init)
        return HTTPAnswer(status: Int(parts.first ?? "") ?? 0, contentType: parts.count > 1 ? parts[1] : "",
                          body: FileManager.default.contents(atPath: bodyFile) ?? Data())
    }

    /// A JSON number or an exact decimal string.
    static func integer(_ v: Any?) -> UInt128? {
        if let s = v as? String { return UInt128(decimalDigits: s) }
        if let n = v as? NSNumber { return UInt128(decimalDigits: n.stringValue) }
        return nil
    }

    /// Processes whose command line mentions `text` (the demo's data directory).
    static func processes(mentioning text: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid -> String? in
            guard Int32(pid) != nil, Int32(pid) != getpid(),
                  let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let cmd = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return cmd.contains(text) ? "\(pid): \(cmd)" : nil
        }
    }

    /// A child pid still running a petrel or clickhouse program.
    static func alive(_ pid: Int32) -> String? {
        guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !raw.isEmpty else { return nil }
        let cmd = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        if stat.contains(") Z ") { return nil }
        return cmd.contains("petrel") || cmd.contains("clickhouse") ? "\(pid): \(cmd)" : nil
    }

    @Test("petrel demo --duration: cluster, producer, sink, API and its own ClickHouse; real answers; nothing left behind",
          .enabled(if: PipelineTests.available), .timeLimit(.minutes(4)))
    func demo() async throws {
        guard let petrel = PipelineTests.petrel else { throw Failure(description: "missing: the petrel binary") }
        guard ClickHouseTestServer.binary != nil else { throw Failure(description: "missing: \(ClickHouseTestServer.missing ?? "")") }
        guard Self.curl != nil else { throw Failure(description: "missing: curl (apt-get install -y curl)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data").path
        let apiPort = try ClickHouseTestServer.freePort()
        let chPort = try ClickHouseTestServer.freePort()
        let base = try Self.freeRange(3, avoiding: [apiPort, chPort])
        let controller = try Self.freeRange(3, avoiding: Set([apiPort, chPort] + Array(base..<(base + 3))))
        let duration = 30

        let started = Date()
        let demo = try PipelineTests.Child([
            "demo", "--data-dir", data, "--api-port", "\(apiPort)", "--clickhouse-url", "http://127.0.0.1:\(chPort)",
            "--base-port", "\(base)", "--controller-base-port", "\(controller)", "--duration", "\(duration)",
            "--rate", "20000",
        ], log: dir.appendingPathComponent("demo.log"))
        defer { demo.signal(SIGKILL) }

        // The guide is printed once the API listens and the first chains are in ClickHouse.
        let api = "http://127.0.0.1:\(apiPort)"
        let readyBy = Date().addingTimeInterval(90)
        while !demo.output.contains("The four questions:") && Date() < readyBy && demo.process.isRunning {
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(demo.output.contains("The four questions:"), "no guide printed: \(demo.output.suffix(4000))")
        #expect(demo.output.contains("curl \(api)/longest_step_chain"))
        #expect(demo.output.contains("curl \(api)/highest_value"))
        #expect(demo.output.contains("\(api)/part/"))
        #expect(demo.output.contains("\(api)/plot/"))
        #expect(demo.output.contains("\(api)/docs"))
        #expect(demo.output.contains("topic conjecture.data: 4 partitions, replication factor 3"))
        print("demo: ready after \(String(format: "%.1f", Date().timeIntervalSince(started))) s")

        // Rows keep arriving (and a chain may be half-inserted): retry until one consistent view.
        var problems = [String]()
        for attempt in 0..<15 {
            problems = []
            let longest = try Self.get("\(api)/longest_step_chain")
            let highest = try Self.get("\(api)/highest_value")
            guard longest.status == 200, highest.status == 200,
                  let ln = Self.integer(longest.json?["number"]), let ls = Self.integer(longest.json?["steps"]),
                  let hn = Self.integer(highest.json?["number"]), let hv = Self.integer(highest.json?["value_decimal"]) else {
                problems.append("answers: \(longest.status) \(longest.text) / \(highest.status) \(highest.text)")
                try await Task.sleep(for: .seconds(1))
                continue
            }
            let longSummary = try CollatzChain.summary(of: ln)
            if UInt128(longSummary.steps) != ls { problems.append("longest_step_chain: \(ln) has \(longSummary.steps) steps, API says \(ls)") }
            let highSummary = try CollatzChain.summary(of: hn)
            if highSummary.peak != hv { problems.append("highest_value: \(hn) peaks at \(highSummary.peak), API says \(hv)") }
            if Self.integer(highest.json?["value"]) != hv { problems.append("highest_value: value \(highest.text)") }

            // /part/{peak}: the numbers whose chains pass through it, hn among them.
            let part = try Self.get("\(api)/part/\(hv)?limit=100")
            let numbers = (part.json?["numbers"] as? [Any] ?? []).compactMap(Self.integer)
            if part.status != 200 || (hv != hn && !numbers.contains(hn)) {
                problems.append("part/\(hv): \(part.status) \(part.text.prefix(300)) lacks \(hn)")
            }
            for n in numbers where !(try CollatzChain.values(from: n).contains(hv)) || n == hv {
                problems.append("part/\(hv): \(n) does not pass through it")
            }

            // /plot/{n}: SVG and PNG of the longest chain.
            let svg = try Self.get("\(api)/plot/\(ln)")
            if svg.status != 200 || !svg.contentType.hasPrefix("image/svg+xml")
                || !svg.text.contains("Collatz chain of \(ln): \(longSummary.steps) steps") {
                problems.append("plot/\(ln): \(svg.status) \(svg.contentType) \(svg.text.prefix(300))")
            }
            let png = try Self.get("\(api)/plot/\(ln)?format=png")
            if png.status != 200 || png.contentType != "image/png" || !png.body.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
                problems.append("plot/\(ln)?format=png: \(png.status) \(png.contentType) \(png.body.count) bytes")
            }
            if problems.isEmpty {
                print("demo: longest \(ln) (\(ls) steps), highest \(hn) (peak \(hv)), part/\(hv): \(numbers.count) numbers; attempt \(attempt + 1)")
                break
            }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))\n\(demo.output.suffix(3000))")

        // It stops by itself, cleanly, and leaves nothing running.
        let status = await demo.wait(seconds: Double(duration) + 90)
        #expect(status == 0, "demo exit status \(status.map(String.init) ?? "none: still running"): \(demo.output.suffix(4000))")
        let output = demo.output
        #expect(output.contains("--duration \(duration) s elapsed: stopping"))
        #expect(output.contains("[demo] stopped; data kept in"))
        #expect(output.contains("collatz-producer: stopped"), "producer stopped on SIGTERM")
        #expect(output.contains("clickhouse-sink: stopped"), "sink stopped on SIGTERM")
        #expect(!output.contains("SIGKILL"), "\(output.suffix(3000))")
        let pids = Self.pids(in: output)
        #expect(pids.count >= 7, "pids of 3 nodes, ClickHouse, API, sink, producer: \(pids)")
        try await Task.sleep(for: .milliseconds(500))
        let left = pids.compactMap(Self.alive) + Self.processes(mentioning: data)
        #expect(left.isEmpty, "left running: \(left)")
        print("demo: exited \(status.map(String.init) ?? "?") after \(String(format: "%.1f", Date().timeIntervalSince(started))) s; \(pids.count) child processes, none left")
    }

    @Test("no ClickHouse and none that the demo could start: a clear message and exit status 1",
          .enabled(if: PipelineTests.petrel != nil || ClickHouseTestServer.requireEverything), .timeLimit(.minutes(1)))
    func remoteClickHouseMissing() async throws {
        guard PipelineTests.petrel != nil else { throw Failure(description: "missing: the petrel binary") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try Self.freeRange(3)
        // 192.0.2.1 (TEST-NET-1): nothing answers, and it is not local.
        let demo = try PipelineTests.Child([
            "demo", "--data-dir", dir.appendingPathComponent("data").path, "--clickhouse-url", "http://192.0.2.1:8123",
            "--base-port", "\(base)", "--api-port", "\(try ClickHouseTestServer.freePort())",
        ], log: dir.appendingPathComponent("demo.log"))
        let status = await demo.wait(seconds: 30)
        #expect(status == 1, "\(demo.output)")
        #expect(demo.output.contains("no ClickHouse answers at http://192.0.2.1:8123"))
        #expect(demo.output.contains("apt-get install -y clickhouse-server"))
        #expect(!demo.output.contains("starting a 3-node cluster"))
    }

    static func pids(in output: String) -> [Int32] {
        var pids = [Int32]()
        var rest = Substring(output)
        while let r = rest.range(of: "pid ") {
            rest = rest[r.upperBound...]
            let digits = rest.prefix { $0.isNumber }
            if let pid = Int32(digits) { pids.append(pid) }
        }
        return Array(Set(pids))
    }
}
