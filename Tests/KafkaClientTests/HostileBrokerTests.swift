import KafkaProtocol
import NIOCore
import NIOPosix
import Testing
@testable import KafkaClient

/// A fake broker that misbehaves: the client must throw, never crash or hang.
final class HostileBroker: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Mode: Sendable { case silent, garbage, hugeFrame, wrongCorrelation, close }
    let mode: Mode
    private var buffer = ByteBuffer()

    init(mode: Mode) { self.mode = mode }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let frame = try? KafkaFrames.readFrame(from: &buffer) {
            let correlation = frame.getInteger(at: frame.readerIndex + 4, as: Int32.self) ?? 0
            var out = context.channel.allocator.buffer(capacity: 64)
            switch mode {
            case .silent:
                continue
            case .close:
                context.close(promise: nil)
                return
            case .garbage:
                out.writeInteger(Int32(4 + 9))
                out.writeInteger(correlation)
                out.writeBytes([0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x01, 0x02, 0x03, 0x04])
            case .hugeFrame:
                out.writeInteger(Int32.max)
                out.writeInteger(correlation)
            case .wrongCorrelation:
                out.writeInteger(Int32(4))
                out.writeInteger(correlation &+ 1000)
            }
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
    }

    static func start(_ mode: Mode) async throws -> Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HostileBroker(mode: mode)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }
}

@Suite struct HostileBrokerTests {
    func connect(_ mode: HostileBroker.Mode) async throws -> KafkaClientError? {
        let server = try await HostileBroker.start(mode)
        defer { server.close(promise: nil) }
        var config = ClientConfiguration(bootstrapServers: ["127.0.0.1:\(server.localAddress!.port!)"])
        config.requestTimeoutMs = 300
        config.maxResponseSize = 1 << 20
        do {
            _ = try await BrokerConnection.connect(host: "127.0.0.1", port: server.localAddress!.port!, nodeId: -1, configuration: config)
            return nil
        } catch {
            return error
        }
    }

    @Test func silentBrokerTimesOut() async throws {
        let error = try await connect(.silent)
        guard case .requestTimedOut? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test func garbageAnswerThrows() async throws {
        let error = try await connect(.garbage)
        guard case .protocolViolation? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test func oversizedFrameClosesTheConnection() async throws {
        let error = try await connect(.hugeFrame)
        guard case .connectionClosed? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test func answerToAnUnknownRequestIsIgnored() async throws {
        let error = try await connect(.wrongCorrelation)
        guard case .requestTimedOut? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test func closedConnectionFailsThePendingRequest() async throws {
        let error = try await connect(.close)
        guard case .connectionClosed? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(error!.isRetriable)
    }

    @Test func unreachableBootstrapFailsAfterBackoff() async throws {
        var config = ClientConfiguration(bootstrapServers: ["127.0.0.1:1", "127.0.0.1:2"])
        config.connectTimeoutMs = 500
        let client = KafkaClient(config)
        await #expect(throws: KafkaClientError.self) { _ = try await client.metadata() }
        await client.shutdown()
    }
}
