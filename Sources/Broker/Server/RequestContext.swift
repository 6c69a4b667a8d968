import KafkaProtocol
import Logging
import NIOCore

/// What a handler knows about the request it serves, beyond the body.
struct RequestContext: Sendable {
    var apiKey: ApiKey
    var apiVersion: Int16
    var correlationId: Int32
    var clientId: String?
    var clientAddress: String
    var listenerName: String
    var eventLoop: EventLoop
    /// The connection's logger (names the client address); `logger` adds the request.
    var connectionLogger: Logger

    /// A logger naming the client, API and client id. Built when a handler logs, not for every
    /// request.
    var logger: Logger {
        var l = connectionLogger
        l[metadataKey: "api"] = "\(apiKey.name)"
        if let clientId { l[metadataKey: "client_id"] = "\(clientId)" }
        return l
    }

    /// Logger metadata naming the client and request, for every warning a handler logs.
    func logger(topic: String? = nil, partition: Int32? = nil) -> Logger {
        var l = logger
        if let topic { l[metadataKey: "topic"] = "\(topic)" }
        if let partition { l[metadataKey: "partition"] = "\(partition)" }
        return l
    }
}

/// What a handler answers: a response body now, later, or nothing (produce with acks=0).
enum HandlerResult: Sendable {
    case response(KafkaResponse)
    case deferred(EventLoopFuture<KafkaResponse>)
    case noResponse
}
