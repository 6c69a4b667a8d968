import Foundation
import KafkaProtocol
import NIOCore
import NIOPosix
import NIOSSL
import Testing
@testable import KafkaClient

/// `security.protocol=SSL`: the client against a fake Kafka broker (``IdempotenceBroker``) behind a
/// swift-nio-ssl server with a self-signed certificate. The Petrel broker itself has no TLS
/// listener (yet), so this is the client's TLS test.
@Suite struct TLSTests {
    /// Self-signed, CN=localhost, SANs DNS:localhost and IP:127.0.0.1, valid 2000-2199.
    static let certificate = """
        -----BEGIN CERTIFICATE-----
        MIIBXDCCAQGgAwIBAgIUbYGPu+Qk0BSApY1pmNztad+2/pwwCgYIKoZIzj0EAwIw
        FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTAwMDEwMTAwMDAwMFoYDzIxOTkxMjMx
        MDAwMDAwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
        PQMBBwNCAASBre0RWwf9lFlhhBcdGXWm13Z5DDL1usVC6IWh8vjOndmel4rnrDhw
        CHrFpg1nb4mEaW/Gcmpe9KejPnnqgStjoy8wLTAaBgNVHREEEzARgglsb2NhbGhv
        c3SHBH8AAAEwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAoxpK
        5CbbGVqhVVXSRdIyEl9IOM1k4qqWNZ84OCALTf8CIQDtAMz/DKCb7GzXgHAgWn+J
        KQs5LFzRE9s6V4BM3AXzdw==
        -----END CERTIFICATE-----
        """
    static let privateKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2QWFT6SToV5VnZRt
        eMy836p+D0lYwEIJeUO7U3/NefuhRANCAASBre0RWwf9lFlhhBcdGXWm13Z5DDL1
        usVC6IWh8vjOndmel4rnrDhwCHrFpg1nb4mEaW/Gcmpe9KejPnnqgStj
        -----END PRIVATE KEY-----
        """
    /// Another self-signed certificate (DNS:other.example): trusting it must not let the client in.
    static let otherCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBUTCB96ADAgECAhQqJT6Z7YBHXnR9M9D7mFUH6lr5dzAKBggqhkjOPQQDAjAQ
        MQ4wDAYDVQQDDAVvdGhlcjAgFw0wMDAxMDEwMDAwMDBaGA8yMTk5MTIzMTAwMDAw
        MFowEDEOMAwGA1UEAwwFb3RoZXIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASv
        rjaCPzQnlcGhZ4uTzYqYOeY4dzJa1Qyr95dDyoxH6EjxjBfC5O16MxATfqcr5tgc
        2uDhdtwI8DfYwTLyjH3Foy0wKzAYBgNVHREEETAPgg1vdGhlci5leGFtcGxlMA8G
        A1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAJxqhND4dlj2mv7Zg/3W
        UgDDkyPVATebmU2oyMxxApBUAiEAzPHe0zQ97ZLkjeR65/BhRfdx9L3vy1UenA8i
        D4YjcvM=
        -----END CERTIFICATE-----
        """

    /// Self-signed, CN and the only SAN DNS:broker.example (no IP SAN), valid 2000-2199.
    static let namedCertificate = """
        -----BEGIN CERTIFICATE-----
        MIIBZDCCAQqgAwIBAgIUQc2ZjnurQx+z5sA4gYx1Jgd+l3QwCgYIKoZIzj0EAwIw
        GTEXMBUGA1UEAwwOYnJva2VyLmV4YW1wbGUwIBcNMDAwMTAxMDAwMDAwWhgPMjE5
        OTEyMzEwMDAwMDBaMBkxFzAVBgNVBAMMDmJyb2tlci5leGFtcGxlMFkwEwYHKoZI
        zj0CAQYIKoZIzj0DAQcDQgAEBOYkwquzqDQccRprzWHCBTmJUwPZthgiIZJyKr7l
        0y9JFpc7Pp/GkvqDWip44VXO/+kCKFx6CRv09FTvcdDiUqMuMCwwGQYDVR0RBBIw
        EIIOYnJva2VyLmV4YW1wbGUwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNI
        ADBFAiAdnjXNXEsZThFV5ohfDkMv6Ve0EhlgldtiXdT8KdnNHAIhAMAxpEiscpeC
        OSiHEVCIDzRu88c/RxApNeCWf5/axlNF
        -----END CERTIFICATE-----
        """
    static let namedPrivateKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3/rXmsDqKgryfpeX
        My5krk2yENp/A4pd5n/4D9JOqhuhRANCAAQE5iTCq7OoNBxxGmvNYcIFOYlTA9m2
        GCIhknIqvuXTL0kWlzs+n8aS+oNaKnjhVc7/6QIoXHoJG/T0VO9x0OJS
        -----END PRIVATE KEY-----
        """

    /// The fake broker behind TLS on 127.0.0.1 (it advertises 127.0.0.1 in its metadata).
    static func startServer(named: Bool = false) async throws -> (Channel, Locked<IdempotenceBroker.Log>) {
        let cert = try NIOSSLCertificate(bytes: Array((named ? namedCertificate : certificate).utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array((named ? namedPrivateKey : privateKey).utf8), format: .pem)
        let context = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: [.certificate(cert)], privateKey: .privateKey(key)))
        let log = Locked(IdempotenceBroker.Log())
        let port = Locked(0)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(IdempotenceBroker(fault: .none, log: log, port: port.withLock { $0 }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port.withLock { $0 = server.localAddress!.port! }
        return (server, log)
    }

    static func trusting(_ pem: String) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem)])
        return tls
    }

    func produce(_ config: ClientConfiguration, records: Int) async throws {
        let client = KafkaClient(config)
        var pc = ProducerConfiguration()
        pc.lingerMs = 1
        let producer = try KafkaProducer(client: client, configuration: pc)
        for i in 0..<records { try await producer.produce(ProducerRecord(topic: "t", partition: 0, key: nil, value: "v\(i)")) }
        try await producer.send(ProducerRecord(topic: "t", partition: 0, key: nil, value: "last"))
        await producer.close()
        await client.shutdown()
    }

    @Test func producesOverTLS() async throws {
        let (server, log) = try await Self.startServer()
        defer { server.close(promise: nil) }
        var config = ClientConfiguration(bootstrapServers: ["127.0.0.1:\(server.localAddress!.port!)"])
        config.tls = try Self.trusting(Self.certificate)
        try await produce(config, records: 100)
        #expect(log.withLock { $0.values } == (0..<100).map { "v\($0)" } + ["last"])
    }

    @Test func hostNameIsChecked() async throws {
        // The certificate names broker.example only: reached at 127.0.0.1, the client must be
        // told the name (tlsServerHostname, also sent as SNI) or refuse.
        let (server, log) = try await Self.startServer(named: true)
        defer { server.close(promise: nil) }
        let port = server.localAddress!.port!
        var config = ClientConfiguration(bootstrapServers: ["127.0.0.1:\(port)"])
        config.tls = try Self.trusting(Self.namedCertificate)
        #expect(await connectError(config, port: port) != nil, "127.0.0.1 is not in the certificate")
        config.tlsServerHostname = "other.example"
        #expect(await connectError(config, port: port) != nil, "other.example is not in the certificate")
        config.tlsServerHostname = "broker.example"
        try await produce(config, records: 3)
        #expect(log.withLock { $0.values.count } == 4)
        // Without host name verification (ssl.endpoint.identification.algorithm=none) the name does not matter.
        config.tlsServerHostname = nil
        config = try config.applying(properties: ["ssl.endpoint.identification.algorithm": "none"])
        #expect(await connectError(config, port: port) == nil)
    }

    func connectError(_ config: ClientConfiguration, port: Int) async -> KafkaClientError? {
        var config = config
        config.requestTimeoutMs = 2_000
        do {
            let context = try config.tls.map { try NIOSSLContext(configuration: $0) }
            let c = try await BrokerConnection.connect(host: "127.0.0.1", port: port, nodeId: -1, configuration: config, sslContext: context)
            c.close()
            return nil
        } catch let error as KafkaClientError {
            return error
        } catch {
            return .connectionFailed("\(error)")
        }
    }

    @Test func untrustedOrPlaintextClientsAreRefused() async throws {
        let (server, log) = try await Self.startServer()
        defer { server.close(promise: nil) }
        let port = server.localAddress!.port!
        var config = ClientConfiguration(bootstrapServers: ["127.0.0.1:\(port)"])
        // The system trust roots do not know the self-signed certificate.
        config.tls = TLSConfiguration.makeClientConfiguration()
        #expect(await connectError(config, port: port) != nil)
        // Trusting another certificate does not help.
        config.tls = try Self.trusting(Self.otherCertificate)
        #expect(await connectError(config, port: port) != nil)
        // Plaintext to a TLS listener: no answer the client can read.
        config.tls = nil
        #expect(await connectError(config, port: port) != nil)
        #expect(log.withLock { $0.values.isEmpty })
    }

    @Test func propertiesConfigureTLS() async throws {
        let dir = NSTemporaryDirectory() + "petrel-tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.certificate.write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        let (server, log) = try await Self.startServer()
        defer { server.close(promise: nil) }
        let base = ClientConfiguration(bootstrapServers: ["127.0.0.1:\(server.localAddress!.port!)"])

        let config = try base.applying(properties: ["security.protocol": "SSL", "ssl.ca.location": dir + "/ca.pem", "client.id": "tls-test"])
        #expect(config.tls != nil && config.clientId == "tls-test")
        try await produce(config, records: 5)
        #expect(log.withLock { $0.values.count } == 6)

        // No verification at all (enable.ssl.certificate.verification=false) also connects.
        let unverified = try base.applying(properties: ["security.protocol": "ssl", "enable.ssl.certificate.verification": "false"])
        #expect(unverified.tls?.certificateVerification == CertificateVerification.none)
        #expect(await connectError(unverified, port: server.localAddress!.port!) == nil)

        let noHostname = try base.applying(properties: ["security.protocol": "SSL", "ssl.endpoint.identification.algorithm": "none"])
        #expect(noHostname.tls?.certificateVerification == .noHostnameVerification)
        #expect(try base.applying(properties: ["security.protocol": "PLAINTEXT"]).tls == nil)
        #expect(throws: KafkaClientError.self) { try base.applying(properties: ["security.protocol": "SASL_SSL"]) }
        #expect(throws: KafkaClientError.self) { try base.applying(properties: ["ssl.ca.location": "/x"]) }  // PLAINTEXT
        #expect(throws: KafkaClientError.self) { try base.applying(properties: ["security.protocol": "SSL", "ssl.ca.location": dir + "/missing.pem"]) }
        #expect(throws: KafkaClientError.self) { try base.applying(properties: ["security.protocol": "SSL", "ssl.key.location": dir + "/ca.pem"]) }
        #expect(throws: KafkaClientError.self) { try base.applying(properties: ["sasl.mechanism": "PLAIN"]) }
    }
}
