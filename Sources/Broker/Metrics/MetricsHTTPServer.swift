import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves `GET /metrics` (Prometheus text format) on its own listener, apart from the Kafka port.
/// Anything else gets 404 with a JSON body; non-GET methods get 405.
public final class MetricsHTTPServer: Sendable {
    private let channel: Channel

    public var localPort: Int? { channel.localAddress?.port }

    public static func start(host: String, port: Int, metrics: BrokerMetrics, group: EventLoopGroup, logger: Logger) async throws -> MetricsHTTPServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(MetricsRequestHandler(metrics: metrics))
                }
            }
            .bind(host: host, port: port).get()
        logger.info("metrics listening on http://\(host):\(channel.localAddress?.port ?? port)/metrics")
        return MetricsHTTPServer(channel: channel)
    }

    private init(channel: Channel) { self.channel = channel }

    public func close() async throws { try await channel.close() }
}

private final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: BrokerMetrics
    private var head: HTTPRequestHead?

    init(metrics: BrokerMetrics) { self.metrics = metrics }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            if head.method != .GET {
                respond(context, head, .methodNotAllowed, "application/json", Array(#"{"error":"only GET is supported"}"#.utf8))
            } else if path == "/metrics" {
                respond(context, head, .ok, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
            } else {
                respond(context, head, .notFound, "application/json", Array(#"{"error":"not found; metrics are at /metrics"}"#.utf8))
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ type: String, _ body: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: "\(body.count)")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
