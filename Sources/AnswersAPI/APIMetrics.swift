import Hummingbird

/// Prometheus counters and latency histograms per route, rendered by hand in the text
/// exposition format (the API needs no more than this).
public actor APIMetrics {
    struct Key: Hashable, Comparable {
        var route: String
        var status: Int
        static func < (a: Key, b: Key) -> Bool { (a.route, a.status) < (b.route, b.status) }
    }

    /// Upper bounds in seconds.
    static let buckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    var requests: [Key: Int] = [:]
    var histograms: [String: (counts: [Int], sum: Double, count: Int)] = [:]

    public init() {}

    func record(route: String, status: Int, seconds: Double) {
        requests[Key(route: route, status: status), default: 0] += 1
        var h = histograms[route] ?? (Array(repeating: 0, count: Self.buckets.count), 0, 0)
        for (i, bound) in Self.buckets.enumerated() where seconds <= bound { h.counts[i] += 1 }
        h.sum += seconds
        h.count += 1
        histograms[route] = h
    }

    public func render() -> String {
        var out = "# HELP petrel_api_requests_total Answers API requests by route and status.\n"
        out += "# TYPE petrel_api_requests_total counter\n"
        for (key, count) in requests.sorted(by: { $0.key < $1.key }) {
            out += "petrel_api_requests_total{route=\"\(key.route)\",status=\"\(key.status)\"} \(count)\n"
        }
        out += "# HELP petrel_api_request_duration_seconds Answers API latency by route.\n"
        out += "# TYPE petrel_api_request_duration_seconds histogram\n"
        for (route, h) in histograms.sorted(by: { $0.key < $1.key }) {
            for (i, bound) in Self.buckets.enumerated() {
                out += "petrel_api_request_duration_seconds_bucket{route=\"\(route)\",le=\"\(bound)\"} \(h.counts[i])\n"
            }
            out += "petrel_api_request_duration_seconds_bucket{route=\"\(route)\",le=\"+Inf\"} \(h.count)\n"
            out += "petrel_api_request_duration_seconds_sum{route=\"\(route)\"} \(h.sum)\n"
            out += "petrel_api_request_duration_seconds_count{route=\"\(route)\"} \(h.count)\n"
        }
        return out
    }
}

/// Turns every error into a JSON body (unknown paths included) and records each request.
struct MetricsAndErrorsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: APIMetrics

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = error.response()
        } catch let error as HTTPResponseError {
            let message: String
            switch error.status {
            case .notFound: message = "no such path: \(ParameterParser.preview(request.uri.path))"
            case .methodNotAllowed: message = "method \(request.method) not allowed"
            default: message = "\(error.status.reasonPhrase)"
            }
            response = APIError(error.status, message).response()
        } catch {
            response = APIError(.internalServerError, "internal error").response()
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        // Label by route template, never by the raw (hostile, unbounded) path.
        let route = context.endpointPath ?? "unmatched"
        await metrics.record(route: route, status: Int(response.status.code), seconds: seconds)
        return response
    }
}
