import KafkaProtocol
import NIOCore
import NIOPosix
import Synchronization

/// Why a request to another node failed.
struct PeerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One outbound connection from this node to another node's listener, for the cluster's own
/// RPCs (Raft, broker registration and heartbeats, AlterPartition, replica fetches, forwarded
/// admin requests). Requests are pipelined with correlation ids; the connection is opened on
/// first use and again after it breaks. A request that gets no answer within its timeout fails.
final class PeerConnection: Sendable {
    let nodeId: Int32
    let host: String
    let port: Int
    private let eventLoop: EventLoop
    private let clientId: String
    private let state = Mutex(State())

    private struct Pending {
        var apiKey: ApiKey
        var version: Int16
        var promise: EventLoopPromise<KafkaResponse>
    }

    private struct State {
        var channel: Channel?
        var connecting: EventLoopFuture<Channel>?
        var nextCorrelationId: Int32 = 1
        var pending: [Int32: Pending] = [:]
    }

    init(nodeId: Int32, host: String, port: Int, eventLoop: EventLoop, clientId: String) {
        self.nodeId = nodeId
        self.host = host
        self.port = port
        self.eventLoop = eventLoop
        self.clientId = clientId
    }

    /// Sends `request` at `version`; the future holds the decoded response body.
    func send<M: KafkaRequestMessage>(_ request: M, version: Int16, timeout: TimeAmount) -> EventLoopFuture<KafkaResponse> {
        let promise = eventLoop.makePromise(of: KafkaResponse.self)
        channel().whenComplete { [self] result in
            switch result {
            case .failure(let error):
                promise.fail(PeerError("cannot connect to node \(nodeId) at \(host):\(port): \(error)"))
            case .success(let channel):
                let correlationId = state.withLock { s -> Int32 in
                    let id = s.nextCorrelationId
                    s.nextCorrelationId = id == Int32.max ? 1 : id + 1
                    s.pending[id] = Pending(apiKey: M.apiKey, version: version, promise: promise)
                    return id
                }
                var buffer = channel.allocator.buffer(capacity: 256)
                do {
                    try KafkaFrames.encodeRequest(request, version: version, correlationId: correlationId, clientId: clientId, into: &buffer)
                } catch {
                    _ = state.withLock { $0.pending.removeValue(forKey: correlationId) }
                    promise.fail(PeerError("cannot encode \(M.apiKey.name) v\(version): \(error)"))
                    return
                }
                channel.writeAndFlush(buffer).whenFailure { [self] error in
                    fail(correlationId, PeerError("write to node \(nodeId) failed: \(error)"))
                }
                eventLoop.scheduleTask(in: timeout) { [self] in
                    fail(correlationId, PeerError("\(M.apiKey.name) to node \(nodeId) at \(host):\(port) timed out after \(timeout.nanoseconds / 1_000_000) ms"))
                }
            }
        }
        return promise.futureResult
    }

    private func fail(_ correlationId: Int32, _ error: PeerError) {
        let pending = state.withLock { $0.pending.removeValue(forKey: correlationId) }
        pending?.promise.fail(error)
    }

    private func channel() -> EventLoopFuture<Channel> {
        state.withLock { s -> EventLoopFuture<Channel> in
            if let channel = s.channel, channel.isActive { return eventLoop.makeSucceededFuture(channel) }
            if let connecting = s.connecting { return connecting }
            let future = ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(2))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: KafkaFrames.receiveAllocator)
                .channelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: KafkaFrames.defaultMaxFrameSize)))
                        try sync.addHandler(PeerResponseHandler(connection: self))
                    }
                }
                .connect(host: host, port: port)
            s.connecting = future
            future.whenComplete { [self] result in
                state.withLock { s in
                    s.connecting = nil
                    if case .success(let channel) = result { s.channel = channel }
                }
            }
            return future
        }
    }

    fileprivate func received(_ frame: ByteBuffer) {
        var frame = frame
        guard let correlationId = frame.getInteger(at: frame.readerIndex, as: Int32.self) else { return }
        guard let pending = state.withLock({ $0.pending.removeValue(forKey: correlationId) }) else { return }
        do {
            let (_, body) = try KafkaFrames.decodeResponse(&frame, apiKey: pending.apiKey, version: pending.version)
            pending.promise.succeed(body)
        } catch {
            pending.promise.fail(PeerError("node \(nodeId) sent a \(pending.apiKey.name) response that does not decode: \(error)"))
        }
    }

    fileprivate func closed(_ channel: Channel) {
        let orphans = state.withLock { s -> [Pending] in
            guard s.channel === channel else { return [] }
            s.channel = nil
            let all = Array(s.pending.values)
            s.pending = [:]
            return all
        }
        for p in orphans { p.promise.fail(PeerError("connection to node \(nodeId) at \(host):\(port) closed")) }
    }

    func close() {
        let channel = state.withLock { $0.channel }
        channel?.close(promise: nil)
    }
}

private final class PeerResponseHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let connection: PeerConnection

    init(connection: PeerConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Connections to the other nodes, by node id and listener (controller or broker listener).
final class PeerDirectory: Sendable {
    private let connections = Mutex<[String: PeerConnection]>([:])
    private let eventLoopGroup: EventLoopGroup
    private let dataGroup: EventLoopGroup
    private let nodeId: Int32

    /// `eventLoopGroup` carries the quorum's RPCs ("quorum") and the controller's ("controller"),
    /// each on connections of their own: a node answers one request per connection at a time, so
    /// a broker registration waiting for its commit must never hold up the Raft fetches that
    /// commit it. `dataGroup` carries the replica fetches and forwarded requests, so that record
    /// traffic never delays the quorum's messages.
    init(nodeId: Int32, eventLoopGroup: EventLoopGroup, dataGroup: EventLoopGroup) {
        self.nodeId = nodeId
        self.eventLoopGroup = eventLoopGroup
        self.dataGroup = dataGroup
    }

    /// The connection to `node` at `host:port`; a new one when the address changed.
    func connection(to node: Int32, host: String, port: Int, purpose: String) -> PeerConnection {
        let key = "\(purpose)/\(node)"
        return connections.withLock { map in
            if let existing = map[key], existing.host == host, existing.port == port { return existing }
            map[key]?.close()
            let c = PeerConnection(nodeId: node, host: host, port: port,
                                   eventLoop: purpose == "controller" || purpose == "quorum" ? eventLoopGroup.next() : dataGroup.next(),
                                   clientId: "petrel-\(nodeId)-\(purpose)")
            map[key] = c
            return c
        }
    }

    func closeAll() {
        let all = connections.withLock { m -> [PeerConnection] in
            let values = Array(m.values)
            m = [:]
            return values
        }
        for c in all { c.close() }
    }
}
