import ArgumentParser
import Foundation
import KafkaClient
import KafkaProtocol

/// `petrel topics`: create, alter, describe, list and delete topics, like kafka-topics.sh.
struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Create, alter, describe, list and delete topics (flags as kafka-topics.sh).",
        discussion: """
            petrel topics --bootstrap-server 127.0.0.1:9092 --create --topic demo --partitions 3 --config retention.ms=60000
            petrel topics --bootstrap-server 127.0.0.1:9092 --describe --topic demo
            petrel topics --bootstrap-server 127.0.0.1:9092 --alter --topic demo --partitions 6
            petrel topics --bootstrap-server 127.0.0.1:9092 --list
            petrel topics --bootstrap-server 127.0.0.1:9092 --delete --topic demo

            \(ClientExit.helpText)
            """)

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Create a topic (needs --topic).") var create = false
    @Flag(help: "Add partitions to a topic (needs --topic and --partitions).") var alter = false
    @Flag(help: "Describe topics: every topic, or --topic.") var describe = false
    @Flag(help: "List topic names.") var list = false
    @Flag(help: "Delete a topic (needs --topic).") var delete = false

    @Option(help: "The topic (comma-separated list for --describe and --delete).") var topic: String?
    @Option(help: "Partition count (--create: default the broker's num.partitions; --alter: the new total).") var partitions: Int32?
    @Option(name: .customLong("replication-factor"), help: "Replication factor for --create (default the broker's default.replication.factor).")
    var replicationFactor: Int16?
    @Option(name: .customLong("config"), help: "A topic config for --create, key=value (repeatable).") var configs: [String] = []
    @Flag(name: .customLong("if-not-exists"), help: "--create: succeed if the topic exists already.") var ifNotExists = false
    @Flag(name: .customLong("if-exists"), help: "--alter/--delete/--describe: succeed if the topic does not exist.") var ifExists = false
    @Flag(name: .customLong("exclude-internal"), help: "--list/--describe: leave out internal topics (__consumer_offsets).") var excludeInternal = false
    @Option(name: .customLong("timeout-ms"), help: "Give up (exit 5) when the operation takes longer.") var timeoutMs: Int = 30_000

    var topics: [String] { (topic ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty } }

    func validate() throws {
        let actions = [create, alter, describe, list, delete].filter { $0 }.count
        guard actions == 1 else { throw ValidationError("give exactly one of --create, --alter, --describe, --list, --delete") }
        if create || alter || delete { guard !topics.isEmpty else { throw ValidationError("--topic is required") } }
        if create || alter { guard topics.count == 1 else { throw ValidationError("--create and --alter take one --topic") } }
        if alter { guard partitions != nil else { throw ValidationError("--alter needs --partitions (the new total)") } }
        if let p = partitions, p < 1 { throw ValidationError("--partitions must be at least 1") }
        if let r = replicationFactor, r < 1 { throw ValidationError("--replication-factor must be at least 1") }
        if !create && (replicationFactor != nil || !configs.isEmpty) {
            throw ValidationError("--replication-factor and --config go with --create")
        }
        for c in configs { _ = try parseKeyValue(c, flag: "--config") }
        guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be > 0") }
    }

    func run() async throws {
        let options = self
        try await runClientTool(connection, timeoutMs: timeoutMs, what: "topics") { client in
            try await options.execute(KafkaAdmin(client: client))
        }
    }

    func execute(_ admin: KafkaAdmin) async throws {
        if create {
            var configMap: [String: String] = [:]
            for c in configs { let (k, v) = try parseKeyValue(c, flag: "--config"); configMap[k] = v }
            let t = NewTopic(name: topics[0], partitions: partitions ?? -1, replicationFactor: replicationFactor ?? -1, configs: configMap)
            try await admin.createTopics([t], ignoreExisting: ifNotExists, timeoutMs: Int32(timeoutMs))
            print("Created topic \(topics[0]).")
        } else if alter {
            do {
                try await admin.createPartitions(topic: topics[0], totalCount: partitions!, timeoutMs: Int32(timeoutMs))
            } catch {
                if ifExists && isUnknownTopic(error) { return }
                throw error
            }
            print("Increased the partition count of \(topics[0]) to \(partitions!).")
        } else if list {
            for name in try await admin.listTopics(includeInternal: !excludeInternal) { print(name) }
        } else if delete {
            do {
                try await admin.deleteTopics(topics, timeoutMs: Int32(timeoutMs))
            } catch {
                if ifExists && isUnknownTopic(error) { return }
                throw error
            }
            for t in topics { print("Deleted topic \(t).") }
        } else if describe {
            var names = topics
            if names.isEmpty { names = try await admin.listTopics(includeInternal: !excludeInternal) }
            for name in names {
                let info: TopicInfo
                do {
                    guard let i = try await admin.describeTopics([name]).first else { continue }
                    info = i
                } catch {
                    if ifExists && isUnknownTopic(error) { continue }
                    throw error
                }
                let configs = (try? await admin.describeConfigs(.topic(name))) ?? []
                let shown = configs.filter { !$0.isDefault && !$0.isSensitive && $0.value != nil }
                    .sorted { $0.name < $1.name }.map { "\($0.name)=\($0.value!)" }.joined(separator: ",")
                let rf = info.partitions.first?.replicas.count ?? 0
                print("Topic: \(name)\tTopicId: \(info.topicId)\tPartitionCount: \(info.partitions.count)\tReplicationFactor: \(rf)\tConfigs: \(shown)")
                for p in info.partitions {
                    var line = "\tTopic: \(name)\tPartition: \(p.partition)\tLeader: \(p.leader >= 0 ? String(p.leader) : "none")"
                    line += "\tReplicas: \(p.replicas.map(String.init).joined(separator: ","))"
                    line += "\tIsr: \(p.isr.map(String.init).joined(separator: ","))"
                    if !p.offlineReplicas.isEmpty { line += "\tOffline: \(p.offlineReplicas.map(String.init).joined(separator: ","))" }
                    if let e = p.error { line += "\tError: \(e.name)" }
                    print(line)
                }
            }
        }
    }
}

func isUnknownTopic(_ error: any Error) -> Bool {
    guard let e = error as? KafkaClientError else { return false }
    if case .unknownTopic = e { return true }
    if let code = e.errorCode { return code == .unknownTopicOrPartition || code == .unknownTopicId }
    return false
}
