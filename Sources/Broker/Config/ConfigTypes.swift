// The vocabulary of Kafka's configuration model as DescribeConfigs reports it:
// data types, value sources, described entries and their synonyms.

/// A configuration's data type, with the ids DescribeConfigs (v3+) puts on the wire.
public enum ConfigType: Int8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case unknown = 0
    case boolean = 1
    case string = 2
    case int = 3
    case short = 4
    case long = 5
    case double = 6
    case list = 7
    case `class` = 8
    case password = 9

    public var description: String {
        switch self {
        case .unknown: "UNKNOWN"
        case .boolean: "BOOLEAN"
        case .string: "STRING"
        case .int: "INT"
        case .short: "SHORT"
        case .long: "LONG"
        case .double: "DOUBLE"
        case .list: "LIST"
        case .class: "CLASS"
        case .password: "PASSWORD"
        }
    }
}

/// Where a configuration value came from, with the ids DescribeConfigs (v1+) puts on the wire.
public enum ConfigSource: Int8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case unknown = 0
    case topicConfig = 1
    case dynamicBrokerConfig = 2
    case dynamicDefaultBrokerConfig = 3
    case staticBrokerConfig = 4
    case defaultConfig = 5
    case dynamicBrokerLoggerConfig = 6
    case clientMetricsConfig = 7
    case groupConfig = 8

    public var description: String {
        switch self {
        case .unknown: "UNKNOWN"
        case .topicConfig: "TOPIC_CONFIG"
        case .dynamicBrokerConfig: "DYNAMIC_BROKER_CONFIG"
        case .dynamicDefaultBrokerConfig: "DYNAMIC_DEFAULT_BROKER_CONFIG"
        case .staticBrokerConfig: "STATIC_BROKER_CONFIG"
        case .defaultConfig: "DEFAULT_CONFIG"
        case .dynamicBrokerLoggerConfig: "DYNAMIC_BROKER_LOGGER_CONFIG"
        case .clientMetricsConfig: "CLIENT_METRICS_CONFIG"
        case .groupConfig: "GROUP_CONFIG"
        }
    }
}

/// Exactly where one raw value was read from; used in warnings and errors, and mapped to a
/// `ConfigSource` for DescribeConfigs (file, environment and `--override` are all static config).
public enum ConfigOrigin: Sendable, Hashable, CustomStringConvertible {
    case defaultValue
    case file(path: String, line: Int)
    case environment(variable: String)
    case override
    /// Set from code, e.g. `BrokerConfig(["log.dirs": "/tmp/x"])`.
    case programmatic
    case dynamicBroker
    case dynamicClusterDefault

    public var source: ConfigSource {
        switch self {
        case .defaultValue: .defaultConfig
        case .file, .environment, .override, .programmatic: .staticBrokerConfig
        case .dynamicBroker: .dynamicBrokerConfig
        case .dynamicClusterDefault: .dynamicDefaultBrokerConfig
        }
    }

    public var description: String {
        switch self {
        case .defaultValue: "default"
        case .file(let path, let line): "\(path):\(line)"
        case .environment(let variable): "environment variable \(variable)"
        case .override: "--override"
        case .programmatic: "code"
        case .dynamicBroker: "dynamic broker config"
        case .dynamicClusterDefault: "dynamic cluster-wide default config"
        }
    }
}

/// A raw value as given by the operator, with where it came from.
public struct ConfiguredValue: Sendable, Hashable {
    public var value: String
    public var origin: ConfigOrigin

    public init(_ value: String, origin: ConfigOrigin) {
        self.value = value
        self.origin = origin
    }
}

/// One synonym of a described config, as Kafka lists them (highest precedence first).
public struct ConfigSynonym: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var value: String?
    public var source: ConfigSource

    public init(name: String, value: String?, source: ConfigSource) {
        self.name = name
        self.value = value
        self.source = source
    }

    public var description: String { "\(source):\(name)=\(value ?? "null")" }
}

/// One entry of a DescribeConfigs answer: everything Kafka reports about a config key.
public struct DescribedConfig: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// nil for a null value, and for sensitive configs.
    public var value: String?
    public var isReadOnly: Bool
    public var source: ConfigSource
    public var isSensitive: Bool
    public var synonyms: [ConfigSynonym]
    public var type: ConfigType
    public var documentation: String?

    public init(
        name: String, value: String?, isReadOnly: Bool, source: ConfigSource, isSensitive: Bool,
        synonyms: [ConfigSynonym], type: ConfigType, documentation: String?
    ) {
        self.name = name
        self.value = value
        self.isReadOnly = isReadOnly
        self.source = source
        self.isSensitive = isSensitive
        self.synonyms = synonyms
        self.type = type
        self.documentation = documentation
    }

    /// DescribeConfigs v0's `IsDefault`.
    public var isDefault: Bool { source == .defaultConfig }

    /// The line `kafka-configs --describe --all` prints for this entry.
    public var description: String {
        "\(name)=\(value ?? "null") sensitive=\(isSensitive) synonyms={\(synonyms.map(\.description).joined(separator: ", "))}"
    }
}
