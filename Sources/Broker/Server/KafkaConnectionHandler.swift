import KafkaProtocol
import Logging
import NIOCore

/// One client connection: decodes request frames, hands them to the router one at a time, and
/// writes responses in request order (Kafka's per-connection ordering guarantee).
///
/// Back-pressure: at most `maxQueuedRequests` frames wait behind the one in flight; beyond that
/// the handler stops asking the socket for more, so a client that floods requests (or stalls
/// reading responses) slows only itself.
final class KafkaConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let router: RequestRouter
    private let listenerName: String
    private var logger: Logger
    private let maxQueuedRequests = 64

    private var queue = CircularBuffer<ByteBuffer>()
    private var inFlight = false
    private var readHeld = false
    private var closed = false
    private var clientAddress = "unknown"

    init(router: RequestRouter, listenerName: String, logger: Logger) {
        self.router = router
        self.listenerName = listenerName
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        clientAddress = context.remoteAddress.map { "\($0)" } ?? "unknown"
        logger[metadataKey: "client"] = "\(clientAddress)"
        router.metrics.connectionOpened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        queue.removeAll()
        router.metrics.connectionClosed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        queue.append(unwrapInboundIn(data))
        processNext(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if queue.count >= maxQueuedRequests {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { processNext(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let decoderError = error as? KafkaProtocolError {
            logger.warning("closing connection: \(decoderError)", metadata: ["listener": "\(listenerName)"])
        } else {
            logger.debug("connection error: \(error)")
        }
        closed = true
        context.close(promise: nil)
    }

    private func processNext(context: ChannelHandlerContext) {
        // A client that does not read its responses (the channel stops being writable) gets no
        // more requests processed, and, once its queue is full, no more bytes read.
        while !inFlight && !closed && context.channel.isWritable, var frame = queue.popFirst() {
            if readHeld && queue.count < maxQueuedRequests / 2 {
                readHeld = false
                context.read()
            }
            let prefix = RequestHeaderPrefix(peekingAt: frame)
            let request: RequestFrame
            do {
                request = try KafkaFrames.decodeRequest(&frame)
            } catch {
                handleUndecodable(context: context, prefix: prefix, error: error)
                continue
            }
            let requestContext = RequestContext(
                apiKey: request.apiKey, apiVersion: request.apiVersion, correlationId: request.header.correlationId,
                clientId: request.header.clientId, clientAddress: clientAddress, listenerName: listenerName,
                eventLoop: context.eventLoop, connectionLogger: logger)
            let started = NIODeadline.now()
            switch router.handle(request.body, context: requestContext) {
            case .response(let response):
                write(context: context, response: response, version: request.apiVersion, correlationId: request.header.correlationId)
                router.metrics.requestCompleted(request.apiKey, started: started)
            case .noResponse:
                router.metrics.requestCompleted(request.apiKey, started: started)
            case .deferred(let future):
                inFlight = true
                let version = request.apiVersion
                let correlationId = request.header.correlationId
                let apiKey = request.apiKey
                // Kept only where a refusal names the request's items: a produce request's
                // records are not held until its acknowledgement for this.
                let body = KafkaResponse.refusedPerItem.contains(apiKey) ? request.body : nil
                // Completed on this channel's event loop: the handler and its context are used
                // from their own loop only.
                future.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                    inFlight = false
                    guard !closed else { return }
                    switch result {
                    case .success(let response):
                        write(context: context, response: response, version: version, correlationId: correlationId)
                    case .failure(let error):
                        requestContext.logger.error("request failed: \(error); answering UNKNOWN_SERVER_ERROR")
                        write(context: context, response: body.map { .refusing($0, version: version, error: .unknownServerError, message: "\(error)") }
                                  ?? .errorResponse(apiKey: apiKey, version: version, errorCode: KafkaErrorCode.unknownServerError.rawValue),
                              version: version, correlationId: correlationId)
                    }
                    router.metrics.requestCompleted(apiKey, started: started)
                    processNext(context: context)
                }
            }
        }
    }

    /// A frame that did not decode. An ApiVersions request at a version this broker does not know
    /// gets Kafka's v0 fallback answer (error UNSUPPORTED_VERSION plus the supported versions), so
    /// the client can retry at a version both sides speak. Anything else closes the connection:
    /// the stream can no longer be trusted.
    private func handleUndecodable(context: ChannelHandlerContext, prefix: RequestHeaderPrefix?, error: Error) {
        if let prefix, prefix.apiKey == ApiKey.apiVersions.rawValue,
           !ApiKey.apiVersions.validVersions.contains(prefix.apiVersion) {
            var response = router.apiVersionsResponse(listener: listenerName)
            response.errorCode = KafkaErrorCode.unsupportedVersion.rawValue
            write(context: context, response: .apiVersions(response), version: 0, correlationId: prefix.correlationId)
            return
        }
        let what: String
        if let prefix {
            let api = ApiKey(rawValue: prefix.apiKey).map { $0.name } ?? "unknown API key \(prefix.apiKey)"
            what = "\(api) v\(prefix.apiVersion) (correlation id \(prefix.correlationId))"
        } else {
            what = "a frame too short for a request header"
        }
        logger.warning("closing connection: cannot decode \(what): \(error). Is the client speaking Kafka, at a version this broker supports (see ApiVersions)?")
        closed = true
        context.close(promise: nil)
    }

    private func write(context: ChannelHandlerContext, response: KafkaResponse, version: Int16, correlationId: Int32) {
        let chunks: [ByteBuffer]
        do {
            chunks = try ResponseEncoder.encode(response, version: version, correlationId: correlationId, allocator: context.channel.allocator)
        } catch {
            logger.error("cannot encode \(response.apiKey.name) v\(version) response: \(error); closing connection")
            closed = true
            context.close(promise: nil)
            return
        }
        var size = 0
        for chunk in chunks {
            size += chunk.readableBytes
            context.write(wrapOutboundOut(chunk), promise: nil)
        }
        router.metrics.bytesSent(size)
        context.flush()
    }
}
