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
                descriptor: Self.name("requests", "total", "Requests handled, by Kafka API"), labels: [("api", name)]))
            histograms.append(registry.makeDurationHistogram(
                descriptor: Self.name("request_duration", "seconds", "Time from request decoded to response ready, by Kafka API"),
                labels: [("api", name)], buckets: buckets))
        }
        requestCounters = counters
        requestLatency = histograms
        activeConnections = registry.makeGauge(descriptor: Self.name("active_connections", "", "Open client connections"))
        connectionsTotal = registry.makeCounter(descriptor: Self.name("connections", "total", "Client connections accepted"))
        networkBytesOut = registry.makeCounter(descriptor: Self.name("network_bytes_out", "total", "Response bytes written to clients"))
        underReplicatedPartitions = registry.makeGauge(
            descriptor: Self.name("under_replicated_partitions", "", "Partitions led here whose ISR is smaller than their replica set"))
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
            bytesIn: registry.makeCounter(descriptor: Self.name("topic_bytes_in", "total", "Record batch bytes appended"), labels: labels),
            bytesOut: registry.makeCounter(descriptor: Self.name("topic_bytes_out", "total", "Record batch bytes fetched"), labels: labels),
            recordsIn: registry.makeCounter(descriptor: Self.name("topic_records_in", "total", "Records appended"), labels: labels),
            recordsOut: registry.makeCounter(descriptor: Self.name("topic_records_out", "total", "Records fetched (from batch headers)"), labels: labels))
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
                descriptor: Self.name("log_size", "bytes", "Bytes on disk in a partition's log segments"),
                labels: [("topic", topic), ("partition", "\(partition)")])
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

    /// `petrel_<name>_<unit>` with its help text.
    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "petrel", metricName: metric, unitName: unit, helpText: help)
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> [UInt8] {
        var out = [UInt8]()
        registry.emit(into: &out)
        return out
    }
}
