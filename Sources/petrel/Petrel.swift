import ArgumentParser
import KafkaProtocol

@main
struct Petrel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "petrel",
        abstract: "Petrel: a Kafka-compatible, three-node replicated log broker.",
        version: PetrelVersion.string,
        subcommands: [Demo.self, BrokerCommand.self, ClusterCommand.self, Protocol.self,
                      CollatzProducerCommand.self, ClickHouseSinkCommand.self, AnswersAPICommand.self,
                      TopicsCommand.self, GroupsCommand.self, ProduceCommand.self, ConsumeCommand.self, PerfCommand.self],
        defaultSubcommand: nil
    )
}

enum PetrelVersion {
    static let string = "0.1.0"
}
