import Testing

@testable import Broker

@Suite("Java .properties syntax")
struct ConfigPropertiesFileTests {
    func parse(_ text: String) throws -> [String: String] {
        Dictionary(try PropertiesFile.parse(text).map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
    }

    @Test func separatorsAndWhitespace() throws {
        let p = try parse("""
            a=1
            b = 2
            c: 3
            d 4
              e\t=\t5  \t
            f==6
            g
            h=
            i:j=k
            """)
        #expect(p == ["a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "=6", "g": "", "h": "", "i": "j=k"])
    }

    @Test func commentsAndBlankLines() throws {
        let entries = try PropertiesFile.parse("""
            # comment
            ! also a comment
               # indented comment

            a=1 # not a comment
            """)
        #expect(entries == [PropertiesFile.Entry(key: "a", value: "1 # not a comment", line: 5)])
    }

    @Test func backslashContinuation() throws {
        let entries = try PropertiesFile.parse("""
            listeners=PLAINTEXT://:9092,\\
                      CONTROLLER://:9093
            next=1
            # a comment ending in a backslash does not continue \\
            after=2
            """)
        #expect(entries == [
            PropertiesFile.Entry(key: "listeners", value: "PLAINTEXT://:9092,CONTROLLER://:9093", line: 1),
            PropertiesFile.Entry(key: "next", value: "1", line: 3),
            PropertiesFile.Entry(key: "after", value: "2", line: 5),
        ])
    }

    @Test func evenBackslashesDoNotContinue() throws {
        let p = try parse("a=x\\\\\nb=y")
        #expect(p == ["a": "x\\", "b": "y"])
    }

    @Test func escapes() throws {
        let p = try parse(#"""
            key\ with\ spaces=v
            k\=eq=v2
            k\:colon=v3
            tab=a\tb
            unicode=caf\u00e9 \u2603
            emoji=\uD83D\uDE00
            other=\q\\
            """#)
        #expect(p["key with spaces"] == "v")
        #expect(p["k=eq"] == "v2")
        #expect(p["k:colon"] == "v3")
        #expect(p["tab"] == "a\tb")
        #expect(p["unicode"] == "café ☃")
        #expect(p["emoji"] == "😀")
        #expect(p["other"] == "q\\")
    }

    @Test func malformedUnicodeEscapeIsAnError() {
        #expect(throws: ConfigError.self) { try PropertiesFile.parse("a=\\u12G4", path: "x.properties") }
    }

    @Test func lineEndingsAndLineNumbers() throws {
        let entries = try PropertiesFile.parse("a=1\r\nb=2\rc=3\n\n\rd=4")
        #expect(entries.map(\.key) == ["a", "b", "c", "d"])
        #expect(entries.map(\.line) == [1, 2, 3, 6])
    }

    @Test func byteOrderMarkIsSkipped() throws {
        #expect(try parse("\u{FEFF}node.id=3") == ["node.id": "3"])
    }

    @Test func kafkaQuickstartFileLoads() throws {
        let path = try writeTempProperties("""
            ############################# Server Basics #############################
            process.roles=broker,controller
            node.id=1
            controller.quorum.voters=1@localhost:9093
            ############################# Socket Server Settings #############################
            listeners=PLAINTEXT://:9092,CONTROLLER://:9093
            inter.broker.listener.name=PLAINTEXT
            advertised.listeners=PLAINTEXT://localhost:9092
            controller.listener.names=CONTROLLER
            listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
            num.network.threads=3
            num.io.threads=8
            socket.send.buffer.bytes=102400
            socket.receive.buffer.bytes=102400
            socket.request.max.bytes=104857600
            log.dirs=/tmp/kraft-combined-logs
            num.partitions=1
            num.recovery.threads.per.data.dir=1
            offsets.topic.replication.factor=1
            transaction.state.log.replication.factor=1
            transaction.state.log.min.isr=1
            log.retention.hours=168
            log.segment.bytes=1073741824
            log.retention.check.interval.ms=300000
            """)
        let (c, warnings) = try BrokerConfig.load(propertiesFile: path, overrides: [], environment: [:])
        #expect(warnings.isEmpty)
        #expect(c.listeners.map(\.description) == ["PLAINTEXT://:9092", "CONTROLLER://:9093"])
        #expect(c.advertisedListeners.map(\.description) == ["PLAINTEXT://localhost:9092"])
        #expect(c.controllerListeners.map(\.port) == [9093])
        #expect(c.quorumVoters == [QuorumVoter(id: 1, host: "localhost", port: 9093)])
        #expect(c.isSingleNodeQuorum)
        #expect(c.logDirs == ["/tmp/kraft-combined-logs"])
        #expect(c.offsetsTopicReplicationFactor == 1)
    }
}
