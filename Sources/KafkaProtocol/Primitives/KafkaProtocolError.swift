/// Every way decoding or encoding Kafka bytes can fail. Decoders throw these and never trap:
/// bytes from the network are hostile until proven otherwise.
public enum KafkaProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended before a value was complete.
    case truncated(what: String, needed: Int, available: Int)
    /// A length or count prefix is negative where null is not allowed, or larger than the input.
    case invalidLength(what: String, length: Int)
    /// A varint ran past its maximum width.
    case varintTooLong
    /// A string was not valid UTF-8.
    case invalidUTF8(what: String)
    /// A non-nullable field was null on the wire.
    case unexpectedNull(field: String)
    /// The message does not exist at this version.
    case unsupportedVersion(api: String, version: Int16)
    /// A value set on a message cannot be written at this version.
    case fieldNotSupportedAtVersion(field: String, version: Int16)
    /// An API key this codec does not know.
    case unknownApiKey(Int16)
    /// A record batch failed a structural check (magic, CRC, sizes).
    case corruptRecordBatch(String)
    /// A record batch uses a codec Petrel does not implement.
    case unsupportedCompressionCodec(String)
    /// Compression or decompression failed.
    case compressionFailed(String)
    /// A frame is larger than the configured maximum.
    case frameTooLarge(size: Int, max: Int)

    public var description: String {
        switch self {
        case let .truncated(what, needed, available):
            return "truncated input reading \(what): needed \(needed) bytes, \(available) available"
        case let .invalidLength(what, length):
            return "invalid length \(length) for \(what)"
        case .varintTooLong:
            return "varint longer than its maximum width"
        case let .invalidUTF8(what):
            return "invalid UTF-8 in \(what)"
        case let .unexpectedNull(field):
            return "non-nullable field \(field) was null"
        case let .unsupportedVersion(api, version):
            return "\(api) does not exist at version \(version)"
        case let .fieldNotSupportedAtVersion(field, version):
            return "field \(field) has a non-default value but cannot be written at version \(version)"
        case let .unknownApiKey(key):
            return "unknown API key \(key)"
        case let .corruptRecordBatch(why):
            return "corrupt record batch: \(why)"
        case let .unsupportedCompressionCodec(name):
            return "unsupported compression codec \(name): Petrel supports none and gzip"
        case let .compressionFailed(why):
            return "compression failed: \(why)"
        case let .frameTooLarge(size, max):
            return "frame of \(size) bytes exceeds the maximum of \(max)"
        }
    }
}
