import NIOCore

/// Every generated message, header and data record: a plain struct that knows its versions and
/// encodes/decodes itself at a given version.
public protocol KafkaMessage: Hashable, Sendable {
    /// The spec name, e.g. `ProduceRequest`.
    static var messageName: String { get }
    /// Every version the spec defines.
    static var validVersions: ClosedRange<Int16> { get }
    /// The first flexible version (compact encodings, tagged fields), or nil if none is.
    static var firstFlexibleVersion: Int16? { get }

    init()
    init(from buffer: inout ByteBuffer, version: Int16) throws(KafkaProtocolError)
    func encode(into buffer: inout ByteBuffer, version: Int16) throws(KafkaProtocolError)
}

extension KafkaMessage {
    public static func isFlexible(version: Int16) -> Bool {
        guard let first = firstFlexibleVersion else { return false }
        return version >= first
    }
}

/// A request body; its `Response` is the body that answers it.
public protocol KafkaRequestMessage: KafkaMessage {
    associatedtype Response: KafkaResponseMessage
    static var apiKey: ApiKey { get }
}

/// A response body.
public protocol KafkaResponseMessage: KafkaMessage {
    static var apiKey: ApiKey { get }
}
