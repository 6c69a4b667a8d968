// Described configs as the wire messages carry them: DescribeConfigs results and the
// per-topic configs CreateTopics (v5+) returns; and the error code of a refused config change.

import KafkaProtocol

extension DescribedConfig {
    /// A DescribeConfigs result entry (all versions: v0 reads `isDefault`, v1+ `configSource`,
    /// v3+ `configType` and `documentation`; the codec writes what the version has).
    public var describeConfigsEntry: DescribeConfigsResponse.DescribeConfigsResourceResult {
        DescribeConfigsResponse.DescribeConfigsResourceResult(
            name: name,
            value: value,
            readOnly: isReadOnly,
            isDefault: isDefault,
            configSource: source.rawValue,
            isSensitive: isSensitive,
            synonyms: synonyms.map {
                DescribeConfigsResponse.DescribeConfigsSynonym(name: $0.name, value: $0.value, source: $0.source.rawValue)
            },
            configType: type.rawValue,
            documentation: documentation)
    }

    /// A CreateTopics (v5+) topic config entry.
    public var createTopicsEntry: CreateTopicsResponse.CreatableTopicConfigs {
        CreateTopicsResponse.CreatableTopicConfigs(
            name: name, value: value, readOnly: isReadOnly, configSource: source.rawValue, isSensitive: isSensitive)
    }
}

extension ConfigError {
    /// The error to answer an AlterConfigs / IncrementalAlterConfigs on a BROKER resource with:
    /// INVALID_REQUEST for unknown or read-only keys (as Kafka), INVALID_CONFIG for bad values.
    public var errorCode: KafkaErrorCode {
        switch kind {
        case .unknownKey, .notDynamic: .invalidRequest
        case .invalidValue, .inconsistent, .malformedSource: .invalidConfig
        }
    }
}
