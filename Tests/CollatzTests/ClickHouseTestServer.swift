import Collatz
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A private ClickHouse server for one test: Debian's `clickhouse-server` (18.16) run as a
/// plain process on 127.0.0.1 with its own config, data directory and a free HTTP port (no
/// native TCP port, no interserver port). Stopped and deleted by `stop()`.
final class ClickHouseTestServer: @unchecked Sendable {
    static let environment = ProcessInfo.processInfo.environment
    static let requireEverything = environment["PETREL_CI"] == "1"

    static let binary: String? = {
        for dir in (environment["PATH"] ?? "").split(separator: ":") + ["/usr/sbin", "/usr/bin"] {
            let path = "\(dir)/clickhouse-server"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }()

    static let missing: String? = binary == nil
        ? "clickhouse-server (apt-get install -y clickhouse-server clickhouse-client)" : nil

    /// Enabled when the server is installed, or under PETREL_CI=1 (so that the test fails).
    static var available: Bool {
        guard let missing else { return true }
        if requireEverything {
            print("PETREL_CI=1: running although \(missing) is missing, so that the test fails")
            return true
        }
        print("SKIP: ClickHouse tests need \(missing) (set PETREL_CI=1 to make this a failure)")
        return false
    }

    struct Missing: Error, CustomStringConvertible { var description: String }

    let directory: URL
    let port: Int
    private var process: Process?

    var url: String { "http://127.0.0.1:\(port)" }

    init() throws {
        guard Self.binary != nil else { throw Missing(description: "missing: \(Self.missing ?? "")") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-clickhouse-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try Self.freePort()
        let d = directory.path
        let config = """
            <?xml version="1.0"?>
            <yandex>
                <logger><level>warning</level><log>\(d)/server.log</log><errorlog>\(d)/server.err.log</errorlog></logger>
                <http_port>\(port)</http_port>
                <listen_host>127.0.0.1</listen_host>
                <path>\(d)/data/</path>
                <tmp_path>\(d)/tmp/</tmp_path>
                <user_files_path>\(d)/user_files/</user_files_path>
                <format_schema_path>\(d)/format_schemas/</format_schema_path>
                <mark_cache_size>268435456</mark_cache_size>
                <users_config>users.xml</users_config>
                <default_profile>default</default_profile>
                <default_database>default</default_database>
                <mlock_executable>false</mlock_executable>
                <timezone>UTC</timezone>
            </yandex>
            """
        let users = """
            <?xml version="1.0"?>
            <yandex>
                <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
                <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
                    <profile>default</profile><quota>default</quota></default></users>
                <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
                    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
            </yandex>
            """
        try config.write(to: directory.appendingPathComponent("config.xml"), atomically: true, encoding: .utf8)
        try users.write(to: directory.appendingPathComponent("users.xml"), atomically: true, encoding: .utf8)
    }

    /// Starts the server and waits until it answers `SELECT 1`.
    func start() async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary!)
        p.arguments = ["--config-file=\(directory.appendingPathComponent("config.xml").path)"]
        p.currentDirectoryURL = directory
        let log = directory.appendingPathComponent("stdout.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        process = p
        let client = ClickHouseClient(configuration: .init(url: url, requestTimeout: .seconds(2)))
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if (try? await client.ping()) != nil { return }
            guard p.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOf: directory.appendingPathComponent("server.err.log"), encoding: .utf8)) ?? ""
        throw Missing(description: "clickhouse-server did not answer on \(url): \(text.suffix(2000)) \(errors.suffix(2000))")
    }

    /// SIGTERM, then SIGKILL after 20 s; the data directory stays (restart with `start()`).
    func kill() {
        guard let p = process, p.isRunning else { return }
        p.terminate()
        let deadline = Date().addingTimeInterval(20)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        process = nil
    }

    func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Missing(description: "socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        guard bound == 0 else { throw Missing(description: "bind() failed") }
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { throw Missing(description: "getsockname() failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
