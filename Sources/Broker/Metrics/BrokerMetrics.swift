import KafkaProtocol
import NIOCore
import Prometheus
import Synchronization

/// Everything the broker counts, in one Prometheus registry served on `/metrics`.
/// Metric objects are created once (per API, per topic, per partition) and kept, so the request
/// path only increments.
public final class BrokerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    private let requestCounters: [Counter]
    private let requestLatency: [DurationHistogram]
    private let activeConnections: Gauge
    private let connectionsTotal: Counter
    private let networkBytesOut: Counter
    private let topics = Mutex<[String: TopicMetrics]>([:])
    private let partitionSizes = Mutex<[String: Gauge]>([:])
    let underReplicatedPartitions: Gauge

    public struct TopicMetrics: Sendable {
        public let bytesIn: Counter
        public let bytesOut: Counter
        public let recordsIn: Counter
        public let recordsOut: Counter
    }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let maxKey = Int(ApiKey.allCases.map(\.rawValue).max() ?? 0)
        var counters = [Counter]()
        var histograms = [DurationHistogram]()
        let buckets: [Duration] = [
            .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10),
            .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        for key in 0...maxKey {
            let name = ApiKey(rawValue: Int16(key))?.name ?? "Unknown\(key)"
            counters.append(registry.makeCounter(
                name: "petrel_requests_total", labels: [("api", name)], help: "Requests handled, by Kafka API"))
            histograms.append(registry.makeDurationHistogram(
                name: "petrel_request_duration_seconds", labels: [("api", name)], buckets: buckets,
                help: "Time from request decoded to response ready, by Kafka API"))
        }
        requestCounters = counters
        requestLatency = histograms
        activeConnections = registry.makeGauge(name: "petrel_active_connections", help: "Open client connections")
        connectionsTotal = registry.makeCounter(name: "petrel_connections_total", help: "Client connections accepted")
        networkBytesOut = registry.makeCounter(name: "petrel_network_bytes_out_total", help: "Response bytes written to clients")
        underReplicatedPartitions = registry.makeGauge(
            name: "petrel_under_replicated_partitions", help: "Partitions led here whose ISR is smaller than their replica set")
    }

    func connectionOpened() {
        activeConnections.increment()
        connectionsTotal.increment()
    }

    func connectionClosed() { activeConnections.decrement() }

    func bytesSent(_ count: Int) { networkBytesOut.increment(by: Int64(count)) }

    func requestCompleted(_ api: ApiKey, started: NIODeadline) {
        let index = Int(api.rawValue)
        guard index < requestCounters.count else { return }
        requestCounters[index].increment()
        let nanos = (NIODeadline.now() - started).nanoseconds
        requestLatency[index].record(.nanoseconds(nanos))
    }

    /// The counters of one topic, created on first use.
    public func topic(_ name: String) -> TopicMetrics {
        if let existing = topics.withLock({ $0[name] }) { return existing }
        let labels = [("topic", name)]
        let metrics = TopicMetrics(
            bytesIn: registry.makeCounter(name: "petrel_topic_bytes_in_total", labels: labels, help: "Record batch bytes appended"),
            bytesOut: registry.makeCounter(name: "petrel_topic_bytes_out_total", labels: labels, help: "Record batch bytes fetched"),
            recordsIn: registry.makeCounter(name: "petrel_topic_records_in_total", labels: labels, help: "Records appended"),
            recordsOut: registry.makeCounter(name: "petrel_topic_records_out_total", labels: labels, help: "Records fetched (counted per batch header)"))
        return topics.withLock { map in
            if let raced = map[name] { return raced }
            map[name] = metrics
            return metrics
        }
    }

    /// Sets the on-disk size of a partition's log.
    public func setLogSize(topic: String, partition: Int32, bytes: Int) {
        let key = "\(topic)-\(partition)"
        let gauge = partitionSizes.withLock { map -> Gauge in
            if let g = map[key] { return g }
            let g = registry.makeGauge(
                name: "petrel_log_size_bytes", labels: [("topic", topic), ("partition", "\(partition)")],
                help: "Bytes on disk in a partition's log segments")
            map[key] = g
            return g
        }
        gauge.set(Double(bytes))
    }

    /// Forgets a deleted partition's size gauge.
    public func removeLogSize(topic: String, partition: Int32) {
        let key = "\(topic)-\(partition)"
        if let gauge = partitionSizes.withLock({ $0.removeValue(forKey: key) }) {
            registry.unregisterGauge(gauge)
        }
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> [UInt8] {
        var out = [UInt8]()
        registry.emit(into: &out)
        return out
    }
}
