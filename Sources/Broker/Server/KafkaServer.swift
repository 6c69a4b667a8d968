import KafkaProtocol
import Logging
import NIOCore
import NIOPosix

/// The Kafka listener: accepts connections and gives each a frame decoder and a connection
/// handler. Thousands of idle connections cost only their socket and two small handlers.
final class KafkaServer: Sendable {
    private let channel: Channel
    let host: String
    let port: Int

    static func start(host: String, port: Int, listenerName: String, router: RequestRouter, maxFrameSize: Int,
                      group: EventLoopGroup, logger: Logger) async throws -> KafkaServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.recvAllocator, value: KafkaFrames.receiveAllocator)
            .childChannelOption(.autoRead, value: true)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 512 * 1024, high: 2 * 1024 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: maxFrameSize)))
                    try sync.addHandler(KafkaConnectionHandler(router: router, listenerName: listenerName, logger: logger))
                }
            }
            .bind(host: host, port: port).get()
        let boundPort = channel.localAddress?.port ?? port
        logger.info("Kafka listener \(listenerName) on \(host):\(boundPort)")
        return KafkaServer(channel: channel, host: host, port: boundPort)
    }

    private init(channel: Channel, host: String, port: Int) {
        self.channel = channel
        self.host = host
        self.port = port
    }

    func close() async throws {
        try await channel.close()
    }
}
