// Loading the static config at start-up, in increasing precedence: built-in defaults <
// properties file (`--config`) < environment (`KAFKA_*`, `PETREL_*`) < `--override key=value`.
// Unknown keys are warned about (naming the key and where it was set), bad values refused.

extension BrokerConfig {
    /// Loads the broker's static configuration.
    ///
    /// - Parameters:
    ///   - propertiesFile: a Java `.properties` file such as Kafka's server.properties, or nil.
    ///   - overrides: `key=value` strings from repeated `--override` options, applied last.
    ///   - environment: the process environment (`ProcessInfo.processInfo.environment`).
    ///   - ignoringEnvironment: `PETREL_*` variables that belong to something else and should
    ///     not be warned about (e.g. the executable's own `PETREL_LOG_LEVEL`).
    /// - Returns: the config, and warnings to log (unknown keys, duplicates, odd combinations).
    /// - Throws: `ConfigError` naming the key, the bad value, where it came from and what was expected.
    public static func load(
        propertiesFile: String?, overrides: [String], environment: [String: String],
        ignoringEnvironment: Set<String> = []
    ) throws(ConfigError) -> (config: BrokerConfig, warnings: [String]) {
        var warnings: [String] = []
        var values: [String: ConfiguredValue] = [:]

        if let path = propertiesFile {
            var seen: [String: Int] = [:]
            for entry in try PropertiesFile.load(path: path) {
                let origin = ConfigOrigin.file(path: path, line: entry.line)
                if let previous = seen[entry.key] {
                    warnings.append("\(origin): \(entry.key) is also set on line \(previous); the later value wins")
                }
                seen[entry.key] = entry.line
                if ConfigDefinitions.byName[entry.key] != nil {
                    values[entry.key] = ConfiguredValue(entry.value, origin: origin)
                } else {
                    warnings.append(unknownKeyWarning(entry.key, origin: origin))
                }
            }
        }

        let env = EnvironmentConfig.collect(environment: environment, ignoring: ignoringEnvironment)
        warnings += env.warnings
        values.merge(env.values) { _, fromEnvironment in fromEnvironment }

        for argument in overrides {
            guard let equals = argument.firstIndex(of: "=") else {
                throw ConfigError(kind: .malformedSource, key: nil, value: nil, origin: nil,
                                  message: "--override \(argument): expected key=value")
            }
            let key = String(argument[..<equals]).trimmingConfigWhitespace()
            let value = String(argument[argument.index(after: equals)...])
            guard !key.isEmpty else {
                throw ConfigError(kind: .malformedSource, key: nil, value: nil, origin: nil,
                                  message: "--override \(argument): expected key=value")
            }
            if ConfigDefinitions.byName[key] != nil {
                values[key] = ConfiguredValue(value, origin: .override)
            } else {
                warnings.append(unknownKeyWarning(key, origin: .override))
            }
        }

        let config = try BrokerConfig(layers: ConfigLayers(staticValues: values))
        return (config, warnings + config.notes)
    }

    /// Kafka settings operators often carry over that Petrel does not implement.
    static let unimplementedKafkaPrefixes = [
        "ssl.", "sasl.", "listener.name.", "zookeeper.", "authorizer.", "super.users", "allow.everyone.if.no.acl.found",
        "principal.builder.class", "remote.log.", "confluent.", "metric.reporters", "metrics.", "kafka.metrics.",
        "inter.broker.protocol.version", "group.coordinator.", "group.consumer.", "group.share.", "share.",
        "controlled.shutdown.", "controller.quorum.bootstrap.servers", "log.cleaner.dedupe.buffer.size", "log.cleaner.io.",
        "compression.gzip.level", "compression.lz4.level", "compression.zstd.level", "delegation.token.", "quota.",
    ]

    static func unknownKeyWarning(_ key: String, origin: ConfigOrigin) -> String {
        if unimplementedKafkaPrefixes.contains(where: key.hasPrefix) {
            return "\(origin): '\(key)' is a Kafka setting Petrel does not implement; ignored"
        }
        return "\(origin): unknown configuration '\(key)' ignored\(didYouMean(key))"
    }
}
