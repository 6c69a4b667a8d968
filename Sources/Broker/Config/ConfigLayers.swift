// The layers a broker config value can come from, in increasing precedence:
// built-in default < static (file < environment < --override) < dynamic cluster-wide default
// < dynamic per-broker; and typed reads of the effective value that refuse bad values with
// an error naming the key, the value and where it came from.

/// Raw values by layer. Only known keys are stored.
public struct ConfigLayers: Sendable, Hashable {
    /// Values from the properties file, the environment, `--override` or code.
    public var staticValues: [String: ConfiguredValue] = [:]
    /// Dynamic cluster-wide defaults (a BROKER resource with an empty name).
    public var dynamicClusterDefault: [String: String] = [:]
    /// Dynamic values for this broker (a BROKER resource named by its node id).
    public var dynamicBroker: [String: String] = [:]

    public init(
        staticValues: [String: ConfiguredValue] = [:], dynamicClusterDefault: [String: String] = [:],
        dynamicBroker: [String: String] = [:]
    ) {
        self.staticValues = staticValues
        self.dynamicClusterDefault = dynamicClusterDefault
        self.dynamicBroker = dynamicBroker
    }

    /// The raw value that wins for `key`, with its origin; nil for an unset key with a null default.
    public func effective(_ key: String) -> ConfiguredValue? {
        if let v = dynamicBroker[key] { return ConfiguredValue(v, origin: .dynamicBroker) }
        if let v = dynamicClusterDefault[key] { return ConfiguredValue(v, origin: .dynamicClusterDefault) }
        if let v = staticValues[key] { return v }
        if let d = ConfigDefinitions.byName[key]?.defaultValue { return ConfiguredValue(d, origin: .defaultValue) }
        return nil
    }

    /// True when some layer above the built-in default sets `key`.
    public func isSet(_ key: String) -> Bool {
        dynamicBroker[key] != nil || dynamicClusterDefault[key] != nil || staticValues[key] != nil
    }
}

/// Typed reads of effective values.
struct ConfigReader {
    let layers: ConfigLayers

    func raw(_ key: String) -> ConfiguredValue? { layers.effective(key) }

    func value(_ key: String) throws(ConfigError) -> ConfigValue? {
        guard let definition = ConfigDefinitions.byName[key] else {
            throw ConfigError(kind: .unknownKey, key: key, value: nil, origin: nil, message: "is not a broker configuration")
        }
        guard let raw = layers.effective(key) else { return nil }
        switch definition.parse(raw.value) {
        case .success(let v): return v
        case .failure(let problem):
            throw ConfigError(kind: .invalidValue, key: key, value: raw.value, origin: raw.origin, message: problem.expected)
        }
    }

    private func missing(_ key: String) -> ConfigError {
        ConfigError(kind: .inconsistent, key: key, value: nil, origin: nil, message: "has no value of the type Petrel reads it as (a bug in BrokerConfig)")
    }

    func int(_ key: String) throws(ConfigError) -> Int {
        guard let v = try optionalInt(key) else { throw missing(key) }
        return v
    }

    func optionalInt(_ key: String) throws(ConfigError) -> Int? {
        guard case .integer(let i)? = try value(key) else { return nil }
        return Int(i)
    }

    func bool(_ key: String) throws(ConfigError) -> Bool {
        guard case .boolean(let b)? = try value(key) else { throw missing(key) }
        return b
    }

    func double(_ key: String) throws(ConfigError) -> Double {
        guard case .double(let d)? = try value(key) else { throw missing(key) }
        return d
    }

    func string(_ key: String) throws(ConfigError) -> String {
        guard case .string(let s)? = try value(key) else { throw missing(key) }
        return s
    }

    /// nil when unset with a null default, or set to an empty string.
    func optionalString(_ key: String) throws(ConfigError) -> String? {
        guard case .string(let s)? = try value(key), !s.isEmpty else { return nil }
        return s
    }

    func list(_ key: String) throws(ConfigError) -> [String] {
        switch try value(key) {
        case .list(let items)?: return items
        case .string(let s)?: return ConfigDefinition.splitList(s)
        default: return []
        }
    }

    /// An error about `key`'s effective value that only shows when read with other keys.
    func inconsistency(_ key: String, _ message: String) -> ConfigError {
        let raw = layers.effective(key)
        return ConfigError(kind: .inconsistent, key: key, value: raw?.value, origin: raw?.origin, message: message)
    }
}
