import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `petrel cluster`: a local N-node cluster (default 3) as N real `petrel broker` child processes
/// of this same executable, each with `process.roles=broker,controller`, on 127.0.0.1.
///
/// Node i (1-based) listens for clients on `base-port + i - 1` and for the quorum on
/// `controller-base-port + i - 1`, keeps its data in `<data-dir>/node-i`, and gets the cluster
/// defaults `default.replication.factor=3`, `min.insync.replicas=2`,
/// `offsets.topic.replication.factor=3`, `num.partitions=1` (lower with fewer than 3 nodes);
/// `--override key=value` comes last and wins.  Every child line is printed prefixed with
/// `[node i]` (stdout to stdout, stderr to stderr).  Once every client port accepts connections
/// the bootstrap string is printed on a line of its own.  SIGINT/SIGTERM/SIGHUP: SIGTERM to every
/// node, SIGKILL after `--stop-timeout` seconds (a second Ctrl-C kills at once).
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Run a local Petrel cluster: N `petrel broker` child processes (broker+controller each) on 127.0.0.1.",
        discussion: """
            Node i listens on 127.0.0.1:<base-port + i - 1> (clients) and \
            127.0.0.1:<controller-base-port + i - 1> (quorum) and stores its logs in <data-dir>/node-i. \
            Output lines of each node are prefixed with [node i]. Ctrl-C (or SIGTERM) stops every node.

            Example: petrel cluster --nodes 3 --data-dir /tmp/petrel-cluster
            then:    kcat -b 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 -L
            """)

    @Option(help: "Number of nodes, 1...9.")
    var nodes: Int = 3

    @Option(help: "Directory for the nodes' data (node i uses <data-dir>/node-i); created if missing.")
    var dataDir: String

    @Option(help: "Client port of node 1; node i uses base-port + i - 1.")
    var basePort: Int = 9092

    @Option(help: "Controller (quorum) port of node 1; node i uses controller-base-port + i - 1. Default: base-port + 10000.")
    var controllerBasePort: Int?

    @Option(help: "Prometheus port of node 1 (node i: + i - 1). Default: an ephemeral port per node.")
    var metricsBasePort: Int?

    @Option(name: .customLong("override"),
            help: "key=value for every node, after the cluster's own settings (repeatable).")
    var overrides: [String] = []

    @Option(help: "Log level passed to every node: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Flag(help: "Restart a node that exits unexpectedly (with a growing delay, 1 s ... 30 s).")
    var restart = false

    @Option(help: "Seconds to wait for every client port to accept connections.")
    var startupTimeout: Double = 60

    @Option(help: "Seconds between SIGTERM and SIGKILL when stopping.")
    var stopTimeout: Double = 15

    mutating func validate() throws {
        let layout = try ClusterLayout(
            nodes: nodes, dataDir: dataDir, basePort: basePort, controllerBasePort: controllerBasePort,
            metricsBasePort: metricsBasePort, overrides: overrides)
        if let logLevel, !ClusterLayout.logLevels.contains(logLevel) {
            throw ValidationError("--log-level \(logLevel): expected one of \(ClusterLayout.logLevels.joined(separator: ", "))")
        }
        guard startupTimeout > 0, stopTimeout > 0 else {
            throw ValidationError("--startup-timeout and --stop-timeout must be positive")
        }
        try layout.prepareDataDir()
        try layout.checkPortsFree()
    }

    func run() async throws {
        let layout = try ClusterLayout(
            nodes: nodes, dataDir: dataDir, basePort: basePort, controllerBasePort: controllerBasePort,
            metricsBasePort: metricsBasePort, overrides: overrides)
        let executable = ClusterLayout.selfExecutable()
        let supervisor = ClusterSupervisor(
            layout: layout, executable: executable, logLevel: logLevel, restart: restart, stopTimeout: stopTimeout)
        ClusterSignals.install { signo in supervisor.signalled(signo) }

        ClusterOutput.status("starting \(nodes) node\(nodes == 1 ? "" : "s") (\(executable) broker), data in \(layout.dataDir)")
        for node in 1...nodes {
            do {
                try supervisor.start(node: node)
            } catch {
                ClusterOutput.error("cannot start node \(node): \(error)")
                await supervisor.stopAll()
                throw ExitCode(1)
            }
        }

        // Wait for every client port, a signal, or the startup timeout.
        let deadline = Date().addingTimeInterval(startupTimeout)
        var ready = false
        while !supervisor.stopRequested {
            let listening = (1...nodes).map { ClusterLayout.acceptsConnections(port: layout.clientPort(node: $0)) }
            if listening.allSatisfy({ $0 }) {
                ready = true
                break
            }
            if !restart && supervisor.allExited {
                ClusterOutput.error("every node exited before the cluster was up")
                await supervisor.stopAll()
                throw ExitCode(1)
            }
            if Date() > deadline {
                let missing = (1...nodes).filter { !listening[$0 - 1] }
                    .map { "node \($0) (127.0.0.1:\(layout.clientPort(node: $0)))" }
                ClusterOutput.error("not listening after \(Int(startupTimeout)) s: \(missing.joined(separator: ", ")); stopping")
                await supervisor.stopAll()
                throw ExitCode(1)
            }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        if ready {
            ClusterOutput.status("all \(nodes) nodes accept client connections; bootstrap servers:")
            ClusterOutput.line(layout.bootstrap, to: STDOUT_FILENO)
            ClusterOutput.status("Ctrl-C stops the cluster")
        }

        while !supervisor.stopRequested {
            if !restart && supervisor.allExited {
                ClusterOutput.error("every node has exited; stopping")
                break
            }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        let clean = await supervisor.stopAll()
        // Non-zero when a node had to be killed, died unexpectedly, or we stopped without a signal.
        if !clean || supervisor.unexpectedExits > 0 || !supervisor.stopRequested { throw ExitCode(1) }
    }
}

/// Ports, directories and per-node broker overrides of a local cluster (the contract with
/// `scripts/interop/broker.sh cluster-argv`, which builds the same settings for the Python harness).
struct ClusterLayout: Sendable {
    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    /// Keys `petrel cluster` sets per node: overriding them would break the cluster.
    static let perNodeKeys: Set<String> = [
        "node.id", "listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs", "log.dir",
        "process.roles", "controller.listener.names", "petrel.metrics.listener",
    ]

    var nodes: Int
    var dataDir: String
    var basePort: Int
    var controllerBasePort: Int
    var metricsBasePort: Int?
    var overrides: [String]

    init(nodes: Int, dataDir: String, basePort: Int, controllerBasePort: Int?, metricsBasePort: Int?,
         overrides: [String]) throws {
        guard (1...9).contains(nodes) else { throw ValidationError("--nodes \(nodes): must be between 1 and 9") }
        guard !dataDir.isEmpty else { throw ValidationError("--data-dir must not be empty") }
        let cbase = controllerBasePort ?? basePort + 10000
        func checkRange(_ flag: String, _ base: Int) throws {
            guard base >= 1, base + nodes - 1 <= 65535 else {
                throw ValidationError("\(flag) \(base): ports \(base)...\(base + nodes - 1) must lie within 1...65535")
            }
        }
        try checkRange("--base-port", basePort)
        try checkRange(controllerBasePort == nil ? "--controller-base-port (default base-port + 10000)" : "--controller-base-port", cbase)
        if let metricsBasePort { try checkRange("--metrics-base-port", metricsBasePort) }
        var ranges = [("--base-port", basePort), ("--controller-base-port", cbase)]
        if let metricsBasePort { ranges.append(("--metrics-base-port", metricsBasePort)) }
        for (i, a) in ranges.enumerated() {
            for b in ranges[(i + 1)...] where abs(a.1 - b.1) < nodes {
                throw ValidationError("\(a.0) \(a.1) and \(b.0) \(b.1): the port ranges of \(nodes) nodes overlap")
            }
        }
        for kv in overrides {
            guard let eq = kv.firstIndex(of: "="), eq != kv.startIndex else {
                throw ValidationError("--override \(kv): expected key=value")
            }
            let key = kv[..<eq].trimmingCharacters(in: .whitespaces)
            if Self.perNodeKeys.contains(key) {
                throw ValidationError("--override \(kv): \(key) is set per node by `petrel cluster` (use --nodes, --base-port, --controller-base-port, --metrics-base-port, --data-dir)")
            }
        }
        self.nodes = nodes
        self.dataDir = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        self.basePort = basePort
        self.controllerBasePort = cbase
        self.metricsBasePort = metricsBasePort
        self.overrides = overrides
    }

    func clientPort(node: Int) -> Int { basePort + node - 1 }
    func controllerPort(node: Int) -> Int { controllerBasePort + node - 1 }
    func nodeDataDir(node: Int) -> String { "\(dataDir)/node-\(node)" }

    var bootstrap: String {
        (1...nodes).map { "127.0.0.1:\(clientPort(node: $0))" }.joined(separator: ",")
    }

    var voters: String {
        (1...nodes).map { "\($0)@127.0.0.1:\(controllerPort(node: $0))" }.joined(separator: ",")
    }

    /// `key=value` settings of node `node`, in order (later ones win in `petrel broker`).
    func brokerOverrides(node: Int) -> [String] {
        let replication = min(3, nodes)
        let metrics = metricsBasePort.map { "127.0.0.1:\($0 + node - 1)" } ?? "127.0.0.1:0"
        return [
            "node.id=\(node)",
            "process.roles=broker,controller",
            "listeners=PLAINTEXT://127.0.0.1:\(clientPort(node: node)),CONTROLLER://127.0.0.1:\(controllerPort(node: node))",
            "advertised.listeners=PLAINTEXT://127.0.0.1:\(clientPort(node: node))",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            "controller.quorum.voters=\(voters)",
            "log.dirs=\(nodeDataDir(node: node))",
            "petrel.metrics.listener=\(metrics)",
            "default.replication.factor=\(replication)",
            "min.insync.replicas=\(min(2, replication))",
            "offsets.topic.replication.factor=\(replication)",
            "num.partitions=1",
        ] + overrides
    }

    /// `petrel broker` arguments (without the executable) for node `node`.
    func brokerArguments(node: Int, logLevel: String?) -> [String] {
        var args = ["broker"]
        for kv in brokerOverrides(node: node) { args += ["--override", kv] }
        if let logLevel { args += ["--log-level", logLevel] }
        return args
    }

    func prepareDataDir() throws {
        do {
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("--data-dir \(dataDir): cannot create it (\(error.localizedDescription))")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dataDir, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationError("--data-dir \(dataDir): not a directory")
        }
        guard access(dataDir, W_OK | X_OK) == 0 else {
            throw ValidationError("--data-dir \(dataDir): not writable")
        }
    }

    /// Fails when a port of the cluster is taken (a broker still running would make the
    /// readiness check pass for the wrong process).
    func checkPortsFree() throws {
        var taken = [String]()
        for node in 1...nodes {
            var ports = [("client", clientPort(node: node)), ("controller", controllerPort(node: node))]
            if let metricsBasePort { ports.append(("metrics", metricsBasePort + node - 1)) }
            for (what, port) in ports where !Self.canBind(port: port) {
                taken.append("\(port) (node \(node) \(what))")
            }
        }
        if !taken.isEmpty {
            throw ValidationError("127.0.0.1 port\(taken.count == 1 ? "" : "s") already in use: \(taken.joined(separator: ", ")); choose other ports with --base-port / --controller-base-port")
        }
    }

    static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    static func canBind(port: Int) -> Bool {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = loopback(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return rc == 0
    }

    static func acceptsConnections(port: Int) -> Bool {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = loopback(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return rc == 0
    }

    /// This executable's absolute path (children run `<it> broker ...`).
    static func selfExecutable() -> String {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return exe
        }
        let arg0 = CommandLine.arguments[0]
        if arg0.hasPrefix("/") { return arg0 }
        if arg0.contains("/") {
            return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
                .appendingPathComponent(arg0).standardizedFileURL.path
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/\(arg0)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return arg0
    }
}

/// Serialised writes to stdout/stderr (raw write(2): no buffering across threads, and a closed
/// pipe is an ignored error rather than a crash).
enum ClusterOutput {
    private static let lock = NSLock()

    static func write(_ data: Data, to fd: Int32) {
        lock.lock()
        defer { lock.unlock() }
        data.withUnsafeBytes { raw in
            guard var p = raw.baseAddress else { return }
            var left = raw.count
            while left > 0 {
                let n = sysWrite(fd, p, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                left -= n
                p += n
            }
        }
    }

    static func line(_ text: String, to fd: Int32) { write(Data((text + "\n").utf8), to: fd) }
    static func status(_ text: String) { line("[cluster] \(text)", to: STDOUT_FILENO) }
    static func error(_ text: String) { line("[cluster] error: \(text)", to: STDERR_FILENO) }
}

/// Copies a child's pipe to our stdout/stderr, one `[node i] ` prefix per line.
final class PrefixedPump: @unchecked Sendable {
    private let prefix: Data
    private let target: Int32
    private let readFD: Int32

    init(prefix: String, readFD: Int32, target: Int32) {
        self.prefix = Data(prefix.utf8)
        self.readFD = readFD
        self.target = target
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "petrel-cluster-pump"
        thread.start()
    }

    private func run() {
        var pending = Data()
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            pending.append(contentsOf: chunk[0..<n])
            var out = Data()
            while let nl = pending.firstIndex(of: 10) {
                out.append(prefix)
                out.append(pending[pending.startIndex...nl])
                pending.removeSubrange(pending.startIndex...nl)
            }
            if !out.isEmpty { ClusterOutput.write(out, to: target) }
        }
        if !pending.isEmpty {
            ClusterOutput.write(prefix + pending + Data("\n".utf8), to: target)
        }
        close(readFD)
    }
}

/// SIGINT, SIGTERM, SIGHUP → a self-pipe → `handler(signo)` on a thread of its own.  A plain
/// sigaction handler rather than a DispatchSource (which blocks the signal in the registering
/// thread, a mask that children spawned from it would inherit) or SIG_IGN (inherited across exec).
enum ClusterSignals {
    nonisolated(unsafe) private static var writeFD: Int32 = -1

    static func install(_ handler: @escaping @Sendable (Int32) -> Void) {
        var fds: [Int32] = [0, 0]
        guard cloexecPipe(&fds) == 0 else { return }
        writeFD = fds[1]
        let readFD = fds[0]
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let n = read(readFD, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                handler(Int32(byte))
            }
        }
        thread.name = "petrel-cluster-signals"
        thread.start()
        let signals = [SIGINT, SIGTERM, SIGHUP]
        for signo in signals {
            var action = sigaction()
            let onSignal: @convention(c) (Int32) -> Void = { signo in
                var b = UInt8(truncatingIfNeeded: signo)
                _ = sysWrite(ClusterSignals.writeFD, &b, 1)
            }
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = onSignal
            #else
            action.__sigaction_u.__sa_handler = onSignal
            #endif
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(signo, &action, nil)
        }
        // We may have been started with these blocked (Foundation's Process on Linux passes the
        // spawning thread's mask on): unblock them here.
        var set = sigset_t()
        sigemptyset(&set)
        for signo in signals { sigaddset(&set, signo) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        // A closed stdout must not kill us (and leave the nodes orphaned): a handler that does
        // nothing makes write(2) fail with EPIPE; unlike SIG_IGN it is not inherited across exec.
        var pipeAction = sigaction()
        let ignore: @convention(c) (Int32) -> Void = { _ in }
        #if canImport(Glibc)
        pipeAction.__sigaction_handler.sa_handler = ignore
        #else
        pipeAction.__sigaction_u.__sa_handler = ignore
        #endif
        sigemptyset(&pipeAction.sa_mask)
        sigaction(SIGPIPE, &pipeAction, nil)
    }
}

/// Starts, watches, restarts and stops the node processes.
final class ClusterSupervisor: @unchecked Sendable {
    private final class Node {
        let id: Int
        var process: ChildProcess?
        var exited = true
        var restarts = 0
        init(id: Int) { self.id = id }
    }

    private let layout: ClusterLayout
    private let executable: String
    private let logLevel: String?
    private let restartOnExit: Bool
    private let stopTimeout: Double
    private let lock = NSLock()
    private var nodes: [Int: Node] = [:]
    private var stopping = false
    private var signals = 0
    private var unexpected = 0

    init(layout: ClusterLayout, executable: String, logLevel: String?, restart: Bool, stopTimeout: Double) {
        self.layout = layout
        self.executable = executable
        self.logLevel = logLevel
        self.restartOnExit = restart
        self.stopTimeout = stopTimeout
        for id in 1...layout.nodes { nodes[id] = Node(id: id) }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    var stopRequested: Bool { locked { stopping } }
    var unexpectedExits: Int { locked { unexpected } }
    var allExited: Bool { locked { nodes.values.allSatisfy(\.exited) } }

    /// First signal: stop gracefully.  Another one while stopping: SIGKILL every node.
    func signalled(_ signo: Int32) {
        let (first, pids) = locked { () -> (Bool, [Int32]) in
            signals += 1
            stopping = true
            return (signals == 1, nodes.values.compactMap { $0.exited ? nil : $0.process?.processIdentifier })
        }
        let name = String(cString: strsignal(signo))
        if first {
            ClusterOutput.status("\(name): stopping the cluster (SIGTERM to every node; again to SIGKILL)")
        } else {
            ClusterOutput.status("\(name) again: SIGKILL to every node")
            for pid in pids { kill(pid, SIGKILL) }
        }
    }

    /// SIGKILL to every running node (a second Ctrl-C in `petrel demo`).
    func killAll() {
        let pids = locked { nodes.values.compactMap { $0.exited ? nil : $0.process?.processIdentifier } }
        for pid in pids { kill(pid, SIGKILL) }
    }

    func start(node id: Int) throws {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "PETREL_LOG_LEVEL")  // --log-level decides, for every node alike
        let process = ChildProcess(executable: executable, arguments: layout.brokerArguments(node: id, logLevel: logLevel),
                                   environment: env)
        process.terminationHandler = { [weak self] p in self?.exited(node: id, process: p) }

        let node = locked { () -> Node in
            let node = nodes[id]!
            node.process = process  // before run(): the termination handler may fire at once
            node.exited = false
            return node
        }
        do {
            try ChildLauncher.launch(process, prefix: "[node \(id)] ")
        } catch {
            locked { node.exited = true }
            throw error
        }
        ClusterOutput.status("node \(id): pid \(process.processIdentifier), clients 127.0.0.1:\(layout.clientPort(node: id)), controller 127.0.0.1:\(layout.controllerPort(node: id)), data \(layout.nodeDataDir(node: id))")
    }

    private func exited(node id: Int, process: ChildProcess) {
        let (expected, restartDelay) = locked { () -> (Bool, Double?) in
            guard let node = nodes[id], node.process === process else { return (true, nil) }
            node.exited = true
            if stopping { return (true, nil) }
            unexpected += 1
            guard restartOnExit else { return (false, nil) }
            node.restarts += 1
            return (false, min(30, pow(2, Double(node.restarts - 1))))
        }
        let how = Self.describe(process)
        if expected {
            ClusterOutput.status("node \(id) (pid \(process.processIdentifier)) \(how)")
            return
        }
        ClusterOutput.error("node \(id) (pid \(process.processIdentifier)) \(how) unexpectedly" +
            (restartDelay.map { String(format: "; restarting it in %.0f s", $0) } ?? "; the other nodes keep running"))
        if let restartDelay {
            DispatchQueue.global().asyncAfter(deadline: .now() + restartDelay) { [self] in
                guard !stopRequested else { return }
                do {
                    try start(node: id)
                } catch {
                    ClusterOutput.error("cannot restart node \(id): \(error)")
                }
            }
        }
    }

    static func describe(_ process: ChildProcess) -> String {
        let status = process.terminationStatus
        if process.terminationReason == .uncaughtSignal {
            return "was killed by signal \(status) (\(String(cString: strsignal(status))))"
        }
        return "exited with status \(status)"
    }

    /// SIGTERM to every running node, SIGKILL to those still running after `stopTimeout`.
    /// Returns true when every node ended on SIGTERM.
    @discardableResult
    func stopAll() async -> Bool {
        let running = locked { () -> [(Int, ChildProcess)] in
            stopping = true
            return nodes.values.sorted { $0.id < $1.id }.compactMap { n in n.exited ? nil : n.process.map { (n.id, $0) } }
        }
        for (_, process) in running { kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(stopTimeout)
        while running.contains(where: { $0.1.isRunning }) && Date() < deadline {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        var clean = true
        for (id, process) in running where process.isRunning {
            clean = false
            ClusterOutput.error("node \(id) (pid \(process.processIdentifier)) still running \(Int(stopTimeout)) s after SIGTERM: SIGKILL")
            kill(process.processIdentifier, SIGKILL)
        }
        for (_, process) in running { process.waitUntilExit() }
        // Let the pumps print the last lines before we exit.
        try? await Task.sleep(nanoseconds: 200_000_000)
        ClusterOutput.status(clean ? "stopped" : "stopped (some nodes had to be killed)")
        return clean
    }
}

private func sysWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
