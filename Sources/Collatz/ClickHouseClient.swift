import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Where ClickHouse is and who we are to it.
public struct ClickHouseConfiguration: Sendable, Equatable {
    /// The HTTP interface, e.g. `http://127.0.0.1:8123` (a path prefix is kept).
    public var url: String
    /// The database holding the Collatz tables (created if missing).
    public var database: String
    public var user: String?
    public var password: String?
    /// Per request (queries and inserts).
    public var requestTimeout: TimeAmount

    public init(url: String = "http://127.0.0.1:8123", database: String = "collatz", user: String? = nil,
                password: String? = nil, requestTimeout: TimeAmount = .seconds(30)) {
        self.url = url
        self.database = database
        self.user = user
        self.password = password
        self.requestTimeout = requestTimeout
    }

    /// Reads `CLICKHOUSE_URL`, `CLICKHOUSE_DATABASE`, `CLICKHOUSE_USER`, `CLICKHOUSE_PASSWORD`.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        var c = Self()
        if let v = env["CLICKHOUSE_URL"], !v.isEmpty { c.url = v }
        if let v = env["CLICKHOUSE_DATABASE"], !v.isEmpty { c.database = v }
        if let v = env["CLICKHOUSE_USER"], !v.isEmpty { c.user = v }
        if let v = env["CLICKHOUSE_PASSWORD"], !v.isEmpty { c.password = v }
        return c
    }
}

/// A ClickHouse server's answer other than 200, or no answer at all.
public struct ClickHouseError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The server answered with an HTTP error (bad SQL, bad data, overload, ...).
        case server(status: Int)
        /// No answer: refused, reset, timed out.
        case transport
        /// The answer could not be read.
        case malformedResponse
    }
    public var kind: Kind
    public var message: String

    public var description: String {
        switch kind {
        case .server(let status): return "ClickHouse HTTP \(status): \(message)"
        case .transport: return "ClickHouse unreachable: \(message)"
        case .malformedResponse: return "ClickHouse answer unreadable: \(message)"
        }
    }

    /// Worth retrying: no answer, or an answer that says "later" (overload, timeouts, 5xx
    /// other than a plain SQL/data error ClickHouse reports as 500 with an exception code).
    public var isRetriable: Bool {
        switch kind {
        case .transport: return true
        case .malformedResponse: return true
        case .server(let status):
            if status == 503 || status == 429 || status == 502 || status == 504 { return true }
            // ClickHouse reports most failures as 500 with "Code: N"; these codes are transient:
            // 159 TIMEOUT_EXCEEDED, 202 TOO_MANY_SIMULTANEOUS_QUERIES, 209 SOCKET_TIMEOUT,
            // 210 NETWORK_ERROR, 241 MEMORY_LIMIT_EXCEEDED, 252 TOO_MANY_PARTS, 242 TABLE_IS_READ_ONLY,
            // 319 UNKNOWN_STATUS_OF_INSERT, 425 SYSTEM_ERROR.
            for code in [159, 202, 209, 210, 241, 242, 252, 319, 425] where message.contains("Code: \(code),") {
                return true
            }
            return false
        }
    }
}

/// The process-wide HTTP client for ClickHouse (never shut down, like `HTTPClient.shared`): a
/// refused connection fails the request at once (no connection retries until the request
/// deadline), so the caller's backoff sees an outage within the 2 s connect timeout.
public let clickHouseHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.timeout = .init(connect: .seconds(2))
    configuration.connectionPool.retryConnectionEstablishment = false
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 16
    return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
}()

/// ClickHouse's HTTP interface over async-http-client: plain SQL in, text out.
/// Works with ClickHouse 18.16 (Debian) and current releases alike.
public struct ClickHouseClient: Sendable {
    public let configuration: ClickHouseConfiguration
    let http: HTTPClient
    let baseURL: String

    public init(configuration: ClickHouseConfiguration, httpClient: HTTPClient = clickHouseHTTPClient) {
        self.configuration = configuration
        self.http = httpClient
        var base = configuration.url
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
    }

    /// Runs a statement (DDL, SELECT); returns the body (use `FORMAT TabSeparated` for
    /// machine-readable answers). The SQL travels in the POST body.
    public func execute(_ sql: String, settings: [String: String] = [:]) async throws -> String {
        let body = try await send(queryInURL: nil, body: ByteBuffer(string: sql), settings: settings)
        return String(buffer: body)
    }

    /// `INSERT INTO <table> (<columns>) FORMAT <format>` with `data` as the body.
    public func insert(table: String, columns: [String], format: String, data: ByteBuffer) async throws {
        let query = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) FORMAT \(format)"
        _ = try await send(queryInURL: query, body: data, settings: [:])
    }

    /// `SELECT 1`: is the server there?
    public func ping() async throws {
        let answer = try await execute("SELECT 1")
        guard answer.trimmingCharacters(in: .whitespacesAndNewlines) == "1" else {
            throw ClickHouseError(kind: .malformedResponse, message: "SELECT 1 answered \(answer.prefix(100))")
        }
    }

    static func percentEncode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    private func send(queryInURL: String?, body: ByteBuffer, settings: [String: String]) async throws -> ByteBuffer {
        var params = [String]()
        if let queryInURL { params.append("query=" + Self.percentEncode(queryInURL)) }
        for (k, v) in settings.sorted(by: { $0.key < $1.key }) {
            params.append(Self.percentEncode(k) + "=" + Self.percentEncode(v))
        }
        var request = HTTPClientRequest(url: baseURL + "/" + (params.isEmpty ? "" : "?" + params.joined(separator: "&")))
        request.method = .POST
        if let user = configuration.user {
            let token = Data("\(user):\(configuration.password ?? "")".utf8).base64EncodedString()
            request.headers.add(name: "Authorization", value: "Basic \(token)")
        }
        request.headers.add(name: "Content-Length", value: String(body.readableBytes))
        request.body = .bytes(body)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: configuration.requestTimeout)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw ClickHouseError(kind: .transport, message: String(describing: error))
        }
        let answer: ByteBuffer
        do {
            answer = try await response.body.collect(upTo: 256 << 20)
        } catch {
            throw ClickHouseError(kind: .transport, message: "reading the answer: \(error)")
        }
        guard response.status == .ok else {
            let text = String(buffer: answer).trimmingCharacters(in: .whitespacesAndNewlines)
            throw ClickHouseError(kind: .server(status: Int(response.status.code)), message: String(text.prefix(2000)))
        }
        return answer
    }
}
