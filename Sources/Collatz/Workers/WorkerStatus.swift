import Foundation

/// What a worker reports on `/metrics` and `/healthz` (the `PETREL_METRICS_LISTENER` server):
/// counters, gauges and the reason it cannot do its job, if any. Thread-safe.
public final class WorkerStatus: @unchecked Sendable {
    public let worker: String
    private let lock = NSLock()
    private var counters: [String: (help: String, value: Double)] = [:]
    private var gauges: [String: (help: String, value: Double)] = [:]
    private var failingSince: ContinuousClock.Instant?
    private var failure: String?
    /// Unhealthy after failing this long.
    public var unhealthyAfter: Duration

    public init(worker: String, unhealthyAfter: Duration = .seconds(60)) {
        self.worker = worker
        self.unhealthyAfter = unhealthyAfter
    }

    public func add(_ name: String, _ amount: Double = 1, help: String) {
        lock.lock(); defer { lock.unlock() }
        counters[name, default: (help, 0)].value += amount
    }

    public func set(_ name: String, _ value: Double, help: String) {
        lock.lock(); defer { lock.unlock() }
        gauges[name] = (help, value)
    }

    public func counter(_ name: String) -> Double {
        lock.lock(); defer { lock.unlock() }
        return counters[name]?.value ?? 0
    }

    /// Something prevents the work (ClickHouse down, broker unreachable); the first call starts
    /// the clock.
    public func failing(_ reason: String, now: ContinuousClock.Instant = .now) {
        lock.lock(); defer { lock.unlock() }
        if failingSince == nil { failingSince = now }
        failure = reason
    }

    public func recovered() {
        lock.lock(); defer { lock.unlock() }
        failingSince = nil
        failure = nil
    }

    /// nil when healthy, else why not.
    public func unhealthyReason(now: ContinuousClock.Instant = .now) -> String? {
        lock.lock(); defer { lock.unlock() }
        guard let since = failingSince, now - since >= unhealthyAfter else { return nil }
        return "\(failure ?? "failing") (since \(Int((now - since).components.seconds)) s)"
    }

    /// Prometheus text exposition.
    public func renderPrometheus() -> String {
        lock.lock(); defer { lock.unlock() }
        var out = ""
        for (name, c) in counters.sorted(by: { $0.key < $1.key }) {
            out += "# HELP \(name) \(c.help)\n# TYPE \(name) counter\n\(name){worker=\"\(worker)\"} \(c.value)\n"
        }
        for (name, g) in gauges.sorted(by: { $0.key < $1.key }) {
            out += "# HELP \(name) \(g.help)\n# TYPE \(name) gauge\n\(name){worker=\"\(worker)\"} \(g.value)\n"
        }
        let healthy = failingSince.map { ContinuousClock.now - $0 < unhealthyAfter } ?? true
        out += "# HELP petrel_worker_healthy 1 while the worker can do its job.\n# TYPE petrel_worker_healthy gauge\n"
        out += "petrel_worker_healthy{worker=\"\(worker)\"} \(healthy ? 1 : 0)\n"
        return out
    }
}
