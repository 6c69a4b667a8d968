import Collatz
import Hummingbird
import Logging

/// The small HTTP server a worker runs on `PETREL_METRICS_LISTENER`: `GET /metrics`
/// (Prometheus text) and `GET /healthz` (200, or 503 with a JSON reason when the worker cannot
/// do its job).
public enum WorkerEndpoints {
    public static func makeRouter(status: WorkerStatus) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: MetricsAndErrorsMiddleware(metrics: APIMetrics()))
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: status.renderPrometheus())))
        }
        router.get("/healthz") { _, _ in
            if let reason = status.unhealthyReason() {
                throw APIError(.serviceUnavailable, reason)
            }
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: "{\"status\": \"ok\", \"worker\": \"\(status.worker)\"}")))
        }
        return router
    }

    public static func makeApplication(status: WorkerStatus, host: String, port: Int, logger: Logger) -> some ApplicationProtocol {
        Application(router: makeRouter(status: status),
                     configuration: .init(address: .hostname(host, port: port), serverName: "petrel-\(status.worker)"),
                     logger: logger)
    }
}
