import KafkaProtocol
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One TCP connection to one broker: size-prefixed frames, correlation ids, any number of
/// requests in flight (answers are matched by correlation id), a timeout per request, and the
/// API versions negotiated with this broker at connect time (ApiVersions).
///
/// Thread-safe; every request is encoded by the caller, sent by the channel's event loop, and its
/// answer decoded by the caller. Malformed answers throw ``KafkaClientError/protocolViolation(_:)``.
public final class BrokerConnection: Sendable {
    /// The broker's node id (-1 for a bootstrap connection whose node is not yet known).
    public let nodeId: Int32
    public let host: String
    public let port: Int
    /// The broker's version range per API key, from its ApiVersions answer.
    public let brokerVersions: [Int16: ClosedRange<Int16>]

    let channel: Channel
    let clientId: String
    let requestTimeoutMs: Int

    private init(
        nodeId: Int32, host: String, port: Int, channel: Channel, clientId: String, requestTimeoutMs: Int,
        brokerVersions: [Int16: ClosedRange<Int16>]
    ) {
        self.nodeId = nodeId
        self.host = host
        self.port = port
        self.channel = channel
        self.clientId = clientId
        self.requestTimeoutMs = requestTimeoutMs
        self.brokerVersions = brokerVersions
    }

    /// Connects (TLS first when `sslContext` is given: `security.protocol=SSL`) and negotiates
    /// API versions.
    static func connect(
        host: String, port: Int, nodeId: Int32, configuration: ClientConfiguration, sslContext: NIOSSLContext? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(KafkaClientError) -> BrokerConnection {
        let maxFrame = configuration.maxResponseSize
        let configurator = configuration.transportConfigurator
        if configuration.tls != nil && sslContext == nil {
            throw .invalidConfiguration("TLS is configured but no TLS context was made")
        }
        // SNI and the name checked: a host name; an IP address is checked against the
        // certificate's IP SANs (NIOSSL uses the peer address) and sends no SNI.
        let name = configuration.tlsServerHostname ?? host
        let sni: String? = (try? SocketAddress(ipAddress: name, port: 0)) == nil ? name : nil
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.milliseconds(Int64(configuration.connectTimeoutMs)))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: KafkaFrames.receiveAllocator)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: sni))
                        }
                        if let configurator { try configurator(channel, host) }
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: maxFrame)))
                        try channel.pipeline.syncOperations.addHandler(KafkaClientHandler())
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw .connectionFailed("\(host):\(port): \(error)")
        }
        let bootstrap = BrokerConnection(
            nodeId: nodeId, host: host, port: port, channel: channel, clientId: configuration.clientId,
            requestTimeoutMs: configuration.requestTimeoutMs, brokerVersions: [:])
        do {
            let versions = try await bootstrap.negotiateVersions(softwareVersion: configuration.softwareVersion)
            return BrokerConnection(
                nodeId: nodeId, host: host, port: port, channel: channel, clientId: configuration.clientId,
                requestTimeoutMs: configuration.requestTimeoutMs, brokerVersions: versions)
        } catch {
            bootstrap.close()
            throw error
        }
    }

    /// ApiVersions: first at the highest version this client knows; a broker that does not know
    /// it answers UNSUPPORTED_VERSION in a v0 body listing its range, and the client asks again.
    private func negotiateVersions(softwareVersion: String) async throws(KafkaClientError) -> [Int16: ClosedRange<Int16>] {
        var version = ApiKey.apiVersions.clientMaxVersion
        for _ in 0..<3 {
            let request = ApiVersionsRequest(clientSoftwareName: "petrel-swift", clientSoftwareVersion: softwareVersion)
            var frame = try await sendFrame(request, version: version)
            let response: ApiVersionsResponse
            do {
                _ = try ResponseHeader(from: &frame, version: 0)
                let bodyStart = frame
                do {
                    response = try ApiVersionsResponse(from: &frame, version: version)
                } catch {
                    var v0 = bodyStart
                    response = try ApiVersionsResponse(from: &v0, version: 0)
                }
            } catch {
                throw .protocolViolation("ApiVersions answer: \(error)")
            }
            if response.errorCode == KafkaErrorCode.unsupportedVersion.rawValue {
                let theirs = response.apiKeys.first { $0.apiKey == ApiKey.apiVersions.rawValue }?.maxVersion ?? 0
                let next = min(theirs, version - 1)
                guard next >= 0, next < version else { throw .unsupportedApi("ApiVersions") }
                version = next
                continue
            }
            try KafkaClientError.check(response.errorCode)
            var map = [Int16: ClosedRange<Int16>]()
            for key in response.apiKeys where key.minVersion <= key.maxVersion && key.minVersion >= 0 {
                map[key.apiKey] = key.minVersion...key.maxVersion
            }
            return map
        }
        throw .unsupportedApi("ApiVersions negotiation did not converge")
    }

    /// The highest version of `api` both this client and the broker speak.
    public func version(for api: ApiKey) throws(KafkaClientError) -> Int16 {
        let ours = api.clientMinVersion...api.clientMaxVersion
        guard let theirs = brokerVersions[api.rawValue] else {
            throw .unsupportedApi("\(api.name) is not offered by broker \(nodeId) (\(host):\(port))")
        }
        let high = min(ours.upperBound, theirs.upperBound)
        guard high >= max(ours.lowerBound, theirs.lowerBound) else {
            throw .unsupportedApi(
                "\(api.name): broker \(nodeId) speaks \(theirs), this client \(ours)")
        }
        return high
    }

    /// Whether the broker offers `api` at all.
    public func supports(_ api: ApiKey) -> Bool { (try? version(for: api)) != nil }

    public var isActive: Bool { channel.isActive }

    public func close() {
        channel.close(promise: nil)
    }

    /// Sends a request at the negotiated version (or `version`) and decodes its answer.
    public func send<M: KafkaRequestMessage>(
        _ request: M, version: Int16? = nil, timeoutMs: Int? = nil
    ) async throws(KafkaClientError) -> M.Response {
        let v: Int16
        if let version { v = version } else { v = try self.version(for: M.apiKey) }
        var frame = try await sendFrame(request, version: v, timeoutMs: timeoutMs)
        do {
            _ = try ResponseHeader(from: &frame, version: M.apiKey.responseHeaderVersion(for: v))
            return try M.Response(from: &frame, version: v)
        } catch {
            throw .protocolViolation("\(M.apiKey.name) v\(v) answer from broker \(nodeId): \(error)")
        }
    }

    /// Sends a request that gets no answer (Produce with acks=0). Returns once written.
    public func sendWithoutResponse<M: KafkaRequestMessage>(_ request: M, version: Int16? = nil) async throws(KafkaClientError) {
        let v: Int16
        if let version { v = version } else { v = try self.version(for: M.apiKey) }
        let frame = try encode(request, version: v)
        do {
            try await channel.writeAndFlush(OutboundRequest(frame: frame, tail: [], promise: nil, api: M.apiKey.name, timeoutMs: 0)).get()
        } catch {
            throw .connectionClosed("\(host):\(port): \(error)")
        }
    }

    private func encode<M: KafkaRequestMessage>(_ request: M, version: Int16) throws(KafkaClientError) -> ByteBuffer {
        var buffer = channel.allocator.buffer(capacity: 256)
        do {
            // The correlation id (0 here) is set by the channel handler when it writes the frame.
            try KafkaFrames.encodeRequest(request, version: version, correlationId: 0, clientId: clientId, into: &buffer)
        } catch {
            throw .protocolViolation("cannot encode \(M.apiKey.name) v\(version): \(error)")
        }
        return buffer
    }

    /// Sends and returns the raw answer frame (header + body).
    func sendFrame<M: KafkaRequestMessage>(_ request: M, version: Int16, timeoutMs: Int? = nil) async throws(KafkaClientError) -> ByteBuffer {
        try await sendEncoded(frame: encode(request, version: version), tail: [], api: M.apiKey.name, timeoutMs: timeoutMs)
    }

    /// Sends a Produce request without copying its record batches into the frame (see
    /// ``ProduceFrame``). Nil answer with acks=0 (none comes).
    func sendProduce(
        acks: Int16, timeoutMs: Int32, topics: [(name: String, partitions: [ProduceFrame.Partition])], answerTimeoutMs: Int
    ) async throws(KafkaClientError) -> ProduceResponse? {
        try await produceAnswer(writeProduce(acks: acks, timeoutMs: timeoutMs, topics: topics, answerTimeoutMs: answerTimeoutMs))
    }

    /// A Produce request written, and how to read its answer.
    struct WrittenProduce: Sendable {
        var version: Int16
        /// nil with acks=0 (no answer comes).
        var answer: EventLoopFuture<ByteBuffer>?
    }

    /// The first half of `sendProduce`: encodes and writes the request now, so requests reach
    /// the socket in the order of these calls (from any thread); `produceAnswer` waits for the
    /// answer.
    func writeProduce(
        acks: Int16, timeoutMs: Int32, topics: [(name: String, partitions: [ProduceFrame.Partition])], answerTimeoutMs: Int
    ) throws(KafkaClientError) -> WrittenProduce {
        let v = try version(for: .produce)
        let frame = try ProduceFrame.encode(
            acks: acks, timeoutMs: timeoutMs, topics: topics, version: v, clientId: clientId, allocator: channel.allocator)
        guard acks != 0 else {
            channel.writeAndFlush(OutboundRequest(frame: frame.head, tail: frame.tail, promise: nil, api: "Produce", timeoutMs: 0), promise: nil)
            return WrittenProduce(version: v, answer: nil)
        }
        return WrittenProduce(version: v, answer: write(frame: frame.head, tail: frame.tail, api: "Produce", timeoutMs: answerTimeoutMs))
    }

    /// The second half: the answer to a `writeProduce` (nil with acks=0).
    func produceAnswer(_ written: WrittenProduce) async throws(KafkaClientError) -> ProduceResponse? {
        guard let future = written.answer else { return nil }
        var answer = try await awaitAnswer(future)
        return try Self.decodeProduceAnswer(&answer, version: written.version, nodeId: nodeId)
    }

    private static func decodeProduceAnswer(_ answer: inout ByteBuffer, version v: Int16, nodeId: Int32) throws(KafkaClientError) -> ProduceResponse {
        do {
            _ = try ResponseHeader(from: &answer, version: ApiKey.produce.responseHeaderVersion(for: v))
            return try ProduceResponse(from: &answer, version: v)
        } catch {
            throw .protocolViolation("Produce v\(v) answer from broker \(nodeId): \(error)")
        }
    }

    private func sendEncoded(frame: ByteBuffer, tail: [ByteBuffer], api: String, timeoutMs: Int?) async throws(KafkaClientError) -> ByteBuffer {
        try await awaitAnswer(write(frame: frame, tail: tail, api: api, timeoutMs: timeoutMs))
    }

    /// Writes a request now; its answer (or the connection's failure) completes the future.
    private func write(frame: ByteBuffer, tail: [ByteBuffer], api: String, timeoutMs: Int?) -> EventLoopFuture<ByteBuffer> {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let timeout = timeoutMs ?? requestTimeoutMs
        channel.writeAndFlush(
            OutboundRequest(frame: frame, tail: tail, promise: promise, api: api, timeoutMs: timeout)
        ).whenFailure { error in
            promise.fail(KafkaClientError.connectionClosed("\(error)"))
        }
        return promise.futureResult
    }

    private func awaitAnswer(_ answer: EventLoopFuture<ByteBuffer>) async throws(KafkaClientError) -> ByteBuffer {
        do {
            return try await answer.get()
        } catch let error as KafkaClientError {
            throw error
        } catch {
            throw .connectionClosed("\(host):\(port): \(error)")
        }
    }
}

/// A frame to write, and where its answer goes (nil: no answer expected).
struct OutboundRequest: Sendable {
    /// The frame, or its first part (size prefix and header included, the size counting `tail`).
    var frame: ByteBuffer
    /// The rest of the frame, written after `frame` as they are (record batches, not copied).
    var tail: [ByteBuffer]
    var promise: EventLoopPromise<ByteBuffer>?
    var api: String
    var timeoutMs: Int
}

/// Splits the byte stream into size-prefixed frames, refusing frames above the limit.
struct KafkaFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxFrameSize: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try KafkaFrames.readFrame(from: &buffer, maxFrameSize: maxFrameSize) else { return .needMoreData }
        context.fireChannelRead(NIOAny(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Assigns correlation ids, matches answers to requests, times requests out.
final class KafkaClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutboundRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var promise: EventLoopPromise<ByteBuffer>
        var timeout: Scheduled<Void>?
    }

    private var nextCorrelationId: Int32 = 1
    private var pending: [Int32: Pending] = [:]
    private var closed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var request = unwrapOutboundIn(data)
        if closed {
            let error = KafkaClientError.connectionClosed("connection closed")
            request.promise?.fail(error)
            promise?.fail(error)
            return
        }
        let id = nextCorrelationId
        nextCorrelationId = nextCorrelationId == Int32.max ? 1 : nextCorrelationId + 1
        if let answer = request.promise {
            var entry = Pending(promise: answer, timeout: nil)
            if request.timeoutMs > 0 {
                let api = request.api
                let ms = request.timeoutMs
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                entry.timeout = context.eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) {
                    loopBound.value.expire(id, api: api, ms: ms)
                }
            }
            pending[id] = entry
        }
        // size(4) apiKey(2) apiVersion(2) correlationId(4). The frame is shared with the
        // caller (and `data`), so setting the id in place would copy all of it: a large frame
        // goes as a fresh 12-byte head with the id, then the rest as a slice.
        let frame = request.frame
        if frame.readableBytes <= 4096 || frame.readableBytes < 12 {
            request.frame.setInteger(id, at: frame.readerIndex + 8)
            context.write(wrapOutboundOut(request.frame), promise: request.tail.isEmpty ? promise : nil)
        } else {
            var head = context.channel.allocator.buffer(capacity: 12)
            head.writeImmutableBuffer(frame.getSlice(at: frame.readerIndex, length: 8)!)
            head.writeInteger(id)
            context.write(wrapOutboundOut(head), promise: nil)
            let rest = frame.getSlice(at: frame.readerIndex + 12, length: frame.readableBytes - 12)!
            context.write(wrapOutboundOut(rest), promise: request.tail.isEmpty ? promise : nil)
        }
        for (i, part) in request.tail.enumerated() {
            context.write(wrapOutboundOut(part), promise: i == request.tail.count - 1 ? promise : nil)
        }
    }

    private func expire(_ id: Int32, api: String, ms: Int) {
        guard let entry = pending.removeValue(forKey: id) else { return }
        entry.promise.fail(KafkaClientError.requestTimedOut(api: api, timeoutMs: ms))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let id = frame.getInteger(at: frame.readerIndex, endianness: .big, as: Int32.self) else {
            context.fireErrorCaught(KafkaClientError.protocolViolation("answer frame shorter than its header"))
            return
        }
        // An unknown id: the answer to a request that already timed out. Dropped.
        guard let entry = pending.removeValue(forKey: id) else { return }
        entry.timeout?.cancel()
        entry.promise.succeed(frame)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(KafkaClientError.connectionClosed("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(KafkaClientError.connectionClosed("the broker closed the connection"))
        context.fireChannelInactive()
    }

    private func failAll(_ error: KafkaClientError) {
        closed = true
        let all = pending
        pending.removeAll()
        for (_, entry) in all {
            entry.timeout?.cancel()
            entry.promise.fail(error)
        }
    }
}

extension ApiKey {
    /// The lowest version this client uses.
    var clientMinVersion: Int16 {
        switch self {
        case .produce: return 3  // record batches v2
        case .fetch: return 4  // record batches v2
        case .listOffsets: return 1
        case .metadata: return 1
        default: return validVersions.lowerBound
        }
    }

    /// The highest version this client's logic handles (the codec may know later ones).
    var clientMaxVersion: Int16 {
        let codec: Int16 = latestVersionUnstable ? validVersions.upperBound - 1 : validVersions.upperBound
        let cap: Int16
        switch self {
        case .fetch: cap = 12  // v13+ names topics by id only
        case .offsetFetch: cap = 7  // v8+ batches groups
        case .offsetCommit: cap = 8
        case .apiVersions: cap = 3
        case .metadata: cap = 12
        case .produce: cap = 11
        case .listOffsets: cap = 8
        case .joinGroup: cap = 9
        case .findCoordinator: cap = 5
        case .describeGroups: cap = 5
        case .listGroups: cap = 4
        case .createTopics: cap = 7
        case .deleteTopics: cap = 5  // v6 adds topic ids; names still work, but keep it plain
        default: cap = codec
        }
        return min(codec, cap)
    }
}
