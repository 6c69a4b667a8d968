import ArgumentParser
import KafkaProtocol

/// `petrel demo`: Petrel's main job. Today the protocol foundation is what exists, so the demo
/// shows it working (a Produce request with a gzip batch through the codec) and says what comes next.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what Petrel does today and how to try it (the Collatz pipeline demo comes with its issue).")

    func run() throws {
        print("Petrel \(PetrelVersion.string): a Kafka-compatible, three-node replicated log broker in Swift.")
        print("")
        print("Speaks \(ApiKey.allCases.count) Kafka APIs (codec generated from Apache Kafka's JSON specs).")
        let summary = try ProtocolDemo.roundTripProduce()
        print(summary)
        print("")
        print("Working today: a single-node broker with Kafka's on-disk log, the producer/consumer/admin")
        print("APIs and consumer groups. Try it:")
        print("  petrel broker                                  # 127.0.0.1:9092, data in ./petrel-data")
        print("  kcat -b 127.0.0.1:9092 -P -t demo -K: <<< 'k1:hello'")
        print("  kcat -b 127.0.0.1:9092 -C -t demo -e")
        print("")
        print("Coming next (see `issues`): the three-node Raft cluster with replication, the Swift client")
        print("and CLI, and the Collatz pipeline with ClickHouse, kafka-ui and Metabase.")
    }
}
