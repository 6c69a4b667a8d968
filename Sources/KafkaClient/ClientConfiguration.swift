import Foundation
import KafkaProtocol
import NIOCore
import NIOSSL

/// Settings shared by every client (producer, consumer, admin). Kafka's names in the comments.
public struct ClientConfiguration: Sendable {
    /// `bootstrap.servers`: "host:port" entries; the first reachable one gives the cluster metadata.
    public var bootstrapServers: [String]
    /// `client.id`, sent in every request header.
    public var clientId: String = "petrel-swift"
    /// `request.timeout.ms`: how long to wait for any answer.
    public var requestTimeoutMs: Int = 30_000
    /// `socket.connection.setup.timeout.ms`.
    public var connectTimeoutMs: Int = 10_000
    /// `reconnect.backoff.ms` / `reconnect.backoff.max.ms`: exponential wait between connection
    /// attempts to one address.
    public var reconnectBackoffMs: Int = 50
    public var reconnectBackoffMaxMs: Int = 1_000
    /// `retry.backoff.ms` / `retry.backoff.max.ms`: wait before retrying a failed request.
    public var retryBackoffMs: Int = 100
    public var retryBackoffMaxMs: Int = 1_000
    /// `metadata.max.age.ms`: metadata older than this is refreshed before use.
    public var metadataMaxAgeMs: Int = 300_000
    /// The largest answer frame accepted (Fetch answers included).
    public var maxResponseSize: Int = 128 * 1024 * 1024
    /// Reported to brokers in ApiVersions.
    public var softwareVersion: String = "0.1.0"
    /// `security.protocol=SSL`: TLS (swift-nio-ssl) to every broker, with these trust roots,
    /// client certificate and verification settings. Nil: plaintext (`PLAINTEXT`).
    /// ``applying(properties:)`` builds it from librdkafka's `ssl.*` property names.
    public var tls: TLSConfiguration?
    /// The name sent as SNI and checked against the broker's certificate; nil: the host the
    /// connection goes to (bootstrap or advertised listener). An IP address is checked against
    /// the certificate's IP subject alternative names and sends no SNI.
    public var tlsServerHostname: String?
    /// A hook run first in every new channel's initializer (after the TLS handler when `tls` is
    /// set), e.g. to add another handler. Nil: none.
    public var transportConfigurator: (@Sendable (Channel, String) throws -> Void)?

    public init(bootstrapServers: [String]) {
        self.bootstrapServers = bootstrapServers
    }

    var retryPolicy: RetryPolicy { RetryPolicy(backoffMs: retryBackoffMs, backoffMaxMs: retryBackoffMaxMs) }

    /// Applies Kafka client properties, librdkafka's names (as `--command-config` files and
    /// `-X` flags carry them): `security.protocol` (PLAINTEXT or SSL), `ssl.ca.location` (PEM
    /// trust roots; default: the system's), `ssl.certificate.location` + `ssl.key.location` (+
    /// `ssl.key.password`) for a client certificate, `enable.ssl.certificate.verification`
    /// (false: no verification), `ssl.endpoint.identification.algorithm` (https or none: check
    /// the host name or not), plus `client.id`, `request.timeout.ms`,
    /// `socket.connection.setup.timeout.ms`, `retry.backoff.ms`, `retry.backoff.max.ms`,
    /// `reconnect.backoff.ms`, `reconnect.backoff.max.ms`, `metadata.max.age.ms`.
    /// SASL is not supported: `SASL_*` protocols throw. Unknown keys throw too.
    public func applying(properties: [String: String]) throws(KafkaClientError) -> ClientConfiguration {
        var c = self
        func int(_ key: String) throws(KafkaClientError) -> Int? {
            guard let v = properties[key] else { return nil }
            guard let n = Int(v.trimmingCharacters(in: .whitespaces)), n >= 0 else { throw .invalidConfiguration("\(key)=\(v): not a number") }
            return n
        }
        for key in properties.keys.sorted() {
            switch key {
            case "security.protocol", "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
                "enable.ssl.certificate.verification", "ssl.endpoint.identification.algorithm", "client.id", "request.timeout.ms",
                "socket.connection.setup.timeout.ms", "retry.backoff.ms", "retry.backoff.max.ms", "reconnect.backoff.ms",
                "reconnect.backoff.max.ms", "metadata.max.age.ms", "bootstrap.servers":
                continue
            default:
                throw .invalidConfiguration("unsupported client property \(key)")
            }
        }
        if let v = properties["client.id"] { c.clientId = v }
        if let n = try int("request.timeout.ms") { c.requestTimeoutMs = n }
        if let n = try int("socket.connection.setup.timeout.ms") { c.connectTimeoutMs = n }
        if let n = try int("retry.backoff.ms") { c.retryBackoffMs = n }
        if let n = try int("retry.backoff.max.ms") { c.retryBackoffMaxMs = n }
        if let n = try int("reconnect.backoff.ms") { c.reconnectBackoffMs = n }
        if let n = try int("reconnect.backoff.max.ms") { c.reconnectBackoffMaxMs = n }
        if let n = try int("metadata.max.age.ms") { c.metadataMaxAgeMs = n }
        let proto = (properties["security.protocol"] ?? (c.tls == nil ? "PLAINTEXT" : "SSL")).uppercased()
        switch proto {
        case "PLAINTEXT":
            let ssl = properties.keys.filter { $0.hasPrefix("ssl.") || $0 == "enable.ssl.certificate.verification" }
            if !ssl.isEmpty { throw .invalidConfiguration("\(ssl.sorted().joined(separator: ", ")) given but security.protocol is PLAINTEXT") }
            c.tls = nil
            return c
        case "SSL":
            break
        case "SASL_PLAINTEXT", "SASL_SSL":
            throw .invalidConfiguration("security.protocol=\(proto): SASL is not supported")
        default:
            throw .invalidConfiguration("security.protocol=\(proto): PLAINTEXT or SSL")
        }
        var tls = c.tls ?? TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = properties["ssl.ca.location"] {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            }
            switch (properties["ssl.certificate.location"], properties["ssl.key.location"]) {
            case let (cert?, key?):
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                if let password = properties["ssl.key.password"] {
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem) { $0(Array(password.utf8)) })
                } else {
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                }
            case (nil, nil):
                break
            default:
                throw KafkaClientError.invalidConfiguration("ssl.certificate.location and ssl.key.location go together")
            }
        } catch let error as KafkaClientError {
            throw error
        } catch {
            throw .invalidConfiguration("TLS files: \(error)")
        }
        if let v = properties["enable.ssl.certificate.verification"] {
            switch v.lowercased() {
            case "true": break
            case "false": tls.certificateVerification = .none
            default: throw .invalidConfiguration("enable.ssl.certificate.verification=\(v): true or false")
            }
        }
        if let v = properties["ssl.endpoint.identification.algorithm"] {
            switch v.lowercased() {
            case "https":
                if tls.certificateVerification == .noHostnameVerification { tls.certificateVerification = .fullVerification }
            case "none", "":
                if tls.certificateVerification == .fullVerification { tls.certificateVerification = .noHostnameVerification }
            default: throw .invalidConfiguration("ssl.endpoint.identification.algorithm=\(v): https or none")
            }
        }
        c.tls = tls
        return c
    }
}

/// One broker of the cluster.
public struct BrokerInfo: Hashable, Sendable {
    public var nodeId: Int32
    public var host: String
    public var port: Int
    public var rack: String?
}

/// One partition as the metadata describes it.
public struct PartitionInfo: Hashable, Sendable {
    public var partition: Int32
    /// The leader's node id, -1 when there is none.
    public var leader: Int32
    public var leaderEpoch: Int32
    public var replicas: [Int32]
    public var isr: [Int32]
    public var offlineReplicas: [Int32]
    /// The partition's error, nil when none.
    public var error: KafkaErrorCode?
}

/// One topic as the metadata describes it.
public struct TopicInfo: Hashable, Sendable {
    public var name: String
    public var topicId: KafkaUUID
    public var isInternal: Bool
    /// Sorted by partition index.
    public var partitions: [PartitionInfo]
    public var error: KafkaErrorCode?
}

/// A snapshot of the cluster's metadata.
public struct ClusterMetadata: Sendable {
    public var clusterId: String?
    public var controllerId: Int32
    public var brokers: [Int32: BrokerInfo]
    public var topics: [String: TopicInfo]

    public init(clusterId: String? = nil, controllerId: Int32 = -1, brokers: [Int32: BrokerInfo] = [:], topics: [String: TopicInfo] = [:]) {
        self.clusterId = clusterId
        self.controllerId = controllerId
        self.brokers = brokers
        self.topics = topics
    }

    /// The leader of a partition, nil if unknown or leaderless.
    public func leader(for tp: TopicPartition) -> Int32? {
        guard let topic = topics[tp.topic], tp.partition >= 0, Int(tp.partition) < topic.partitions.count else { return nil }
        let p = topic.partitions[Int(tp.partition)]
        return p.leader >= 0 ? p.leader : nil
    }

    public func partitionCount(_ topic: String) -> Int? {
        guard let t = topics[topic], t.error == nil, !t.partitions.isEmpty else { return nil }
        return t.partitions.count
    }
}
