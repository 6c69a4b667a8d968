import ArgumentParser
import Broker
import Foundation
import KafkaClient
import KafkaProtocol
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Shared pieces of the client tools (`petrel topics`, `groups`, `produce`, `consume`, `perf`):
// connection options, exit codes, error reporting, deadlines. See docs/cli.md.

/// Exit codes of the client tools; scripts can rely on them (docs/cli.md).
enum ClientExit: Int32 {
    /// The operation succeeded.
    case ok = 0
    /// The operation failed (a broker error: its Kafka name and what to do are printed).
    case failed = 1
    /// Bad flags or flag values (usage printed).
    case usage = 2
    /// No bootstrap broker could be reached within --connect-timeout-ms.
    case unreachable = 3
    /// The topic or group does not exist.
    case notFound = 4
    /// The operation did not finish within --timeout-ms.
    case timedOut = 5

    var code: ExitCode { ExitCode(rawValue) }

    static let helpText = """
        Exit codes: 0 ok; 1 operation failed (broker error, its Kafka name is printed); 2 bad flags; \
        3 no bootstrap broker reachable; 4 unknown topic or group; 5 timed out (--timeout-ms).
        """
}

/// The subcommands whose usage errors exit with 2 instead of ArgumentParser's 64.
let clientCommandNames: Set<String> = ["topics", "groups", "produce", "consume", "perf"]

extension Petrel {
    /// As ArgumentParser's `main()`, except that bad flags of the client tools exit with 2
    /// (documented in docs/cli.md); every other subcommand keeps ArgumentParser's codes.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if let first = arguments.first, clientCommandNames.contains(first),
               exitCode(for: error) == .validationFailure {
                writeStderr(fullMessage(for: error) + "\n")
                terminate(ClientExit.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}

func terminate(_ code: Int32) -> Never {
    fflush(nil)
    exit(code)
}

func writeStderr(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

/// A client-tool failure: the message to print and the exit code.
struct ClientFailure: Error {
    var exit: ClientExit
    var message: String
}

/// --bootstrap-server, timeouts and verbosity, shared by every client tool.
struct ConnectionOptions: ParsableArguments {
    @Option(name: [.customLong("bootstrap-server"), .customLong("bootstrap-servers"), .customShort("b")],
            help: "Comma-separated host:port list of brokers to bootstrap from.")
    var bootstrapServer: String

    @Option(name: .customLong("connect-timeout-ms"),
            help: "How long to try to reach a bootstrap broker before giving up with exit code 3.")
    var connectTimeoutMs: Int = 10_000

    @Option(name: .customLong("command-config"),
            help: "A properties file of client settings, as Kafka's tools take: security.protocol=SSL, ssl.ca.location, ssl.certificate.location, ssl.key.location, ssl.key.password, enable.ssl.certificate.verification, ssl.endpoint.identification.algorithm, client.id, request.timeout.ms. SASL is not supported.")
    var commandConfig: String?

    /// The --command-config file's settings (empty without one).
    func commandProperties() throws -> [String: String] {
        guard let path = commandConfig, !path.isEmpty else { return [:] }
        var properties: [String: String] = [:]
        for entry in try PropertiesFile.load(path: path) { properties[entry.key] = entry.value }
        return properties
    }

    @Flag(name: [.customLong("verbose"), .customShort("v")], help: "Log the client's warnings and progress to stderr.")
    var verbose = false

    var servers: [String] {
        bootstrapServer.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func validate() throws {
        guard !servers.isEmpty else { throw ValidationError("--bootstrap-server needs at least one host:port") }
        for s in servers {
            guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port),
                  colon != s.startIndex else {
                throw ValidationError("--bootstrap-server: '\(s)' is not host:port")
            }
        }
        guard connectTimeoutMs > 0 else { throw ValidationError("--connect-timeout-ms must be > 0") }
        do {
            _ = try ClientConfiguration(bootstrapServers: servers).applying(properties: try commandProperties())
        } catch {
            throw ValidationError("--command-config \(commandConfig ?? ""): \(error)")
        }
    }

    func logger() -> Logger {
        var logger = Logger(label: "petrel.cli") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = verbose ? .info : .critical
        return logger
    }

    /// A client whose request timeout fits within `timeoutMs`.
    func makeClient(timeoutMs: Int) -> KafkaClient {
        var config = ClientConfiguration(bootstrapServers: servers)
        config.clientId = "petrel-cli"
        config.connectTimeoutMs = connectTimeoutMs
        config.requestTimeoutMs = max(1_000, min(30_000, timeoutMs))
        // Checked by validate(), so this applies cleanly.
        if let properties = try? commandProperties(), let withFile = try? config.applying(properties: properties) { config = withFile }
        return KafkaClient(config, logger: logger())
    }
}

/// Runs a client tool: connects (exit 3 if no bootstrap broker answers in time), runs `body`
/// under a watchdog (exit 5 after `timeoutMs`), maps errors to exit codes and messages.
func runClientTool(
    _ options: ConnectionOptions, timeoutMs: Int?, what: String,
    _ body: (KafkaClient) async throws -> Void
) async throws {
    let client = options.makeClient(timeoutMs: timeoutMs ?? 30_000)
    // Connect first, bounded by --connect-timeout-ms: an unreachable broker must not hang.
    let unreachable = "cannot reach any bootstrap broker (\(options.bootstrapServer))"
    let connectMs = options.connectTimeoutMs
    let connectWatchdog = Watchdog(ms: connectMs + 500) {
        fail(ClientFailure(exit: .unreachable, message: "\(unreachable) within \(connectMs) ms; check the address and that the broker is running"))
    }
    do {
        _ = try await client.metadata(topics: [])
    } catch {
        connectWatchdog.cancel()
        fail(ClientFailure(exit: .unreachable, message: "\(unreachable): \(error); check the address and that the broker is running"))
    }
    connectWatchdog.cancel()
    let watchdog = timeoutMs.map { ms in
        Watchdog(ms: ms) {
            fail(ClientFailure(exit: .timedOut, message: "\(what) did not finish within \(ms) ms (--timeout-ms); the broker may be overloaded or the cluster unavailable"))
        }
    }
    do {
        try await body(client)
    } catch {
        watchdog?.cancel()
        if error is ExitCode || error is CleanExit { throw error }
        fail(describe(error, what: what))
    }
    watchdog?.cancel()
    await client.shutdown()
}

/// Prints the failure to stderr and exits with its code.
func fail(_ failure: ClientFailure) -> Never {
    fflush(nil)
    writeStderr("petrel: error: \(failure.message)\n")
    terminate(failure.exit.rawValue)
}

/// Kills the process with a message when not cancelled within `ms`: a bound on every
/// operation that does not depend on the operation honouring cancellation.
final class Watchdog: Sendable {
    private let task: Task<Void, Never>

    init(ms: Int, _ onExpiry: @escaping @Sendable () -> Void) {
        task = Task.detached {
            do { try await Task.sleep(for: .milliseconds(ms)) } catch { return }
            onExpiry()
        }
    }

    func cancel() { task.cancel() }
}

/// The exit code and message for an error from the client library.
func describe(_ error: any Error, what: String) -> ClientFailure {
    if let f = error as? ClientFailure { return f }
    guard let e = error as? KafkaClientError else {
        return ClientFailure(exit: .failed, message: "\(what) failed: \(error)")
    }
    switch e {
    case let .unknownTopic(t):
        return ClientFailure(exit: .notFound, message: "unknown topic '\(t)' (UNKNOWN_TOPIC_OR_PARTITION); list topics with `petrel topics --list`")
    case let .unknownPartition(tp):
        return ClientFailure(exit: .notFound, message: "unknown partition \(tp); see `petrel topics --describe --topic \(tp.topic)`")
    case let .broker(code, detail):
        let exit: ClientExit = [.unknownTopicOrPartition, .unknownTopicId, .groupIdNotFound].contains(code) ? .notFound : .failed
        var message = "\(what) failed: \(code.name)"
        if let detail, !detail.isEmpty { message += " (\(detail))" }
        message += ": \(hint(for: code))"
        return ClientFailure(exit: exit, message: message)
    case .connectionFailed, .connectionClosed:
        return ClientFailure(exit: .failed, message: "\(what) failed: \(e); the broker went away or a partition leader is unreachable")
    case .requestTimedOut:
        return ClientFailure(exit: .timedOut, message: "\(what) failed: \(e)")
    default:
        return ClientFailure(exit: .failed, message: "\(what) failed: \(e)")
    }
}

/// What to do about a broker error.
func hint(for code: KafkaErrorCode) -> String {
    switch code {
    case .topicAlreadyExists: return "the topic exists already; use --describe, or --delete it first (or --if-not-exists)"
    case .unknownTopicOrPartition, .unknownTopicId: return "no such topic or partition; list topics with `petrel topics --list`"
    case .invalidPartitions: return "--partitions must be at least 1 (and, for --alter, more than the current count)"
    case .invalidReplicationFactor: return "--replication-factor must be between 1 and the number of brokers"
    case .invalidTopicException: return "topic names use [a-zA-Z0-9._-], at most 249 characters, not '.' or '..'"
    case .invalidConfig: return "a --config key or value is not valid for a topic (see Kafka's topic configs)"
    case .policyViolation: return "the broker's policy refused the request"
    case .topicDeletionDisabled: return "the broker has delete.topic.enable=false"
    case .groupIdNotFound: return "no such group; list groups with `petrel groups --list`"
    case .nonEmptyGroup: return "the group has active members; stop its consumers first"
    case .unknownMemberId: return "the group has active members; stop its consumers first"
    case .groupSubscribedToTopic: return "the group still consumes the topic; stop its consumers first"
    case .coordinatorNotAvailable, .notCoordinator, .coordinatorLoadInProgress: return "the group coordinator is not ready; retry in a moment"
    case .notController, .leaderNotAvailable, .notLeaderOrFollower: return "the cluster is electing a leader; retry in a moment"
    case .clusterAuthorizationFailed, .topicAuthorizationFailed, .groupAuthorizationFailed: return "not authorized"
    default: return code.message
    }
}

/// `k=v` → (k, v).
func parseKeyValue(_ s: String, flag: String) throws -> (String, String) {
    guard let eq = s.firstIndex(of: "="), eq != s.startIndex else { throw ValidationError("\(flag) '\(s)' is not key=value") }
    return (String(s[..<eq]), String(s[s.index(after: eq)...]))
}

/// Left-aligned table columns, as Kafka's tools print them.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i] + 1, withPad: " ", startingAt: 0) }
            .joined(separator: " ")
    }
    print(line(header))
    for r in rows { print(line(r)) }
}
