import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process spawned with posix_spawn(3) and reaped by a thread of its own that waits in
/// waitpid(pid) -- not Foundation's `Process`, whose SIGCHLD-driven reaping was seen missing
/// exits on Linux (nodes left as zombies with `isRunning` true, `waitUntilExit()` hanging)
/// when several children come and go.
///
/// The child runs in a process group of its own (a terminal's Ctrl-C reaches only `petrel`,
/// which stops its children in its own order), with every signal unblocked and SIGINT, SIGTERM,
/// SIGHUP and SIGPIPE at their defaults; stdin is /dev/null.
final class ChildProcess: @unchecked Sendable {
    enum TerminationReason { case exit, uncaughtSignal }

    let executable: String
    let arguments: [String]
    /// nil: this process's environment.
    var environment: [String: String]?
    /// Called once, on the reaper thread, after the child has exited.
    var terminationHandler: (@Sendable (ChildProcess) -> Void)?

    private let lock = NSLock()
    private var pid: pid_t = 0
    private var running = false
    private var status: Int32 = 0
    private var reason: TerminationReason = .exit
    private let exitedSemaphore = DispatchSemaphore(value: 0)

    init(executable: String, arguments: [String], environment: [String: String]? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    var processIdentifier: Int32 { lock.withLock { pid } }
    var isRunning: Bool { lock.withLock { running } }
    /// The exit status, or the signal number for `.uncaughtSignal`.
    var terminationStatus: Int32 { lock.withLock { status } }
    var terminationReason: TerminationReason { lock.withLock { reason } }

    /// Blocks until the child has exited (at most `timeout` seconds); true when it has.
    @discardableResult
    func waitUntilExit(timeout: Double? = nil) -> Bool {
        if !isRunning && processIdentifier != 0 { return true }
        let ok = exitedSemaphore.wait(timeout: timeout.map { .now() + $0 } ?? .distantFuture) == .success
        if ok { exitedSemaphore.signal() }  // later waiters pass too
        return ok
    }

    /// Spawns the child with `stdoutFD` and `stderrFD` as its fds 1 and 2.
    func run(stdoutFD: Int32, stderrFD: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signo in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, signo) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, &argv, &envp)
        guard rc == 0 else {
            throw ChildProcessError(description: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        lock.withLock {
            pid = child
            running = true
        }
        let spawned = child
        let thread = Thread { [self] in reap(spawned) }
        thread.name = "petrel-child-reaper"
        thread.start()
    }

    private func reap(_ child: pid_t) {
        var raw: Int32 = 0
        while waitpid(child, &raw, 0) == -1 {
            if errno == EINTR { continue }
            raw = 0xff00  // ECHILD: someone else reaped it; report status 255
            break
        }
        lock.withLock {
            running = false
            if raw & 0x7f == 0 {
                reason = .exit
                status = (raw >> 8) & 0xff
            } else {
                reason = .uncaughtSignal
                status = raw & 0x7f
            }
        }
        exitedSemaphore.signal()
        terminationHandler?(self)
    }
}

struct ChildProcessError: Error, CustomStringConvertible {
    var description: String
}

/// Starts a `ChildProcess` whose stdout and stderr are copied to ours line by line behind a
/// prefix (`[node 1] `, `[sink] `): the piece `petrel cluster` and `petrel demo` share.
enum ChildLauncher {
    /// Held from pipe creation to the spawn: no other child inherits a write end (which would
    /// keep a pump from ever seeing end-of-file).
    static let spawnLock = NSLock()

    static func launch(_ process: ChildProcess, prefix: String) throws {
        spawnLock.lock()
        defer { spawnLock.unlock() }
        var outFDs: [Int32] = [0, 0], errFDs: [Int32] = [0, 0]
        guard cloexecPipe(&outFDs) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        guard cloexecPipe(&errFDs) == 0 else {
            close(outFDs[0]); close(outFDs[1])
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        do {
            try process.run(stdoutFD: outFDs[1], stderrFD: errFDs[1])
        } catch {
            for fd in [outFDs[0], outFDs[1], errFDs[0], errFDs[1]] { close(fd) }
            throw error
        }
        close(outFDs[1])
        close(errFDs[1])
        PrefixedPump(prefix: prefix, readFD: outFDs[0], target: STDOUT_FILENO).start()
        PrefixedPump(prefix: prefix, readFD: errFDs[0], target: STDERR_FILENO).start()
    }
}

/// pipe(2) with FD_CLOEXEC on both ends (pipe2 is not visible from Swift's Glibc module).
/// Spawning callers hold `ChildLauncher.spawnLock`, so no spawn happens between pipe and fcntl.
func cloexecPipe(_ fds: inout [Int32]) -> Int32 {
    guard pipe(&fds) == 0 else { return -1 }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return 0
}

/// Named long-running children (`petrel demo`'s producer, sink, API and ClickHouse): started
/// with prefixed output, watched for unexpected exits, stopped one by one with SIGTERM and,
/// after a timeout, SIGKILL.
final class ChildGroup: @unchecked Sendable {
    final class Child: @unchecked Sendable {
        let name: String
        let process: ChildProcess
        fileprivate var stopping = false
        init(name: String, process: ChildProcess) {
            self.name = name
            self.process = process
        }
        var pid: Int32 { process.processIdentifier }
    }

    private let lock = NSLock()
    private var children: [Child] = []
    private var unexpected: [String] = []
    private let status: @Sendable (String) -> Void

    /// `status` prints one line about the group (e.g. `[demo] sink (pid 12) exited with status 0`).
    init(status: @escaping @Sendable (String) -> Void) {
        self.status = status
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Names of children that exited without being asked to.
    var unexpectedExits: [String] { locked { unexpected } }
    var pids: [Int32] { locked { children.map(\.pid) } }

    @discardableResult
    func start(name: String, executable: String, arguments: [String], environment: [String: String]? = nil) throws -> Child {
        let process = ChildProcess(executable: executable, arguments: arguments, environment: environment)
        let child = Child(name: name, process: process)
        process.terminationHandler = { [weak self, child] p in self?.exited(child, describe: ClusterSupervisor.describe(p)) }
        locked { children.append(child) }
        do {
            try ChildLauncher.launch(process, prefix: "[\(name)] ")
        } catch {
            locked { child.stopping = true }
            throw error
        }
        return child
    }

    private func exited(_ child: Child, describe: String) {
        let expected = locked { () -> Bool in
            if !child.stopping { unexpected.append(child.name) }
            return child.stopping
        }
        status("\(child.name) (pid \(child.pid)) \(describe)\(expected ? "" : " unexpectedly")")
    }

    /// SIGTERM to `child`, SIGKILL after `timeout` seconds. True when it ended on SIGTERM.
    @discardableResult
    func stop(_ child: Child, timeout: Double) async -> Bool {
        locked { child.stopping = true }
        guard child.process.isRunning else { return true }
        kill(child.pid, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while child.process.isRunning && Date() < deadline {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        guard child.process.isRunning else { return true }
        status("\(child.name) (pid \(child.pid)) still running \(Int(timeout)) s after SIGTERM: SIGKILL")
        kill(child.pid, SIGKILL)
        while child.process.isRunning {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return false
    }

    /// SIGKILL to every child still running (a second Ctrl-C).
    func killAll() {
        let pids = locked { children.filter { $0.process.isRunning }.map(\.pid) }
        for pid in pids { kill(pid, SIGKILL) }
    }
}
