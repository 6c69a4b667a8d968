import Collatz
import Foundation

/// A private `clickhouse-server` for `petrel demo` (and the pipeline benchmark): Debian's
/// binary run as a plain child process with its own config under `<directory>`, listening for
/// HTTP on 127.0.0.1:<port> only (no native TCP or interserver port). The same settings as the
/// tests' `ClickHouseTestServer`; the root element `<yandex>` is what 18.16 reads and current
/// releases still accept.
struct LocalClickHouse {
    let binary: String
    let directory: String
    let port: Int

    /// `clickhouse-server` on PATH, /usr/sbin or /usr/bin (Debian's packages), or nil.
    static func findBinary(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let dirs = (environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin"]
        for dir in dirs {
            let path = "\(dir)/clickhouse-server"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static let installHint = """
        Install ClickHouse, or point --clickhouse-url at one that runs:
          Debian/Ubuntu:  sudo apt-get install -y clickhouse-server clickhouse-client
          other systems:  https://clickhouse.com/docs/en/install
          Docker:         docker run -d -p 8123:8123 clickhouse/clickhouse-server
        `petrel demo` starts an installed clickhouse-server by itself when none answers on a local --clickhouse-url.
        """

    /// Writes config.xml and users.xml; the data stays between runs.
    func writeConfig() throws {
        let d = directory
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
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
                <users_config>\(d)/users.xml</users_config>
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
        try config.write(toFile: "\(d)/config.xml", atomically: true, encoding: .utf8)
        try users.write(toFile: "\(d)/users.xml", atomically: true, encoding: .utf8)
    }

    var arguments: [String] { ["--config-file=\(directory)/config.xml"] }

    /// The last lines of the server's logs, for an error message.
    var logTail: String {
        let err = (try? String(contentsOfFile: "\(directory)/server.err.log", encoding: .utf8)) ?? ""
        return String(err.suffix(1500))
    }

    /// True once `SELECT 1` answers at `url` (a 2 s timeout per attempt).
    static func answers(url: String) async -> Bool {
        let client = ClickHouseClient(configuration: .init(url: url, requestTimeout: .seconds(2)))
        return (try? await client.ping()) != nil
    }

    /// The port of a loopback http:// URL (default 8123), or nil for a remote or malformed one.
    static func localPort(of url: String) -> Int? {
        guard let u = URL(string: url), u.scheme == "http", let host = u.host else { return nil }
        guard ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) else { return nil }
        return u.port ?? 8123
    }
}
