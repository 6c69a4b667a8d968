// One configuration key's definition (type, default, validator, documentation) and the
// parsing of raw strings into typed values, with Kafka's rules and Kafka's messages.

/// A parsed configuration value.
public enum ConfigValue: Sendable, Hashable {
    case boolean(Bool)
    case string(String)
    /// INT, SHORT and LONG values.
    case integer(Int64)
    case double(Double)
    case list([String])

    /// The value as Kafka prints it (`ConfigDef.convertToString`).
    public var canonicalString: String {
        switch self {
        case .boolean(let b): b ? "true" : "false"
        case .string(let s): s
        case .integer(let i): String(i)
        case .double(let d): String(d)
        case .list(let items): items.joined(separator: ",")
        }
    }
}

/// Why a raw value was refused: `reason` in Kafka's words (what clients see in
/// INVALID_CONFIG messages), `expected` in ours (what operators see at start-up).
public struct ConfigProblem: Error, Sendable, Hashable {
    public var reason: String
    public var expected: String

    public init(reason: String, expected: String) {
        self.reason = reason
        self.expected = expected
    }
}

/// What values a key accepts beyond its type.
public enum ConfigValidator: Sendable {
    case none
    /// Inclusive bounds for INT, SHORT and LONG values (the type's own bounds always apply).
    case range(min: Int64?, max: Int64?)
    /// Inclusive bounds for DOUBLE values.
    case doubleRange(min: Double, max: Double)
    /// A STRING from a fixed, case-sensitive set (Kafka's `ValidString.in`).
    case oneOf([String])
    /// A LIST whose items come from a fixed set (Kafka's `ValidList.in`).
    case listOf([String])
    /// A format check: returns nil when `value` is fine, else the reason it is not.
    case custom(expected: String, check: @Sendable (String) -> String?)

    public static func atLeast(_ min: Int64) -> ConfigValidator { .range(min: min, max: nil) }
}

/// The definition of one configuration key.
public struct ConfigDefinition: Sendable {
    public let name: String
    public let type: ConfigType
    /// The default as Kafka prints it; nil for a null default.
    public let defaultValue: String?
    /// One line of documentation.
    public let documentation: String
    /// True when the key may be changed at runtime (IncrementalAlterConfigs on a BROKER
    /// resource); DescribeConfigs reports `readOnly = !isDynamic` for broker configs.
    public let isDynamic: Bool
    public let isSensitive: Bool
    public let validator: ConfigValidator

    public init(
        _ name: String, _ type: ConfigType, default defaultValue: String?, _ validator: ConfigValidator = .none,
        dynamic: Bool = false, sensitive: Bool = false, doc documentation: String
    ) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.documentation = documentation
        self.isDynamic = dynamic
        self.isSensitive = sensitive || type == .password
        self.validator = validator
    }

    public var isReadOnly: Bool { !isDynamic }

    /// Parses and validates a raw value the way Kafka's `ConfigDef` does: surrounding
    /// whitespace is ignored, booleans are case-insensitive, lists are comma-separated.
    public func parse(_ raw: String) -> Result<ConfigValue, ConfigProblem> {
        let trimmed = raw.trimmingConfigWhitespace()
        switch type {
        case .boolean:
            switch trimmed.lowercased() {
            case "true": return .success(.boolean(true))
            case "false": return .success(.boolean(false))
            default: return .failure(ConfigProblem(reason: "Expected value to be either true or false", expected: "true or false"))
            }
        case .int, .short, .long:
            let (typeMin, typeMax): (Int64, Int64) =
                switch type {
                case .short: (Int64(Int16.min), Int64(Int16.max))
                case .int: (Int64(Int32.min), Int64(Int32.max))
                default: (Int64.min, Int64.max)
                }
            var lower = typeMin, upper = typeMax
            if case .range(let min, let max) = validator {
                if let min { lower = Swift.max(lower, min) }
                if let max { upper = Swift.min(upper, max) }
            }
            let expected = "an integer between \(lower) and \(upper)"
            guard let n = Int64(trimmed), n >= typeMin, n <= typeMax else {
                return .failure(ConfigProblem(reason: "Not a number of type \(type)", expected: expected))
            }
            if n < lower { return .failure(ConfigProblem(reason: "Value must be at least \(lower)", expected: expected)) }
            if n > upper { return .failure(ConfigProblem(reason: "Value must be no more than \(upper)", expected: expected)) }
            return .success(.integer(n))
        case .double:
            var expected = "a number"
            if case .doubleRange(let min, let max) = validator { expected = "a number between \(min) and \(max)" }
            guard let d = Double(trimmed), d.isFinite else {
                return .failure(ConfigProblem(reason: "Not a number of type DOUBLE", expected: expected))
            }
            if case .doubleRange(let min, let max) = validator {
                if d < min { return .failure(ConfigProblem(reason: "Value must be at least \(min)", expected: expected)) }
                if d > max { return .failure(ConfigProblem(reason: "Value must be no more than \(max)", expected: expected)) }
            }
            return .success(.double(d))
        case .list:
            let items = ConfigDefinition.splitList(trimmed)
            if case .listOf(let allowed) = validator {
                for item in items where !allowed.contains(item) {
                    return .failure(ConfigProblem(
                        reason: "String must be one of: \(allowed.joined(separator: ", "))",
                        expected: "a comma-separated list of: \(allowed.joined(separator: ", "))"))
                }
            }
            if case .custom(let expected, let check) = validator, let reason = check(trimmed) {
                return .failure(ConfigProblem(reason: reason, expected: expected))
            }
            return .success(.list(items))
        case .string, .class, .password, .unknown:
            if case .oneOf(let allowed) = validator, !allowed.contains(trimmed) {
                let list = allowed.joined(separator: ", ")
                return .failure(ConfigProblem(reason: "String must be one of: \(list)", expected: "one of: \(list)"))
            }
            if case .custom(let expected, let check) = validator, let reason = check(trimmed) {
                return .failure(ConfigProblem(reason: reason, expected: expected))
            }
            return .success(.string(trimmed))
        }
    }

    /// Kafka's list syntax: split on commas, trim each item, drop empty items.
    public static func splitList(_ s: String) -> [String] {
        s.split(separator: ",", omittingEmptySubsequences: false)
            .map { String($0).trimmingConfigWhitespace() }
            .filter { !$0.isEmpty }
    }
}

/// A configuration that could not be loaded or does not hold together.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// A value that does not parse or is out of range.
        case invalidValue
        /// Values that are fine alone but contradict each other (or a listener that is missing).
        case inconsistent
        /// A key that is not a configuration (from code; files and overrides only warn).
        case unknownKey
        /// A key that cannot change at runtime.
        case notDynamic
        /// A properties file that cannot be read or parsed, or a malformed `--override`.
        case malformedSource
    }

    public var kind: Kind
    public var key: String?
    public var value: String?
    public var origin: ConfigOrigin?
    /// What was expected ("an integer between 14 and 2147483647") or what is wrong.
    public var message: String

    public init(kind: Kind, key: String?, value: String?, origin: ConfigOrigin?, message: String) {
        self.kind = kind
        self.key = key
        self.value = value
        self.origin = origin
        self.message = message
    }

    /// e.g. `log.segment.bytes=abc (from server.properties:12): expected an integer between 14 and 2147483647`
    public var description: String {
        var head = ""
        if let key { head = value.map { "\(key)=\($0)" } ?? key }
        if let origin, origin != .defaultValue {
            head += head.isEmpty ? "\(origin)" : " (from \(origin))"
        } else if origin == .defaultValue, !head.isEmpty {
            head += " (default)"
        }
        let body = kind == .invalidValue ? "expected \(message)" : message
        return head.isEmpty ? body : "\(head): \(body)"
    }
}

extension String {
    /// Trims the whitespace Java's `String.trim()` removes (ASCII control characters and space).
    func trimmingConfigWhitespace() -> String {
        let isSpace: (Character) -> Bool = { c in c.unicodeScalars.allSatisfy { $0.value <= 0x20 } }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
