// Configuration from environment variables, named the way the Kafka Docker images name them:
// strip the prefix, lower-case, then `_` → `.`, `__` → `_`, `___` → `-`
// (`KAFKA_NODE_ID` → node.id, `PETREL_LOG_DIRS` → log.dirs,
// `KAFKA_LISTENER_SECURITY_PROTOCOL_MAP` → listener.security.protocol.map).

public enum EnvironmentConfig {
    /// Maps the part of a variable name after its prefix to a property name, exactly as the
    /// Confluent images' `env_to_props` does: `_` → `.`, then `...` → `-`, then `..` → `_`.
    public static func propertyName(fromVariableSuffix suffix: String) -> String {
        suffix.lowercased()
            .replacingAll("_", with: ".")
            .replacingAll("...", with: "-")
            .replacingAll("..", with: "_")
    }

    /// The variable that sets `key` with `prefix` (the inverse of `propertyName`).
    public static func variableName(forKey key: String, prefix: String = "PETREL_") -> String {
        prefix + key.replacingAll("_", with: "__").replacingAll("-", with: "___").replacingAll(".", with: "_").uppercased()
    }

    /// Picks the configuration out of an environment.
    ///
    /// - `PETREL_*` variables map to broker keys, or to `petrel.*` keys (`PETREL_METRICS_LISTENER`
    ///   → petrel.metrics.listener); one that maps to neither is reported in `warnings`
    ///   unless it is in `ignoring`.
    /// - `KAFKA_*` variables map to broker keys; others (KAFKA_HEAP_OPTS, KAFKA_VERSION, ...) are ignored.
    /// - `CLUSTER_ID`, as the Apache Kafka image reads it, sets cluster.id.
    /// A `PETREL_` variable wins over a `KAFKA_` one for the same key, which wins over `CLUSTER_ID`.
    public static func collect(
        environment: [String: String], ignoring: Set<String> = []
    ) -> (values: [String: ConfiguredValue], warnings: [String]) {
        var petrel: [String: (variable: String, value: String)] = [:]
        var kafka: [String: (variable: String, value: String)] = [:]
        var warnings: [String] = []
        for variable in environment.keys.sorted() {
            guard let value = environment[variable] else { continue }
            if variable.hasPrefix("PETREL_") {
                let name = propertyName(fromVariableSuffix: String(variable.dropFirst("PETREL_".count)))
                if ConfigDefinitions.byName[name] != nil, !name.hasPrefix("petrel.") {
                    petrel[name] = (variable, value)
                } else if ConfigDefinitions.byName["petrel." + name] != nil {
                    petrel["petrel." + name] = (variable, value)
                } else if !ignoring.contains(variable) {
                    warnings.append("environment variable \(variable): '\(name)' is not a Petrel configuration; ignored\(suggestion(for: name))")
                }
            } else if variable.hasPrefix("KAFKA_") {
                let name = propertyName(fromVariableSuffix: String(variable.dropFirst("KAFKA_".count)))
                if ConfigDefinitions.byName[name] != nil, !name.hasPrefix("petrel.") {
                    kafka[name] = (variable, value)
                }
            }
        }
        var values: [String: ConfiguredValue] = [:]
        if let clusterID = environment["CLUSTER_ID"] {
            values["cluster.id"] = ConfiguredValue(clusterID, origin: .environment(variable: "CLUSTER_ID"))
        }
        for (key, v) in kafka { values[key] = ConfiguredValue(v.value, origin: .environment(variable: v.variable)) }
        for (key, v) in petrel {
            if let other = kafka[key], other.value != v.value {
                warnings.append("environment variables \(other.variable) and \(v.variable) both set \(key); \(v.variable) wins")
            }
            values[key] = ConfiguredValue(v.value, origin: .environment(variable: v.variable))
        }
        return (values, warnings)
    }

    /// " (did you mean 'x'?)" for the closest known key, or "".
    static func suggestion(for name: String) -> String {
        guard let best = ConfigDefinitions.closestKey(to: name) else { return "" }
        return " (did you mean \(variableName(forKey: best.hasPrefix("petrel.") ? String(best.dropFirst("petrel.".count)) : best)) for \(best)?)"
    }
}

extension ConfigDefinitions {
    /// The known broker key closest to `name` by edit distance, if it is close enough to be a typo.
    public static func closestKey(to name: String) -> String? {
        let target = Array(name.utf8)
        var best: (key: String, distance: Int)?
        for key in byName.keys.sorted() {
            let d = editDistance(target, Array(key.utf8))
            if d < (best?.distance ?? Int.max) { best = (key, d) }
        }
        guard let best, best.distance <= max(2, target.count / 6) else { return nil }
        return best.key
    }

    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

extension String {
    /// Replaces every non-overlapping occurrence, left to right (no Foundation needed).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
