// Resolution and cross-checks of listeners, advertised listeners, the security protocol map,
// the inter-broker listener and the KRaft quorum — Kafka's `KafkaConfig.validateValues` rules,
// with one Petrel convenience: a combined broker+controller node with no
// `controller.quorum.voters` is a single-node quorum and needs no controller listener.

extension BrokerConfig {
    struct Network {
        var listeners: [ListenerAddress]
        var advertised: [ListenerAddress]
        var controllerListeners: [ListenerAddress]
        var controllerListenerNames: [String]
        var protocolMap: [String: SecurityProtocol]
        var interBrokerListenerName: String
        var voters: [QuorumVoter]
    }

    /// The address clients should use for a listener: wildcard hosts become loopback.
    static func advertisable(_ listener: ListenerAddress) -> ListenerAddress {
        var l = listener
        if l.host.isEmpty || l.host == "0.0.0.0" { l.host = "127.0.0.1" } else if l.host == "::" { l.host = "::1" }
        return l
    }

    private static func parseListeners(_ r: ConfigReader, _ key: String) throws(ConfigError) -> [ListenerAddress]? {
        guard let text = try r.optionalString(key) else { return nil }
        do {
            return try ListenerAddress.parseList(text)
        } catch {
            let raw = r.raw(key)
            throw ConfigError(kind: .invalidValue, key: key, value: raw?.value, origin: raw?.origin,
                              message: "a comma-separated list of NAME://host:port (\(error.reason))")
        }
    }

    static func resolveNetwork(_ r: ConfigReader, nodeID: Int32, roles: Set<ProcessRole>) throws(ConfigError) -> Network {
        let listeners = try parseListeners(r, "listeners") ?? []
        guard !listeners.isEmpty else { throw r.inconsistency("listeners", "at least one listener is required, e.g. PLAINTEXT://127.0.0.1:9092") }
        let listenerNames = listeners.map(\.name)
        let controllerNames = ConfigDefinition.splitList(try r.string("controller.listener.names")).map { $0.uppercased() }

        // listener.security.protocol.map, with Kafka's implicit PLAINTEXT for controller listeners.
        var protocolMap: [String: SecurityProtocol]
        let protocolMapText = try r.string("listener.security.protocol.map")
        do {
            protocolMap = try parseSecurityProtocolMap(protocolMapText)
        } catch {
            throw r.inconsistency("listener.security.protocol.map", error.reason)
        }
        if !r.layers.isSet("listener.security.protocol.map") {
            let secured: Set<String> = ["SSL", "SASL_SSL", "SASL_PLAINTEXT"]
            if !controllerNames.contains(where: secured.contains) && !listenerNames.contains(where: secured.contains) {
                for name in controllerNames where protocolMap[name] == nil { protocolMap[name] = .plaintext }
            }
        }
        for name in listenerNames where protocolMap[name] == nil {
            throw r.inconsistency("listeners", "no security protocol is defined for listener \(name) in listener.security.protocol.map")
        }

        // Two listeners cannot bind the same port on overlapping addresses (port 0 is ephemeral).
        for (i, a) in listeners.enumerated() {
            for b in listeners[(i + 1)...] where a.port != 0 && a.port == b.port && (a.host == b.host || a.isWildcard || b.isWildcard) {
                throw r.inconsistency("listeners", "listeners \(a.name) and \(b.name) both use port \(a.port); each listener must have a different port")
            }
        }
        let controllerListeners = listeners.filter { controllerNames.contains($0.name) }

        // advertised.listeners
        let advertisedAll: [ListenerAddress]
        if let explicit = try parseListeners(r, "advertised.listeners") {
            for l in explicit where !listenerNames.contains(l.name) {
                throw r.inconsistency("advertised.listeners", "listener name \(l.name) is not defined in listeners; the valid options are \(listenerNames.joined(separator: ","))")
            }
            for l in explicit where l.host == "0.0.0.0" {
                throw r.inconsistency("advertised.listeners", "\(l) cannot use the nonroutable meta-address 0.0.0.0; use a routable IP address")
            }
            advertisedAll = explicit.map(advertisable)
        } else {
            advertisedAll = listeners.map(advertisable)
        }
        let advertised = advertisedAll.filter { !controllerNames.contains($0.name) }

        // The inter-broker listener.
        let explicitInterBroker = try r.optionalString("inter.broker.listener.name")?.uppercased()
        if explicitInterBroker != nil, r.layers.isSet("security.inter.broker.protocol") {
            throw r.inconsistency("inter.broker.listener.name", "only one of inter.broker.listener.name and security.inter.broker.protocol may be set")
        }
        let interBrokerKey = explicitInterBroker == nil ? "security.inter.broker.protocol" : "inter.broker.listener.name"
        let interBroker: String
        if let explicitInterBroker { interBroker = explicitInterBroker } else { interBroker = try r.string("security.inter.broker.protocol") }

        let voters: [QuorumVoter]
        let votersText = try r.list("controller.quorum.voters").joined(separator: ",")
        do {
            voters = try QuorumVoter.parseList(votersText)
        } catch {
            throw r.inconsistency("controller.quorum.voters", error.reason)
        }
        let voterIDs = voters.map { String($0.id) }.joined(separator: ",")

        if roles.contains(.broker) {
            guard !advertised.isEmpty else {
                throw r.inconsistency("listeners", "there must be at least one broker listener; perhaps all listeners appear in controller.listener.names?")
            }
            guard advertised.contains(where: { $0.name == interBroker }) else {
                throw r.inconsistency(interBrokerKey, "the inter-broker listener \(interBroker) must be a listener name defined in advertised.listeners; the valid options are \(advertised.map(\.name).joined(separator: ",")) (set inter.broker.listener.name)")
            }
        }
        if roles == [.broker] {
            guard !voters.isEmpty else {
                throw r.inconsistency("controller.quorum.voters", "must list the controllers (id@host:port,...) when process.roles=broker")
            }
            guard !voters.contains(where: { $0.id == nodeID }) else {
                throw r.inconsistency("controller.quorum.voters", "must not include this node's id \(nodeID) when process.roles contains just the 'broker' role")
            }
            guard !controllerNames.isEmpty else {
                throw r.inconsistency("controller.listener.names", "must name the controllers' listener when process.roles=broker")
            }
            guard controllerListeners.isEmpty else {
                throw r.inconsistency("listeners", "must not contain the controller listener \(controllerListeners[0].name) when process.roles=broker")
            }
            for name in controllerNames where protocolMap[name] == nil {
                throw r.inconsistency("listener.security.protocol.map", "has no security protocol for controller listener \(name)")
            }
        }
        if roles.contains(.controller) {
            if voters.isEmpty {
                guard roles.contains(.broker) else {
                    throw r.inconsistency("controller.quorum.voters", "must list the quorum (id@host:port,...) when process.roles=controller")
                }
                // A combined node with no voters is a single-node quorum of itself.
            } else {
                guard voters.contains(where: { $0.id == nodeID }) else {
                    throw r.inconsistency("controller.quorum.voters", "must include this node's id \(nodeID) (voters: \(voterIDs)) when process.roles contains the 'controller' role")
                }
                guard !controllerListeners.isEmpty else {
                    throw r.inconsistency("controller.listener.names", "must contain at least one value appearing in listeners when running the controller role")
                }
                for name in controllerNames where !listenerNames.contains(name) {
                    throw r.inconsistency("controller.listener.names", "must only contain values appearing in listeners when running the controller role; \(name) is not one")
                }
            }
            if roles == [.controller], let other = listeners.first(where: { !controllerNames.contains($0.name) }) {
                throw r.inconsistency("listeners", "must only contain controller listeners when process.roles=controller; \(other.name) is not in controller.listener.names")
            }
        }

        return Network(
            listeners: listeners, advertised: advertised, controllerListeners: controllerListeners,
            controllerListenerNames: controllerNames, protocolMap: protocolMap,
            interBrokerListenerName: interBroker, voters: voters)
    }
}
