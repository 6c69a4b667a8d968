import Foundation
import KafkaProtocol
import NIOCore

/// A value guarded by a lock. Critical sections are short and never suspend.
final class Locked<State>: @unchecked Sendable {
    /// Only touched under `lock`, so the runtime's exclusivity check (a thread-local access set
    /// insert per access, ~10% of the producer's hot path) is redundant.
    @exclusivity(unchecked) private var state: State
    private let lock = NSLock()

    init(_ state: State) { self.state = state }

    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}

/// A topic and a partition index.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        a.topic == b.topic ? a.partition < b.partition : a.topic < b.topic
    }

    public var description: String { "\(topic)-\(partition)" }
}

/// Errors the client throws.
public enum KafkaClientError: Error, Sendable, CustomStringConvertible, Equatable {
    /// No broker of the bootstrap list (or the node asked for) could be reached.
    case connectionFailed(String)
    /// The connection closed before the answer came.
    case connectionClosed(String)
    /// No answer within the request timeout.
    case requestTimedOut(api: String, timeoutMs: Int)
    /// The broker answered with an error code.
    case broker(KafkaErrorCode, String?)
    /// An error code this client does not know.
    case unknownErrorCode(Int16)
    /// The broker's answer could not be decoded (or a request could not be encoded).
    case protocolViolation(String)
    /// The broker does not support any version of an API this client needs.
    case unsupportedApi(String)
    /// The topic does not exist (after metadata refreshes).
    case unknownTopic(String)
    /// A partition outside the topic's partition count.
    case unknownPartition(TopicPartition)
    /// A configuration value is invalid.
    case invalidConfiguration(String)
    /// The producer or consumer was closed.
    case closed
    /// A record is larger than the producer can send.
    case recordTooLarge(Int)
    /// The consumer is not part of a group, or has no such assignment.
    case illegalState(String)

    public var description: String {
        switch self {
        case let .connectionFailed(m): return "connection failed: \(m)"
        case let .connectionClosed(m): return "connection closed: \(m)"
        case let .requestTimedOut(api, ms): return "\(api) request timed out after \(ms) ms"
        case let .broker(code, message): return "broker error \(code.name)" + (message.map { ": \($0)" } ?? ": \(code.message)")
        case let .unknownErrorCode(code): return "unknown broker error code \(code)"
        case let .protocolViolation(m): return "protocol violation: \(m)"
        case let .unsupportedApi(m): return "unsupported API: \(m)"
        case let .unknownTopic(t): return "unknown topic \(t)"
        case let .unknownPartition(tp): return "unknown partition \(tp)"
        case let .invalidConfiguration(m): return "invalid configuration: \(m)"
        case .closed: return "closed"
        case let .recordTooLarge(n): return "record of \(n) bytes is larger than the limit"
        case let .illegalState(m): return "illegal state: \(m)"
        }
    }

    /// The broker error code, if this is a broker error.
    public var errorCode: KafkaErrorCode? {
        if case let .broker(code, _) = self { return code }
        return nil
    }

    /// Whether retrying the same request may succeed: transport failures, timeouts and the
    /// error codes Kafka marks retriable.
    public var isRetriable: Bool {
        switch self {
        case .connectionFailed, .connectionClosed, .requestTimedOut: return true
        case let .broker(code, _): return code.isRetriable
        default: return false
        }
    }

    /// Whether the client's metadata should be refreshed before a retry (the leader moved, the
    /// topic is new, or the connection failed).
    public var invalidatesMetadata: Bool {
        switch self {
        case .connectionFailed, .connectionClosed, .requestTimedOut: return true
        case let .broker(code, _): return RetryPolicy.invalidatesMetadata(code)
        default: return false
        }
    }

    /// An error for a raw error code, or nil for `NONE`.
    static func check(_ raw: Int16, _ message: String? = nil) throws(KafkaClientError) {
        guard raw != 0 else { return }
        guard let code = KafkaErrorCode(rawValue: raw) else { throw .unknownErrorCode(raw) }
        throw .broker(code, message)
    }

    static func from(_ raw: Int16, _ message: String? = nil) -> KafkaClientError? {
        guard raw != 0 else { return nil }
        guard let code = KafkaErrorCode(rawValue: raw) else { return .unknownErrorCode(raw) }
        return .broker(code, message)
    }

    static func wrap(_ error: any Error) -> KafkaClientError {
        if let e = error as? KafkaClientError { return e }
        if let e = error as? KafkaProtocolError { return .protocolViolation("\(e)") }
        if error is CancellationError { return .closed }
        return .connectionFailed("\(error)")
    }
}

/// Which errors are retried, how long to wait between attempts, and which errors call for a
/// metadata refresh. Pure functions: unit-tested.
public struct RetryPolicy: Sendable, Hashable {
    /// First wait between attempts.
    public var backoffMs: Int
    /// Largest wait between attempts.
    public var backoffMaxMs: Int
    /// Attempts after the first.
    public var retries: Int

    public init(backoffMs: Int = 100, backoffMaxMs: Int = 1000, retries: Int = Int(Int32.max)) {
        self.backoffMs = backoffMs
        self.backoffMaxMs = backoffMaxMs
        self.retries = retries
    }

    /// The wait before attempt `attempt` (1 = the first retry): exponential, capped, without
    /// jitter when `jitter` is false (±20% otherwise, as Kafka's clients do).
    public func backoff(attempt: Int, jitter: Bool = true) -> Duration {
        let exp = min(30, max(0, attempt - 1))
        var ms = min(Double(backoffMaxMs), Double(backoffMs) * pow(2, Double(exp)))
        if jitter { ms *= Double.random(in: 0.8...1.2) }
        return .milliseconds(Int(ms.rounded()))
    }

    /// Whether a failed attempt number `attempt` (1-based) may be retried.
    public func shouldRetry(_ error: KafkaClientError, attempt: Int) -> Bool {
        attempt <= retries && error.isRetriable
    }

    /// Error codes after which the cached leaders or topics are stale.
    public static func invalidatesMetadata(_ code: KafkaErrorCode) -> Bool {
        switch code {
        case .notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .fencedLeaderEpoch,
            .unknownLeaderEpoch, .notCoordinator, .coordinatorNotAvailable, .replicaNotAvailable,
            .kafkaStorageError, .unknownTopicId, .inconsistentTopicId, .notController, .brokerNotAvailable,
            .networkException:
            return true
        default:
            return false
        }
    }

    /// Error codes after which a group member must find its coordinator again.
    public static func invalidatesCoordinator(_ code: KafkaErrorCode) -> Bool {
        code == .notCoordinator || code == .coordinatorNotAvailable || code == .networkException
            || code == .requestTimedOut
    }
}

/// Parses "host:port" (IPv6 as "[::1]:9092").
func parseHostPort(_ s: String, defaultPort: Int = 9092) throws(KafkaClientError) -> (host: String, port: Int) {
    var text = Substring(s.trimmingCharacters(in: .whitespaces))
    for scheme in ["PLAINTEXT://", "plaintext://", "tcp://"] where text.hasPrefix(scheme) {
        text = text.dropFirst(scheme.count)
    }
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]") else { throw .invalidConfiguration("bad address \(s)") }
        let host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        if rest.isEmpty { return (host, defaultPort) }
        guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else {
            throw .invalidConfiguration("bad address \(s)")
        }
        return (host, port)
    }
    guard let colon = text.lastIndex(of: ":") else {
        guard !text.isEmpty else { throw .invalidConfiguration("empty address") }
        return (String(text), defaultPort)
    }
    let host = String(text[..<colon])
    guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
        throw .invalidConfiguration("bad address \(s) (expected host:port)")
    }
    return (host, port)
}

/// Milliseconds since the epoch.
@inline(__always)
func currentTimeMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// A monotonic instant in nanoseconds.
@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
