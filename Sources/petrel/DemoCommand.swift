import ArgumentParser
import Collatz
import Foundation
import KafkaClient
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `petrel demo`: the Collatz pipeline on this machine, in one command.
///
/// Starts, as child processes of this executable: a three-node cluster (the `petrel cluster`
/// code: `ClusterLayout`, `ClusterSupervisor`), then creates `conjecture.data` (4 partitions,
/// RF 3), then `petrel api`, `petrel clickhouse-sink` and `petrel collatz-producer`. ClickHouse
/// is the one at `--clickhouse-url`; when none answers there and the URL is local, an installed
/// `clickhouse-server` is started with its data under `<data-dir>/clickhouse`. Every child
/// line is printed with a prefix (`[node 2]`, `[sink]`, `[clickhouse]`).
///
/// Stopping (Ctrl-C, SIGTERM, SIGHUP, `--duration` elapsed, or a child that dies): producer
/// first, then the sink (which flushes and commits), the API, the cluster and the ClickHouse it
/// started, each with SIGTERM and SIGKILL after a timeout; a second Ctrl-C kills everything at
/// once. No child outlives the demo.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the Collatz pipeline locally: a 3-node cluster, a producer, a ClickHouse sink and the answers API.",
        discussion: """
            Everything runs as child processes of this petrel; Ctrl-C stops them all. Data stays in \
            --data-dir (cluster logs in <data-dir>/cluster, a ClickHouse started by the demo in \
            <data-dir>/clickhouse): run the demo again to carry on where it stopped, delete the \
            directory to start afresh.

            ClickHouse: the one at --clickhouse-url (default http://127.0.0.1:8123); when none answers \
            there, an installed clickhouse-server (Debian: apt-get install clickhouse-server) is started \
            on that port.
            """)

    @Option(help: "Directory for the cluster's logs and a ClickHouse started by the demo; created if missing.")
    var dataDir: String = "./petrel-demo"

    @Option(help: "Port of the answers API (on 127.0.0.1).")
    var apiPort: Int = 8000

    @Option(name: .customLong("clickhouse-url"),
            help: "ClickHouse HTTP interface. When none answers there and it is local, an installed clickhouse-server is started on its port.")
    var clickHouseURL: String = "http://127.0.0.1:8123"

    @Option(help: "Records per second for the producer (0: as fast as it can).")
    var rate: Double = 20_000

    @Option(help: "Stop by itself after this many seconds of running (default: until Ctrl-C).")
    var duration: Double?

    @Option(help: "Client port of node 1 (nodes 2 and 3: + 1, + 2).")
    var basePort: Int = 9092

    @Option(help: "Controller (quorum) port of node 1. Default: base-port + 10000.")
    var controllerBasePort: Int?

    @Option(help: "Log level of the workers (trace ... critical).")
    var logLevel: String = "info"

    @Option(help: "Log level of the three nodes.")
    var brokerLogLevel: String = "warning"

    @Option(help: "Seconds each process gets between SIGTERM and SIGKILL when stopping.")
    var stopTimeout: Double = 15

    static let topic = "conjecture.data"
    static let database = "collatz"

    mutating func validate() throws {
        guard (1...65535).contains(apiPort) else { throw ValidationError("--api-port \(apiPort): expected 1...65535") }
        guard rate >= 0, rate.isFinite else { throw ValidationError("--rate \(rate): expected a number ≥ 0") }
        if let duration, !(duration > 0 && duration.isFinite) {
            throw ValidationError("--duration \(duration): expected a positive number of seconds")
        }
        for (flag, level) in [("--log-level", logLevel), ("--broker-log-level", brokerLogLevel)]
        where !ClusterLayout.logLevels.contains(level) {
            throw ValidationError("\(flag) \(level): expected one of \(ClusterLayout.logLevels.joined(separator: ", "))")
        }
        guard let url = URL(string: clickHouseURL), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ValidationError("--clickhouse-url \(clickHouseURL): expected http://host:port")
        }
        guard stopTimeout > 0 else { throw ValidationError("--stop-timeout must be positive") }
    }

    /// Ctrl-C and friends: the first asks for an orderly stop, the second kills.
    final class StopState: @unchecked Sendable {
        private let lock = NSLock()
        private var signals = 0
        var requested: Bool { lock.withLock { signals > 0 } }
        /// Returns how many signals came so far.
        func signal() -> Int { lock.withLock { signals += 1; return signals } }
    }

    func run() async throws {
        let root = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        let layout = try ClusterLayout(nodes: 3, dataDir: root + "/cluster", basePort: basePort,
                                       controllerBasePort: controllerBasePort, metricsBasePort: nil, overrides: [])
        try layout.prepareDataDir()
        try layout.checkPortsFree()
        guard ClusterLayout.canBind(port: apiPort) else {
            throw ValidationError("127.0.0.1:\(apiPort) is already in use: choose another --api-port")
        }
        let executable = ClusterLayout.selfExecutable()
        let say: @Sendable (String) -> Void = { text in ClusterOutput.line("[demo] \(text)", to: STDOUT_FILENO) }
        let fail: @Sendable (String) -> Void = { text in ClusterOutput.line("[demo] error: \(text)", to: STDERR_FILENO) }

        // ClickHouse first: without it there is no point starting anything.
        var clickHouse: LocalClickHouse?
        if await LocalClickHouse.answers(url: clickHouseURL) {
            say("ClickHouse answers at \(clickHouseURL): using it (database \(Self.database))")
        } else {
            guard let port = LocalClickHouse.localPort(of: clickHouseURL) else {
                fail("no ClickHouse answers at \(clickHouseURL), and the demo starts one only for a local http:// URL.\n\(LocalClickHouse.installHint)")
                throw ExitCode(1)
            }
            guard let binary = LocalClickHouse.findBinary() else {
                fail("no ClickHouse answers at \(clickHouseURL) and no clickhouse-server is installed.\n\(LocalClickHouse.installHint)")
                throw ExitCode(1)
            }
            guard ClusterLayout.canBind(port: port) else {
                fail("port \(port) of \(clickHouseURL) is taken by something that is not ClickHouse: choose another --clickhouse-url")
                throw ExitCode(1)
            }
            clickHouse = LocalClickHouse(binary: binary, directory: root + "/clickhouse", port: port)
        }

        let stop = StopState()
        let children = ChildGroup(status: say)
        let cluster = ClusterSupervisor(layout: layout, executable: executable, logLevel: brokerLogLevel,
                                        restart: false, stopTimeout: stopTimeout)
        ClusterSignals.install { signo in
            let count = stop.signal()
            let name = String(cString: strsignal(signo))
            if count == 1 {
                say("\(name): stopping everything (again to kill at once)")
            } else {
                say("\(name) again: SIGKILL to every process")
                children.killAll()
                cluster.killAll()
            }
        }

        var clickHouseChild: ChildGroup.Child?
        var clean = true
        var failed = false
        var producer: ChildGroup.Child?, sink: ChildGroup.Child?, api: ChildGroup.Child?
        var started = false

        // Start everything; any failure or a signal leads to the common stop below.
        startup: do {
            if let clickHouse {
                do {
                    try clickHouse.writeConfig()
                    clickHouseChild = try children.start(name: "clickhouse", executable: clickHouse.binary,
                                                         arguments: clickHouse.arguments)
                } catch {
                    fail("cannot start \(clickHouse.binary): \(error)")
                    failed = true
                    break startup
                }
                say("starting \(clickHouse.binary) (pid \(clickHouseChild!.pid)) on 127.0.0.1:\(clickHouse.port), data in \(clickHouse.directory)")
                let deadline = Date().addingTimeInterval(60)
                var up = false
                while !stop.requested && Date() < deadline && children.unexpectedExits.isEmpty {
                    if await LocalClickHouse.answers(url: clickHouseURL) { up = true; break }
                    try? await Task.sleep(nanoseconds: 200_000_000)
                }
                if stop.requested { break startup }
                guard up else {
                    fail("clickhouse-server did not answer at \(clickHouseURL) within 60 s: \(clickHouse.logTail)")
                    failed = true
                    break startup
                }
                say("ClickHouse answers at \(clickHouseURL)")
            }

            say("starting a 3-node cluster, data in \(layout.dataDir)")
            for node in 1...3 {
                do {
                    try cluster.start(node: node)
                } catch {
                    fail("cannot start node \(node): \(error)")
                    failed = true
                    break startup
                }
            }
            let deadline = Date().addingTimeInterval(60)
            var listening = false
            while !stop.requested && !cluster.allExited && Date() < deadline {
                if (1...3).allSatisfy({ ClusterLayout.acceptsConnections(port: layout.clientPort(node: $0)) }) {
                    listening = true
                    break
                }
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
            if stop.requested { break startup }
            guard listening else {
                fail("the cluster's nodes did not all accept connections within 60 s")
                failed = true
                break startup
            }

            // The topic: 4 partitions, RF 3 (retried while the quorum elects its first leader and
            // the nodes register). A fresh client per attempt: a client whose first metadata came
            // before every node had registered was seen failing with "node 2 is not in the
            // cluster metadata" for over a minute.
            var created = false
            var lastError = ""
            let servers = layout.bootstrap.split(separator: ",").map(String.init)
            let topicDeadline = Date().addingTimeInterval(60)
            while !stop.requested && Date() < topicDeadline {
                var config = ClientConfiguration(bootstrapServers: servers)
                config.clientId = "petrel-demo"
                config.requestTimeoutMs = 10_000
                let client = KafkaClient(config, logger: Logger(label: "petrel.demo", factory: { _ in SwiftLogNoOpLogHandler() }))
                do {
                    try await KafkaAdmin(client: client).createTopics(
                        [NewTopic(name: Self.topic, partitions: 4, replicationFactor: 3)], ignoreExisting: true)
                    created = true
                } catch {
                    lastError = "\(error)"
                }
                await client.shutdown()
                if created { break }
                try? await Task.sleep(nanoseconds: 500_000_000)
            }
            if stop.requested { break startup }
            guard created else {
                fail("cannot create \(Self.topic): \(lastError)")
                failed = true
                break startup
            }
            say("topic \(Self.topic): 4 partitions, replication factor 3")

            var env = ProcessInfo.processInfo.environment
            env.removeValue(forKey: "PETREL_METRICS_LISTENER")
            let bootstrap = layout.bootstrap
            do {
                api = try children.start(name: "api", executable: executable, arguments: [
                    "api", "--host", "127.0.0.1", "--port", "\(apiPort)", "--clickhouse-url", clickHouseURL,
                    "--clickhouse-database", Self.database, "--log-level", logLevel,
                ], environment: env)
                sink = try children.start(name: "sink", executable: executable, arguments: [
                    "clickhouse-sink", "--bootstrap-server", bootstrap, "--topic", Self.topic, "--clickhouse-url", clickHouseURL,
                    "--clickhouse-database", Self.database, "--log-level", logLevel,
                ], environment: env)
                producer = try children.start(name: "producer", executable: executable, arguments: [
                    "collatz-producer", "--bootstrap-server", bootstrap, "--topic", Self.topic, "--partitions", "4",
                    "--replication-factor", "3", "--rate", rate == rate.rounded() ? "\(Int(rate))" : "\(rate)", "--log-level", logLevel,
                ], environment: env)
            } catch {
                fail("cannot start the workers: \(error)")
                failed = true
                break startup
            }
            say("started: api (pid \(api!.pid)), clickhouse-sink (pid \(sink!.pid)), collatz-producer (pid \(producer!.pid))")
            started = true
        }

        let store = ClickHouseAnswersStore(
            client: ClickHouseClient(configuration: .init(url: clickHouseURL, database: Self.database, requestTimeout: .seconds(5))),
            schema: try ClickHouseSchema(database: Self.database))
        if started {
            let end = duration.map { Date().addingTimeInterval($0) }
            var printed = false
            var lastProgress = Date()
            var lastRows: Int?
            let base = "http://127.0.0.1:\(apiPort)"
            while !stop.requested && children.unexpectedExits.isEmpty && !cluster.allExited {
                if let end, Date() >= end {
                    say("--duration \(Self.seconds(duration!)) s elapsed: stopping")
                    break
                }
                // Once the API listens and the first chains have landed: where to look.
                if !printed, ClusterLayout.acceptsConnections(port: apiPort),
                   let longest = try? await store.longestChain() {
                    printed = true
                    Self.printGuide(base: base, bootstrap: layout.bootstrap, clickHouse: clickHouseURL,
                                    startedClickHouse: clickHouse != nil, longest: longest, dataDir: root)
                }
                if Date().timeIntervalSince(lastProgress) >= 15 {
                    let rows = Int((try? await store.client.execute(
                        "SELECT count() FROM \(Self.database).data_series FORMAT TabSeparated"))?
                        .trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
                    if let rows {
                        let rate = lastRows.map { String(format: " (%.0f rows/s)", Double(rows - $0) / Date().timeIntervalSince(lastProgress)) } ?? ""
                        say("\(rows) rows in ClickHouse\(rate)")
                        lastRows = rows
                    }
                    lastProgress = Date()
                }
                try? await Task.sleep(nanoseconds: 200_000_000)
            }
            let died = children.unexpectedExits
            if !died.isEmpty {
                fail("\(died.joined(separator: ", ")) exited unexpectedly: stopping everything")
                failed = true
            } else if cluster.allExited && !stop.requested {
                fail("every node of the cluster has exited: stopping everything")
                failed = true
            }
        }

        // The orderly stop: producer, sink (flush, commit), API, cluster, our ClickHouse.
        say("stopping: producer, sink, api, cluster\(clickHouseChild != nil ? ", clickhouse" : "")")
        for child in [producer, sink, api].compactMap({ $0 }) {
            if !(await children.stop(child, timeout: child === sink ? max(stopTimeout, 30) : stopTimeout)) { clean = false }
        }
        if !(await cluster.stopAll()) { clean = false }
        if let clickHouseChild, !(await children.stop(clickHouseChild, timeout: max(stopTimeout, 20))) { clean = false }
        if cluster.unexpectedExits > 0 { failed = true }
        try? await Task.sleep(nanoseconds: 100_000_000)  // the pumps' last lines
        say(clean && !failed ? "stopped; data kept in \(root)" : "stopped (\(failed ? "after a failure" : "some processes had to be killed"))")
        if failed || !clean { throw ExitCode(1) }
    }

    static func seconds(_ d: Double) -> String { d == d.rounded() ? "\(Int(d))" : "\(d)" }

    static func printGuide(base: String, bootstrap: String, clickHouse: String, startedClickHouse: Bool,
                           longest: LongestChain, dataDir: String) {
        // A value on the longest chain (its second step), so that /part answers at least one number.
        let x = (try? CollatzChain.values(from: UInt128(longest.number)).dropFirst().first) ?? 16
        let text = """

            ──────────── Petrel Collatz demo: running ────────────
              cluster     \(bootstrap)  (3 nodes; kcat -b \(bootstrap) -L)
              topic       \(topic)  (4 partitions, RF 3)
              ClickHouse  \(clickHouse)  (database \(database)\(startedClickHouse ? ", started by the demo" : ""))
              data        \(dataDir)

            Open in a browser:
              \(base)/docs                 Swagger UI
              \(base)/plot/\(longest.number)?format=svg     the longest chain so far (format=png for a PNG)

            The four questions:
              curl \(base)/longest_step_chain
              curl \(base)/highest_value
              curl '\(base)/part/\(x)?limit=10'
              curl -o chain.svg \(base)/plot/\(longest.number)

            Ctrl-C stops everything.
            ───────────────────────────────────────────────────────

            """
        ClusterOutput.write(Data(text.utf8), to: STDOUT_FILENO)
    }
}
