@testable import Broker
import Foundation
import KafkaClient
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A Petrel broker in this process, on an ephemeral port, data in a temp directory.
struct InProcessBroker {
    let broker: PetrelBroker
    let directory: String
    let port: Int

    var bootstrap: String { "127.0.0.1:\(port)" }

    static func start(_ overrides: [String: String] = [:]) async throws -> InProcessBroker {
        let directory = NSTemporaryDirectory() + "petrel-client-test-" + UUID().uuidString
        var properties = [
            "log.dirs": directory, "listeners": "PLAINTEXT://127.0.0.1:0", "petrel.metrics.listener": "",
            "offsets.topic.replication.factor": "1", "group.initial.rebalance.delay.ms": "0",
        ]
        for (k, v) in overrides { properties[k] = v }
        let config = try BrokerConfig(properties)
        var logger = Logger(label: "test.broker")
        logger.logLevel = .warning
        let broker = try await PetrelBroker.start(config: config, logger: logger)
        return InProcessBroker(broker: broker, directory: directory, port: broker.kafkaPort)
    }

    func stop() async {
        await broker.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
