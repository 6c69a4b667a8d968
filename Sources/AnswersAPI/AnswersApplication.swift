import Collatz
import Foundation
import Hummingbird
import Logging

/// How the answers API listens and pages.
public struct AnswersAPIConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// `/part/{x}?limit=` default and ceiling.
    public var defaultPageSize: Int
    public var maxPageSize: Int
    /// `page` × `limit` may not skip more results than this (deep pages: use `after=`).
    public var maxOffset: Int = 1_000_000
    var maxPages: Int { maxOffset + 1 }
    /// A directory holding Swagger UI's `swagger-ui.css` and `swagger-ui-bundle.js` (any
    /// swagger-ui-dist folder): `/docs` then loads them from `/docs/...` instead of the CDN.
    public var swaggerUIDirectory: String?

    public init(host: String = "127.0.0.1", port: Int = 8000, defaultPageSize: Int = 100, maxPageSize: Int = 10_000,
                swaggerUIDirectory: String? = nil) {
        self.host = host
        self.port = port
        self.defaultPageSize = defaultPageSize
        self.maxPageSize = maxPageSize
        self.swaggerUIDirectory = swaggerUIDirectory
    }
}

/// The `petrel api` application: the four questions over an `AnswersStore`.
///
/// | route | answer |
/// |---|---|
/// | `GET /longest_step_chain` | `{"number": 837799, "steps": 524}` |
/// | `GET /highest_value` | `{"number": n, "value": v, "value_decimal": "v"}` (`value` is a string above 2^53) |
/// | `GET /part/{x}?page=&limit=&after=` | start numbers ≠ x whose chains pass through x, ascending, paginated |
/// | `GET /plot/{n}?format=svg&scale=linear` | every step of n's chain as an SVG (or `format=png`: PNG) line chart |
/// | `GET /openapi.json`, `/docs` | OpenAPI 3.0 document, Swagger UI (assets from a CDN) |
/// | `GET /docs/{file}` | with `swaggerUIDirectory`: Swagger UI's CSS, JS and icons from there instead |
/// | `GET /healthz` (`/health`) | 200 when the store answers, 503 otherwise |
/// | `GET /metrics` | Prometheus text: requests and latency per route |
///
/// Errors are JSON `{"error": "...", "status": 400}`: 400 for bad parameters, 404 for unknown
/// numbers and paths, 503 when the store is down.
public enum AnswersApplication {
    public static func makeRouter(
        store: some AnswersStore, configuration: AnswersAPIConfiguration = .init(), metrics: APIMetrics = APIMetrics()
    ) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: MetricsAndErrorsMiddleware(metrics: metrics))
        let handlers = AnswersHandlers(store: store, configuration: configuration)

        router.get("/longest_step_chain") { _, _ in try await handlers.longestChain() }
        router.get("/highest_value") { _, _ in try await handlers.highestValue() }
        router.get("/part/:x") { request, context in
            let query = request.uri.queryParameters
            return try await handlers.part(
                x: context.parameters.get("x"), limit: query["limit"], page: query["page"], after: query["after"])
        }
        router.get("/plot/:n") { request, context in
            let query = request.uri.queryParameters
            return try await handlers.plot(n: context.parameters.get("n"), format: query["format"], scale: query["scale"])
        }
        router.get("/healthz") { _, _ in try await handlers.health() }
        router.get("/health") { _, _ in try await handlers.health() }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        let swaggerPage = OpenAPIDocument.swaggerPage(
            assetBase: configuration.swaggerUIDirectory == nil ? SwaggerUIAssets.cdnBase : SwaggerUIAssets.localBase)
        router.get("/docs") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: swaggerPage)))
        }
        if let directory = configuration.swaggerUIDirectory {
            let fileIO = FileIO()
            router.get("/docs/:file") { _, context in
                try await SwaggerUIAssets.response(file: context.parameters.get("file"), directory: directory,
                                                   fileIO: fileIO, context: context)
            }
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.indexPage)))
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: await metrics.render())))
        }
        return router
    }

    public static func makeApplication(
        store: some AnswersStore, configuration: AnswersAPIConfiguration = .init(),
        logger: Logger = Logger(label: "petrel.api")
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(store: store, configuration: configuration),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "petrel-api"),
            logger: logger
        )
    }
}

/// A JSON error answer.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }

    func response() -> Response {
        var body = "{\"error\": "
        JSONText.appendString(message, to: &body)
        body += ", \"status\": \(status.code)}"
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Strict parsing of hostile parameters: ASCII digits only, bounded length and range.
enum ParameterParser {
    static func unsigned(_ raw: String?, name: String, range: ClosedRange<UInt128>) throws(APIError) -> UInt128 {
        guard let raw else { throw .badRequest("parameter '\(name)' is missing") }
        let text = raw.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { throw .badRequest("parameter '\(name)' is empty") }
        let digits = { (s: Substring.UTF8View) in s.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        if text.hasPrefix("-"), text.utf8.count > 1, digits(text.dropFirst().utf8) {
            throw .badRequest("parameter '\(name)' must not be negative (got \(preview(text)))")
        }
        guard digits(Substring(text).utf8) else {
            throw .badRequest("parameter '\(name)' must be a decimal integer (got \(preview(text)))")
        }
        let significant = text.drop { $0 == "0" }
        guard significant.utf8.count <= 39, let value = UInt128(decimalDigits: text) else {
            throw .badRequest("parameter '\(name)' is too large: at most \(range.upperBound)")
        }
        guard range.contains(value) else {
            if value < range.lowerBound {
                throw .badRequest("parameter '\(name)' must be at least \(range.lowerBound) (got \(value))")
            }
            throw .badRequest("parameter '\(name)' is too large: at most \(range.upperBound) (got \(preview(text)))")
        }
        return value
    }

    /// A short, printable excerpt of hostile input for error messages.
    static func preview(_ s: String) -> String {
        let scalars = s.unicodeScalars
        let clean = scalars.prefix(40).map { c -> String in
            guard c.value >= 0x20, c.value < 0x7F, !"<>&\"'\\".unicodeScalars.contains(c) else { return "?" }
            return String(c)
        }.joined()
        return "'" + clean + (scalars.count > 40 ? "…" : "") + "'"
    }
}

struct AnswersHandlers<Store: AnswersStore>: Sendable {
    let store: Store
    let configuration: AnswersAPIConfiguration

    /// Start numbers are UInt64 in the tables.
    static var numberRange: ClosedRange<UInt128> { 1...UInt128(UInt64.max) }

    func longestChain() async throws -> Response {
        guard let answer = try await storeCall({ try await store.longestChain() }) else {
            throw APIError(.notFound, "no chains stored yet")
        }
        return json("{\"number\": \(answer.number), \"steps\": \(answer.steps)}")
    }

    func highestValue() async throws -> Response {
        guard let answer = try await storeCall({ try await store.highestValue() }) else {
            throw APIError(.notFound, "no chains stored yet")
        }
        return json("""
            {"number": \(answer.number), "value": \(JSONText.safeInteger(answer.value)), "value_decimal": "\(answer.value)"}
            """)
    }

    /// Pages: `page` (1-based, `limit` per page) as the old app had, or the cheaper keyset
    /// form `after=<last number seen>` (both may be combined).
    func part(x rawX: String?, limit rawLimit: Substring?, page rawPage: Substring?, after rawAfter: Substring?) async throws -> Response {
        let x = try ParameterParser.unsigned(rawX, name: "x", range: 1...ClickHouseSchema.maxQueryValue)
        var limit = configuration.defaultPageSize
        if let raw = rawLimit {
            limit = Int(try ParameterParser.unsigned(String(raw), name: "limit", range: 1...UInt128(configuration.maxPageSize)))
        }
        var page = 1
        if let raw = rawPage {
            page = Int(try ParameterParser.unsigned(String(raw), name: "page", range: 1...UInt128(configuration.maxPages)))
        }
        var after: UInt64?
        if let raw = rawAfter {
            after = UInt64(try ParameterParser.unsigned(String(raw), name: "after", range: 0...UInt128(UInt64.max)))
        }
        let offset = (page - 1) * limit
        guard offset <= configuration.maxOffset else {
            throw APIError.badRequest("page \(page) × limit \(limit) reaches past \(configuration.maxOffset) results: use after=")
        }
        // One more than asked tells whether there is a next page.
        let numbers = try await storeCall {
            try await store.numbersPassingThrough(x, after: after, offset: offset, limit: limit + 1)
        }
        let rows = numbers.prefix(limit)
        let more = numbers.count > limit
        let nextAfter = more ? rows.last.map { "\($0)" } ?? "null" : "null"
        var body = "{\"x\": \(JSONText.safeInteger(x)), \"x_decimal\": \"\(x)\", \"page\": \(page), \"limit\": \(limit), "
        body += "\"count\": \(rows.count), \"numbers\": ["
        body += rows.map { String($0) }.joined(separator: ", ")
        body += "], \"next_page\": \(more ? String(page + 1) : "null"), \"next_after\": \(nextAfter)}"
        return json(body)
    }

    func plot(n rawN: String?, format rawFormat: Substring?, scale rawScale: Substring?) async throws -> Response {
        let n = UInt64(try ParameterParser.unsigned(rawN, name: "n", range: Self.numberRange))
        let format = rawFormat.map { $0.lowercased() } ?? "svg"
        guard format == "svg" || format == "png" else {
            throw APIError.badRequest("format \(ParameterParser.preview(format)) is not supported: use svg or png")
        }
        let scale = rawScale.map { $0.lowercased() } ?? "linear"
        guard scale == "linear" || scale == "log" else {
            throw APIError.badRequest("scale \(ParameterParser.preview(scale)) is not supported: use linear or log")
        }
        let steps = try await storeCall { try await store.chain(of: n) }
        guard !steps.isEmpty else { throw APIError(.notFound, "no chain stored for \(n)") }
        let plot = ChainPlot(number: n, steps: steps, logScale: scale == "log")
        if format == "png" {
            return Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "no-cache"],
                            body: .init(byteBuffer: ByteBuffer(bytes: plot.png())))
        }
        return Response(status: .ok, headers: [.contentType: "image/svg+xml", .cacheControl: "no-cache"],
                        body: .init(byteBuffer: ByteBuffer(string: plot.svg())))
    }

    func health() async throws -> Response {
        do {
            try await store.checkHealth()
            return json("{\"status\": \"ok\"}")
        } catch {
            throw APIError(.serviceUnavailable, "answers store unavailable: \(error)")
        }
    }

    /// Store failures become 503 with the reason; our own errors pass through.
    func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as APIError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw APIError(.serviceUnavailable, "answers store unavailable: \(error)")
        }
    }

    func json(_ body: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

enum JSONText {
    /// A JSON integer when a double-precision reader keeps it exact (≤ 2^53), a string otherwise.
    static func safeInteger(_ v: UInt128) -> String {
        v <= 1 << 53 ? "\(v)" : "\"\(v)\""
    }

    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
