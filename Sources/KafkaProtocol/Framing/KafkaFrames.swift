import NIOCore

/// The start of every request header, readable before the API version is known to be
/// supported: enough to answer an unsupported request with an error for the right correlation id.
public struct RequestHeaderPrefix: Hashable, Sendable {
    public var apiKey: Int16
    public var apiVersion: Int16
    public var correlationId: Int32

    /// Reads the first 8 bytes of a request frame body (after the size prefix) without moving
    /// the reader index. Returns nil when fewer than 8 bytes are present.
    public init?(peekingAt frame: ByteBuffer) {
        guard let key = frame.getInteger(at: frame.readerIndex, endianness: .big, as: Int16.self),
              let version = frame.getInteger(at: frame.readerIndex + 2, endianness: .big, as: Int16.self),
              let correlation = frame.getInteger(at: frame.readerIndex + 4, endianness: .big, as: Int32.self)
        else { return nil }
        self.apiKey = key
        self.apiVersion = version
        self.correlationId = correlation
    }
}

/// A decoded request: its header and its body.
public struct RequestFrame: Hashable, Sendable {
    public var header: RequestHeader
    public var body: KafkaRequest

    public init(header: RequestHeader, body: KafkaRequest) {
        self.header = header
        self.body = body
    }

    public var apiKey: ApiKey { body.apiKey }
    public var apiVersion: Int16 { header.requestApiVersion }
}

/// Size-prefixed frames: `int32 size`, header, body. Sans-IO: these functions only move bytes
/// between `ByteBuffer`s.
public enum KafkaFrames {
    /// The default cap on one frame (Kafka's `socket.request.max.bytes` default, 100 MiB).
    public static let defaultMaxFrameSize = 100 * 1024 * 1024

    /// How much a Kafka connection reads at once: it grows with full reads up to 1 MiB (NIO's
    /// default stops at 64 KiB), so a large produce request or fetch response arrives in a few
    /// reads, and is less often copied into a cumulation buffer to be reassembled.
    public static var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16 * 1024, maximum: 1024 * 1024)
    }

    /// Splits one frame off the front of `buffer` if it is complete. Returns the frame body
    /// (without the size prefix) as a slice sharing storage, or nil when more bytes are needed.
    public static func readFrame(from buffer: inout ByteBuffer, maxFrameSize: Int = defaultMaxFrameSize) throws(KafkaProtocolError) -> ByteBuffer? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else { return nil }
        guard size >= 0 else { throw .invalidLength(what: "frame", length: Int(size)) }
        guard Int(size) <= maxFrameSize else { throw .frameTooLarge(size: Int(size), max: maxFrameSize) }
        guard buffer.readableBytes >= 4 + Int(size) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(size))
    }

    /// Decodes a request frame body (no size prefix): header at the version the API implies,
    /// then the body. Throws `.unknownApiKey` / `.unsupportedVersion` for what this codec does not speak.
    public static func decodeRequest(_ frame: inout ByteBuffer) throws(KafkaProtocolError) -> RequestFrame {
        guard let prefix = RequestHeaderPrefix(peekingAt: frame) else {
            throw .truncated(what: "request header", needed: 8, available: frame.readableBytes)
        }
        guard let apiKey = ApiKey(rawValue: prefix.apiKey) else { throw .unknownApiKey(prefix.apiKey) }
        guard apiKey.validVersions.contains(prefix.apiVersion) else {
            throw .unsupportedVersion(api: apiKey.name, version: prefix.apiVersion)
        }
        let header = try RequestHeader(from: &frame, version: apiKey.requestHeaderVersion(for: prefix.apiVersion))
        let body = try KafkaRequest.decode(apiKey: apiKey, version: prefix.apiVersion, from: &frame)
        return RequestFrame(header: header, body: body)
    }

    /// Writes a whole request frame, size prefix included.
    public static func encodeRequest<M: KafkaRequestMessage>(
        _ body: M, version: Int16, correlationId: Int32, clientId: String?, into buffer: inout ByteBuffer
    ) throws(KafkaProtocolError) {
        let header = RequestHeader(
            requestApiKey: M.apiKey.rawValue, requestApiVersion: version, correlationId: correlationId, clientId: clientId)
        try encodeRequest(header: header, body: body, into: &buffer)
    }

    /// Writes a whole request frame for a header and body, size prefix included.
    public static func encodeRequest<M: KafkaRequestMessage>(
        header: RequestHeader, body: M, into buffer: inout ByteBuffer
    ) throws(KafkaProtocolError) {
        let version = header.requestApiVersion
        let start = buffer.writerIndex
        buffer.writeInteger(Int32(0), endianness: .big)
        try header.encode(into: &buffer, version: M.apiKey.requestHeaderVersion(for: version))
        try body.encode(into: &buffer, version: version)
        buffer.setInteger(Int32(buffer.writerIndex - start - 4), at: start, endianness: .big)
    }

    /// Decodes a response frame body (no size prefix) for a request sent at `version`.
    public static func decodeResponse(
        _ frame: inout ByteBuffer, apiKey: ApiKey, version: Int16
    ) throws(KafkaProtocolError) -> (header: ResponseHeader, body: KafkaResponse) {
        let header = try ResponseHeader(from: &frame, version: apiKey.responseHeaderVersion(for: version))
        let body = try KafkaResponse.decode(apiKey: apiKey, version: version, from: &frame)
        return (header, body)
    }

    /// Writes a whole response frame, size prefix included.
    public static func encodeResponse<M: KafkaResponseMessage>(
        _ body: M, version: Int16, correlationId: Int32, into buffer: inout ByteBuffer
    ) throws(KafkaProtocolError) {
        let start = buffer.writerIndex
        buffer.writeInteger(Int32(0), endianness: .big)
        try ResponseHeader(correlationId: correlationId).encode(
            into: &buffer, version: M.apiKey.responseHeaderVersion(for: version))
        try body.encode(into: &buffer, version: version)
        buffer.setInteger(Int32(buffer.writerIndex - start - 4), at: start, endianness: .big)
    }
}
