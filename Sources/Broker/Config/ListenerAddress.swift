// Endpoints in Kafka's configuration syntax: listeners (`NAME://host:port`), quorum voters
// (`id@host:port`), plain `host:port`, process roles and security protocols.

/// A reason a piece of configuration syntax does not parse.
public struct ConfigSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// `process.roles` values.
public enum ProcessRole: String, Sendable, Hashable, CaseIterable, Comparable {
    case broker
    case controller

    public static func < (a: ProcessRole, b: ProcessRole) -> Bool { a.rawValue < b.rawValue }
}

/// Kafka's security protocols, as named in `listener.security.protocol.map`.
public enum SecurityProtocol: String, Sendable, Hashable, CaseIterable {
    case plaintext = "PLAINTEXT"
    case ssl = "SSL"
    case saslPlaintext = "SASL_PLAINTEXT"
    case saslSSL = "SASL_SSL"

    /// Kafka's protocol ids (used in older metadata messages).
    public var id: Int16 {
        switch self {
        case .plaintext: 0
        case .ssl: 1
        case .saslPlaintext: 2
        case .saslSSL: 3
        }
    }
}

/// A host and a port. An empty host means every interface.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// True for an empty host, `0.0.0.0` or `::` — bind to every interface.
    public var isWildcard: Bool { host.isEmpty || host == "0.0.0.0" || host == "::" }

    /// The address to bind: `0.0.0.0` for an empty host.
    public var bindHost: String { host.isEmpty ? "0.0.0.0" : host }

    public var description: String { "\(HostPort.bracketed(host)):\(port)" }

    static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// Parses `host:port`, `[ipv6]:port` or `:port` (empty host). Ports are 0-65535.
    public static func parse(_ text: String) throws(ConfigSyntaxError) -> HostPort {
        let s = text.trimmingConfigWhitespace()
        let host: String
        let portText: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { throw ConfigSyntaxError("'\(s)' has '[' without a closing ']'") }
            host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ConfigSyntaxError("'\(s)' has no ':port' after the bracketed host") }
            portText = rest.dropFirst()
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." || $0 == "%" || $0.isLetter || $0.isNumber })
            else { throw ConfigSyntaxError("'\(host)' is not an IPv6 address") }
        } else {
            guard let colon = s.lastIndex(of: ":") else { throw ConfigSyntaxError("'\(s)' has no ':port'") }
            host = String(s[..<colon])
            portText = s[s.index(after: colon)...]
            if host.contains(":") { throw ConfigSyntaxError("IPv6 host '\(host)' must be written in brackets, e.g. [\(host)]:\(portText)") }
            let allowed = host.unicodeScalars.allSatisfy { c in
                (c.value < 128 && (c.properties.isAlphabetic || ("0"..."9").contains(c))) || c == "-" || c == "." || c == "_" || c == "%"
            }
            guard allowed else { throw ConfigSyntaxError("'\(host)' is not a valid host name or address") }
        }
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText) else {
            throw ConfigSyntaxError("port '\(portText)' is not a number")
        }
        guard (0...65535).contains(port) else { throw ConfigSyntaxError("port \(port) is out of range 0-65535") }
        return HostPort(host: host, port: port)
    }
}

/// One entry of `listeners` / `advertised.listeners`: `NAME://host:port`.
/// The name is normalised to upper case, as Kafka's `ListenerName.normalised` does.
public struct ListenerAddress: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var host: String
    public var port: Int

    public init(name: String, host: String, port: Int) {
        self.name = name.uppercased()
        self.host = host
        self.port = port
    }

    public var hostPort: HostPort { HostPort(host: host, port: port) }
    public var isWildcard: Bool { hostPort.isWildcard }
    public var bindHost: String { hostPort.bindHost }

    public var description: String { "\(name)://\(HostPort.bracketed(host)):\(port)" }

    public static func parse(_ text: String) throws(ConfigSyntaxError) -> ListenerAddress {
        let s = text.trimmingConfigWhitespace()
        guard let sep = s.firstRange(of: "://") else {
            throw ConfigSyntaxError("'\(s)' is not of the form NAME://host:port")
        }
        let name = String(s[..<sep.lowerBound])
        guard !name.isEmpty else { throw ConfigSyntaxError("'\(s)' has no listener name before '://'") }
        guard name.unicodeScalars.allSatisfy({ $0.value < 128 && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") })
        else { throw ConfigSyntaxError("listener name '\(name)' may only contain letters, digits, '_' and '-'") }
        let hp = try HostPort.parse(String(s[sep.upperBound...]))
        return ListenerAddress(name: name, host: hp.host, port: hp.port)
    }

    /// Parses a comma-separated list; names must be distinct.
    public static func parseList(_ text: String) throws(ConfigSyntaxError) -> [ListenerAddress] {
        var result: [ListenerAddress] = []
        for item in ConfigDefinition.splitList(text) {
            let listener = try parse(item)
            if result.contains(where: { $0.name == listener.name }) {
                throw ConfigSyntaxError("listener name \(listener.name) appears more than once; each listener must have a different name")
            }
            result.append(listener)
        }
        return result
    }
}

/// One entry of `controller.quorum.voters`: `id@host:port`.
public struct QuorumVoter: Sendable, Hashable, CustomStringConvertible {
    public var id: Int32
    public var host: String
    public var port: Int

    public init(id: Int32, host: String, port: Int) {
        self.id = id
        self.host = host
        self.port = port
    }

    public var hostPort: HostPort { HostPort(host: host, port: port) }
    public var description: String { "\(id)@\(HostPort.bracketed(host)):\(port)" }

    public static func parse(_ text: String) throws(ConfigSyntaxError) -> QuorumVoter {
        let s = text.trimmingConfigWhitespace()
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw ConfigSyntaxError("'\(s)' is not of the form id@host:port") }
        guard let id = Int32(parts[0]), id >= 0 else {
            throw ConfigSyntaxError("voter id '\(parts[0])' in '\(s)' is not a non-negative integer")
        }
        let hp = try HostPort.parse(String(parts[1]))
        guard !hp.host.isEmpty else { throw ConfigSyntaxError("voter '\(s)' has an empty host") }
        guard hp.port != 0 else { throw ConfigSyntaxError("voter '\(s)' has port 0") }
        return QuorumVoter(id: id, host: hp.host, port: hp.port)
    }

    /// Parses a comma-separated list; ids must be distinct.
    public static func parseList(_ text: String) throws(ConfigSyntaxError) -> [QuorumVoter] {
        var result: [QuorumVoter] = []
        for item in ConfigDefinition.splitList(text) {
            let voter = try parse(item)
            if result.contains(where: { $0.id == voter.id }) {
                throw ConfigSyntaxError("voter id \(voter.id) appears more than once")
            }
            result.append(voter)
        }
        return result
    }
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`); names are upper-cased.
public func parseSecurityProtocolMap(_ text: String) throws(ConfigSyntaxError) -> [String: SecurityProtocol] {
    var map: [String: SecurityProtocol] = [:]
    for item in ConfigDefinition.splitList(text) {
        let parts = item.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw ConfigSyntaxError("'\(item)' is not of the form LISTENER_NAME:SECURITY_PROTOCOL") }
        let name = String(parts[0]).trimmingConfigWhitespace().uppercased()
        let protoName = String(parts[1]).trimmingConfigWhitespace().uppercased()
        guard !name.isEmpty else { throw ConfigSyntaxError("'\(item)' has an empty listener name") }
        guard let proto = SecurityProtocol(rawValue: protoName) else {
            throw ConfigSyntaxError("'\(protoName)' is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)")
        }
        guard map[name] == nil else { throw ConfigSyntaxError("listener name \(name) is mapped more than once") }
        map[name] = proto
    }
    return map
}
