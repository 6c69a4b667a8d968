import Testing

@testable import Broker

@Suite("Listeners, voters and cluster layout")
struct ConfigListenerTests {
    @Test func listenerSyntax() throws {
        #expect(try ListenerAddress.parse("plaintext://:9092") == ListenerAddress(name: "PLAINTEXT", host: "", port: 9092))
        #expect(try ListenerAddress.parse("EXTERNAL://0.0.0.0:19092").isWildcard)
        #expect(try ListenerAddress.parse("INTERNAL://broker-1.example.com:9092").host == "broker-1.example.com")
        let v6 = try ListenerAddress.parse("PLAINTEXT://[::1]:9092")
        #expect(v6.host == "::1")
        #expect(v6.description == "PLAINTEXT://[::1]:9092")
        #expect(try ListenerAddress.parse("PLAINTEXT://:0").port == 0)
        for bad in ["PLAINTEXT:9092", "://host:9092", "PLAINTEXT://host", "PLAINTEXT://host:70000", "PLAINTEXT://host:-1",
                    "PLAINTEXT://::1:9092", "PLAIN TEXT://h:1", "PLAINTEXT://h st:1", "PLAINTEXT://[::1:9092"] {
            #expect(throws: ConfigSyntaxError.self, "\(bad)") { try ListenerAddress.parse(bad) }
        }
        #expect(throws: ConfigSyntaxError.self) { try ListenerAddress.parseList("A://:1,a://:2") }
        #expect(try ListenerAddress.parseList(" A://:1 , B://:2 ,").map(\.name) == ["A", "B"])
    }

    @Test func voterSyntax() throws {
        #expect(try QuorumVoter.parseList("1@a:9093, 2@b:9093,3@[::1]:9093") == [
            QuorumVoter(id: 1, host: "a", port: 9093), QuorumVoter(id: 2, host: "b", port: 9093), QuorumVoter(id: 3, host: "::1", port: 9093),
        ])
        for bad in ["1a:9093", "x@a:9093", "-1@a:9093", "1@a", "1@:9093", "1@a:0", "1@a:9093@b"] {
            #expect(throws: ConfigSyntaxError.self, "\(bad)") { try QuorumVoter.parse(bad) }
        }
        #expect(throws: ConfigSyntaxError.self) { try QuorumVoter.parseList("1@a:1,1@b:2") }
        let error = configError { try BrokerConfig(["controller.quorum.voters": "1@localhost"]) }
        #expect(error?.description.hasPrefix("controller.quorum.voters=1@localhost (from code): expected a comma-separated list of id@host:port") == true)
    }

    @Test func advertisedListenersDefaultToListenersWithLoopbackForWildcards() throws {
        let c = try BrokerConfig(["listeners": "PLAINTEXT://:9092,EXTERNAL://0.0.0.0:19092,V6://[::]:29092",
                                  "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,V6:PLAINTEXT"])
        #expect(c.advertisedListeners.map(\.description) == ["PLAINTEXT://127.0.0.1:9092", "EXTERNAL://127.0.0.1:19092", "V6://[::1]:29092"])
        #expect(c.listeners[0].bindHost == "0.0.0.0")
    }

    @Test func advertisedListenerNamesMustBeListeners() {
        let error = configError { try BrokerConfig(["advertised.listeners": "PLAINTEXT://h:9092,OTHER://h:9093"]) }
        #expect(error?.key == "advertised.listeners")
        #expect(error?.description.contains("OTHER is not defined in listeners") == true)
        #expect(configError { try BrokerConfig(["advertised.listeners": "PLAINTEXT://0.0.0.0:9092"]) }?.description.contains("nonroutable") == true)
        #expect(configError { try BrokerConfig(["advertised.listeners": "PLAINTEXT://:9092"]) } == nil)
    }

    @Test func everyListenerNeedsASecurityProtocol() {
        let error = configError { try BrokerConfig(["listeners": "PLAINTEXT://:9092,INTERNAL://:9093"]) }
        #expect(error?.key == "listeners")
        #expect(error?.description.contains("no security protocol is defined for listener INTERNAL") == true)
    }

    @Test func listenersMayNotShareAPort() {
        let error = configError {
            try BrokerConfig(["listeners": "PLAINTEXT://:9092,CONTROLLER://127.0.0.1:9092"])
        }
        #expect(error?.description.contains("both use port 9092") == true)
        #expect(configError { try BrokerConfig(["listeners": "PLAINTEXT://:0,CONTROLLER://:0"]) } == nil)
    }

    @Test func interBrokerListener() throws {
        let twoListeners = [
            "listeners": "INTERNAL://:9092,EXTERNAL://:19092",
            "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        ]
        let error = configError { try BrokerConfig(twoListeners) }
        #expect(error?.key == "security.inter.broker.protocol")
        #expect(error?.description.contains("set inter.broker.listener.name") == true)
        var named = twoListeners
        named["inter.broker.listener.name"] = "internal"
        let c = try BrokerConfig(named)
        #expect(c.interBrokerListenerName == "INTERNAL")
        #expect(c.interBrokerListener?.port == 9092)
        named["security.inter.broker.protocol"] = "PLAINTEXT"
        #expect(configError { try BrokerConfig(named) }?.description.contains("only one of") == true)
    }

    /// The three-node layout of DESIGN.md: every node broker + controller.
    func clusterNode(_ id: Int) -> [String: String] {
        [
            "node.id": String(id),
            "listeners": "PLAINTEXT://127.0.0.1:\(9091 + id * 10),CONTROLLER://127.0.0.1:\(9093 + id * 10)",
            "controller.quorum.voters": "1@127.0.0.1:9103,2@127.0.0.1:9113,3@127.0.0.1:9123",
            "log.dirs": "/tmp/petrel-\(id)",
            "petrel.metrics.listener": "127.0.0.1:\(9300 + id)",
        ]
    }

    @Test func threeNodeCluster() throws {
        for id in 1...3 {
            let c = try BrokerConfig(clusterNode(id))
            #expect(c.nodeID == Int32(id))
            #expect(!c.isSingleNodeQuorum)
            #expect(c.quorumVoters.count == 3)
            #expect(c.controllerListeners.map(\.port) == [9093 + id * 10])
            #expect(c.advertisedListeners.map(\.name) == ["PLAINTEXT"])
            #expect(c.listenerSecurityProtocolMap["CONTROLLER"] == .plaintext)
        }
    }

    @Test func quorumMembershipRules() {
        var notAVoter = clusterNode(1)
        notAVoter["node.id"] = "4"
        #expect(configError { try BrokerConfig(notAVoter) }?.description.contains("must include this node's id 4") == true)

        var noControllerListener = clusterNode(1)
        noControllerListener["listeners"] = "PLAINTEXT://127.0.0.1:9101"
        #expect(configError { try BrokerConfig(noControllerListener) }?.key == "controller.listener.names")

        var brokerOnly = clusterNode(1)
        brokerOnly["process.roles"] = "broker"
        brokerOnly["listeners"] = "PLAINTEXT://127.0.0.1:9101"
        #expect(configError { try BrokerConfig(brokerOnly) }?.description.contains("must not include this node's id 1") == true)
        brokerOnly["node.id"] = "4"
        #expect(configError { try BrokerConfig(brokerOnly) } == nil)
        brokerOnly["controller.quorum.voters"] = ""
        #expect(configError { try BrokerConfig(brokerOnly) }?.key == "controller.quorum.voters")

        var controllerOnly = clusterNode(1)
        controllerOnly["process.roles"] = "controller"
        #expect(configError { try BrokerConfig(controllerOnly) }?.description.contains("must only contain controller listeners") == true)
        controllerOnly["listeners"] = "CONTROLLER://127.0.0.1:9103"
        let controller = try? BrokerConfig(controllerOnly)
        #expect(controller?.isController == true)
        #expect(controller?.isBroker == false)
    }

    @Test func explicitProtocolMapGetsNoImplicitControllerEntry() {
        var node = clusterNode(1)
        node["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT"
        #expect(configError { try BrokerConfig(node) }?.description.contains("listener CONTROLLER") == true)
    }
}
