// Typed values of the log-related configs: cleanup policy, broker compression type,
// timestamp type (KafkaProtocol's `TimestampType`).

import KafkaProtocol

/// `cleanup.policy` / `log.cleanup.policy`: delete, compact, or both.
public struct CleanupPolicy: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let delete = CleanupPolicy(rawValue: 1)
    public static let compact = CleanupPolicy(rawValue: 2)

    /// From Kafka's list form (`delete`, `compact`, `compact,delete`); unknown items are ignored.
    public init(configList items: [String]) {
        var policy: CleanupPolicy = []
        for item in items {
            switch item.lowercased() {
            case "delete": policy.insert(.delete)
            case "compact": policy.insert(.compact)
            default: break
            }
        }
        self = policy
    }

    public var description: String {
        var items: [String] = []
        if contains(.compact) { items.append("compact") }
        if contains(.delete) { items.append("delete") }
        return items.joined(separator: ",")
    }
}

/// `compression.type`: the compression a topic stores batches with.
public enum BrokerCompressionType: String, Sendable, Hashable, CaseIterable {
    case uncompressed
    case zstd
    case lz4
    case snappy
    case gzip
    /// Keep whatever compression the producer used.
    case producer

    /// The codec batches are stored with, or nil to keep the producer's.
    public var codec: CompressionCodec? {
        switch self {
        case .uncompressed: CompressionCodec.none
        case .zstd: .zstd
        case .lz4: .lz4
        case .snappy: .snappy
        case .gzip: .gzip
        case .producer: nil
        }
    }
}

extension TimestampType {
    /// From `message.timestamp.type`: `CreateTime` or `LogAppendTime` (case-sensitive, as Kafka).
    public init?(configValue: String) {
        switch configValue {
        case "CreateTime": self = .createTime
        case "LogAppendTime": self = .logAppendTime
        default: return nil
        }
    }

    public var configValue: String { self == .logAppendTime ? "LogAppendTime" : "CreateTime" }
}
