import ArgumentParser
import KafkaProtocol

/// `petrel demo`: Petrel's main job. Today the protocol foundation is what exists, so the demo
/// shows it working (a Produce request with a gzip batch through the codec) and says what comes next.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Petrel demo (today: the protocol codec; the broker and Collatz pipeline are on their way).")

    func run() throws {
        print("Petrel \(PetrelVersion.string): a Kafka-compatible, three-node replicated log broker in Swift.")
        print("")
        print("Speaks \(ApiKey.allCases.count) Kafka APIs (codec generated from Apache Kafka's JSON specs).")
        let summary = try ProtocolDemo.roundTripProduce()
        print(summary)
        print("")
        print("Coming next (see `issues`): the single-node broker (storage + Kafka APIs), the three-node")
        print("Raft cluster, consumer groups, the Swift client and CLI, and the Collatz pipeline with")
        print("ClickHouse, kafka-ui and Metabase.")
    }
}
