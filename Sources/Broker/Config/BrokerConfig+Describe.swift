// DescribeConfigs for a BROKER resource, answered the way Kafka's ConfigHelper answers it:
// every key with its effective value, read-only flag, source, sensitivity, type,
// documentation and synonyms.

extension BrokerConfig {
    /// Describes broker configs.
    ///
    /// - Parameters:
    ///   - keys: the requested names, or nil for all. Unknown names are left out, as Kafka does.
    ///   - perBroker: true for a resource named by this node's id; false for the resource with
    ///     an empty name (cluster-wide dynamic defaults), which lists only those defaults.
    public func describe(
        keys: [String]? = nil, includeSynonyms: Bool = true, includeDocumentation: Bool = true, perBroker: Bool = true
    ) -> [DescribedConfig] {
        let names: [String] =
            perBroker ? ConfigDefinitions.broker.map(\.name) : Array(layers.dynamicClusterDefault.keys)
        let wanted = keys.map(Set.init)
        return names.sorted().compactMap { name -> DescribedConfig? in
            guard wanted?.contains(name) ?? true, let definition = ConfigDefinitions.byName[name] else { return nil }
            let value: String? = perBroker ? self.value(of: name) : layers.dynamicClusterDefault[name].map(canonical(name))
            var all = brokerSynonyms(for: name, sensitive: definition.isSensitive)
            if !perBroker { all = all.filter { $0.source == .dynamicDefaultBrokerConfig } }
            return DescribedConfig(
                name: name,
                value: definition.isSensitive ? nil : value,
                isReadOnly: definition.isReadOnly,
                source: all.first?.source ?? .defaultConfig,
                isSensitive: definition.isSensitive,
                synonyms: includeSynonyms ? all : [],
                type: definition.type,
                documentation: includeDocumentation ? definition.documentation : nil)
        }
    }

    /// Kafka's `configSynonyms(name, brokerSynonyms(name))`: for each layer from dynamic
    /// per-broker down to the built-in default, each synonym that layer sets, then everything
    /// before the first entry for `name` itself dropped. (So an unset log.retention.ms lists no
    /// synonyms even when log.retention.hours is set — that is what Kafka reports.)
    func brokerSynonyms(for name: String, sensitive: Bool = false) -> [ConfigSynonym] {
        let synonymNames = ConfigDefinitions.brokerSynonyms(name)
        var result: [ConfigSynonym] = []
        func add(_ source: ConfigSource, _ lookup: (String) -> String?) {
            for synonym in synonymNames {
                if let value = lookup(synonym) {
                    result.append(ConfigSynonym(name: synonym, value: sensitive ? nil : value, source: source))
                }
            }
        }
        add(.dynamicBrokerConfig) { layers.dynamicBroker[$0] }
        add(.dynamicDefaultBrokerConfig) { layers.dynamicClusterDefault[$0] }
        add(.staticBrokerConfig) { layers.staticValues[$0]?.value.trimmingConfigWhitespace() }
        add(.defaultConfig) { ConfigDefinitions.byName[$0]?.defaultValue }
        guard let first = result.firstIndex(where: { $0.name == name }) else { return [] }
        return Array(result[first...])
    }

    private func canonical(_ name: String) -> (String) -> String {
        { raw in
            guard let definition = ConfigDefinitions.byName[name], case .success(let v) = definition.parse(raw) else { return raw }
            return v.canonicalString
        }
    }
}
