@testable import Broker
import Foundation
import KafkaProtocol
import Logging
import NIOCore
import NIOPosix

/// A broker on an ephemeral port with its data in a temp directory, for in-process tests.
struct TestBroker {
    let broker: PetrelBroker
    let directory: String

    static func start(_ overrides: [String: String] = [:]) async throws -> TestBroker {
        let directory = NSTemporaryDirectory() + "petrel-broker-test-" + UUID().uuidString
        var properties = [
            "log.dirs": directory, "listeners": "PLAINTEXT://127.0.0.1:0", "petrel.metrics.listener": "127.0.0.1:0",
        ]
        for (k, v) in overrides { properties[k] = v }
        let config = try BrokerConfig(properties)
        var logger = Logger(label: "test.broker")
        logger.logLevel = .warning
        return TestBroker(broker: try await PetrelBroker.start(config: config, logger: logger), directory: directory)
    }

    func stop() async {
        await broker.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A raw Kafka connection: writes frames, reads whole response frames.
final class RawKafkaConnection: @unchecked Sendable {
    private let channel: Channel
    private let responses: ResponseCollector
    private var correlationId: Int32 = 0

    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init(port: Int, autoRead: Bool = true) async throws {
        let collector = ResponseCollector()
        responses = collector
        channel = try await ClientBootstrap(group: Self.group)
            .channelOption(.autoRead, value: autoRead)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    /// Sends raw bytes as they are.
    func sendRaw(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }

    func send<M: KafkaRequestMessage>(_ request: M, version: Int16) async throws -> Int32 {
        correlationId += 1
        var buffer = ByteBuffer()
        try KafkaFrames.encodeRequest(request, version: version, correlationId: correlationId, clientId: "broker-test", into: &buffer)
        try await sendRaw(buffer)
        return correlationId
    }

    /// The next whole response frame (without its size), or nil if the connection closed first.
    func nextFrame(timeout: TimeAmount = .seconds(10)) async throws -> ByteBuffer? {
        try await responses.next(timeout: timeout, eventLoop: channel.eventLoop)
    }

    func roundTrip<M: KafkaRequestMessage>(_ request: M, version: Int16) async throws -> KafkaResponse {
        _ = try await send(request, version: version)
        guard var frame = try await nextFrame() else { throw TestError("connection closed") }
        return try KafkaFrames.decodeResponse(&frame, apiKey: M.apiKey, version: version).body
    }

    var isActive: Bool { channel.isActive }

    func close() async { try? await channel.close() }
}

struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var buffer = ByteBuffer()
    private var frames = [ByteBuffer]()
    private var closed = false
    private var waiters = [EventLoopPromise<ByteBuffer?>]()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let frame = try? KafkaFrames.readFrame(from: &buffer) {
            if !waiters.isEmpty { waiters.removeFirst().succeed(frame) } else { frames.append(frame) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        for w in waiters { w.succeed(nil) }
        waiters.removeAll()
    }

    func next(timeout: TimeAmount, eventLoop: EventLoop) async throws -> ByteBuffer? {
        let promise = eventLoop.makePromise(of: ByteBuffer?.self)
        eventLoop.execute {
            if !self.frames.isEmpty {
                promise.succeed(self.frames.removeFirst())
            } else if self.closed {
                promise.succeed(nil)
            } else {
                self.waiters.append(promise)
                eventLoop.scheduleTask(in: timeout) { promise.fail(TestError("no response within \(timeout)")) }
            }
        }
        return try await promise.futureResult.get()
    }
}
