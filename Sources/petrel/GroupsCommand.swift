import ArgumentParser
import Foundation
import KafkaClient
import KafkaProtocol

/// `petrel groups`: list, describe (with lag), reset offsets of and delete consumer groups, like
/// kafka-consumer-groups.sh.
struct GroupsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups",
        abstract: "List, describe (with lag), reset offsets of and delete consumer groups (flags as kafka-consumer-groups.sh).",
        discussion: """
            petrel groups --bootstrap-server 127.0.0.1:9092 --list
            petrel groups --bootstrap-server 127.0.0.1:9092 --describe --group g
            petrel groups --bootstrap-server 127.0.0.1:9092 --reset-offsets --group g --topic demo --to-earliest --execute
            petrel groups --bootstrap-server 127.0.0.1:9092 --reset-offsets --group g --topic demo:0,1 --to-offset 42 --dry-run
            petrel groups --bootstrap-server 127.0.0.1:9092 --delete --group g

            --reset-offsets without --execute only prints the plan (as --dry-run). Offsets can only be \
            reset while the group has no active members.

            \(ClientExit.helpText)
            """)

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "List the groups.") var list = false
    @Flag(help: "Describe a group: per partition its committed offset, log end offset, lag and owner.") var describe = false
    @Flag(name: .customLong("reset-offsets"), help: "Reset a group's committed offsets (needs --group, --topic or --all-topics, and a --to-* / --shift-by).")
    var resetOffsets = false
    @Flag(help: "Delete a group (it must have no active members).") var delete = false

    @Option(help: "The group.") var group: String?
    @Option(help: "--reset-offsets: the topic, optionally with partitions (topic:0,1).") var topic: String?
    @Flag(name: .customLong("all-topics"), help: "--reset-offsets: every topic the group has committed offsets for.") var allTopics = false
    @Flag(name: .customLong("to-earliest"), help: "Reset to the earliest offset.") var toEarliest = false
    @Flag(name: .customLong("to-latest"), help: "Reset to the log end offset.") var toLatest = false
    @Option(name: .customLong("to-offset"), help: "Reset to this offset (clamped to the partition's earliest..latest).") var toOffset: Int64?
    @Option(name: .customLong("shift-by"), help: "Move the committed offset by N (negative: back), clamped.") var shiftBy: Int64?
    @Flag(help: "--reset-offsets: apply the reset.") var execute = false
    @Flag(name: .customLong("dry-run"), help: "--reset-offsets: only print the new offsets (the default).") var dryRun = false
    @Flag(help: "--list: also print each group's state and protocol type.") var state = false
    @Option(name: .customLong("timeout-ms"), help: "Give up (exit 5) when the operation takes longer.") var timeoutMs: Int = 30_000

    func validate() throws {
        guard [list, describe, resetOffsets, delete].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --list, --describe, --reset-offsets, --delete")
        }
        if describe || resetOffsets || delete { guard let g = group, !g.isEmpty else { throw ValidationError("--group is required") } }
        if resetOffsets {
            guard (topic != nil) != allTopics else { throw ValidationError("--reset-offsets needs --topic or --all-topics (one of them)") }
            let specs = [toEarliest, toLatest, toOffset != nil, shiftBy != nil].filter { $0 }.count
            guard specs == 1 else { throw ValidationError("--reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset, --shift-by") }
            guard !(execute && dryRun) else { throw ValidationError("--execute and --dry-run exclude each other") }
            if let o = toOffset, o < 0 { throw ValidationError("--to-offset must be >= 0") }
            _ = try topicSpec()
        } else if execute || dryRun || topic != nil || allTopics || toEarliest || toLatest || toOffset != nil || shiftBy != nil {
            throw ValidationError("--topic, --all-topics, --to-*, --shift-by, --execute and --dry-run go with --reset-offsets")
        }
        guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be > 0") }
    }

    /// `topic` or `topic:0,1`.
    func topicSpec() throws -> (String, [Int32]?)? {
        guard let topic else { return nil }
        guard let colon = topic.firstIndex(of: ":") else { return (topic, nil) }
        let name = String(topic[..<colon])
        var parts: [Int32] = []
        for p in topic[topic.index(after: colon)...].split(separator: ",") {
            guard let n = Int32(p), n >= 0 else { throw ValidationError("--topic '\(topic)': partitions must be numbers (topic:0,1)") }
            parts.append(n)
        }
        guard !name.isEmpty, !parts.isEmpty else { throw ValidationError("--topic '\(topic)' is not topic or topic:0,1") }
        return (name, parts)
    }

    func run() async throws {
        let options = self
        try await runClientTool(connection, timeoutMs: timeoutMs, what: "groups") { client in
            try await options.execute(KafkaAdmin(client: client))
        }
    }

    func execute(_ admin: KafkaAdmin) async throws {
        if list {
            let groups = try await admin.listGroups()
            if state {
                printTable(["GROUP", "STATE", "PROTOCOL-TYPE"], groups.map { [$0.groupId, $0.state, $0.protocolType] })
            } else {
                for g in groups { print(g.groupId) }
            }
        } else if describe {
            try await describeGroup(admin, group!)
        } else if delete {
            try await admin.deleteGroups([group!])
            print("Deletion of requested consumer groups ('\(group!)') was successful.")
        } else if resetOffsets {
            try await reset(admin, group!)
        }
    }

    func describeGroup(_ admin: KafkaAdmin, _ group: String) async throws {
        let description = try await admin.describeGroups([group]).first
        let lags = try await admin.consumerLag(group: group)
        let members = description?.members ?? []
        if members.isEmpty && lags.isEmpty && (description?.state ?? "Dead") == "Dead" {
            throw ClientFailure(exit: .notFound, message: "consumer group '\(group)' does not exist; list groups with `petrel groups --list`")
        }
        if members.isEmpty {
            print("\nConsumer group '\(group)' has no active members.\n")
        } else {
            print("")
        }
        var byMember: [String: GroupMemberDescription] = [:]
        for m in members { byMember[m.memberId] = m }
        var rows: [[String]] = lags.map { l in
            let m = l.memberId.flatMap { byMember[$0] }
            return [group, l.topicPartition.topic, String(l.topicPartition.partition),
                    l.committed.map(String.init) ?? "-", String(l.endOffset), l.lag.map(String.init) ?? "-",
                    m?.memberId ?? "-", m.map { kafkaHost($0.clientHost) } ?? "-", m?.clientId ?? "-"]
        }
        // Members without partitions, as kafka-consumer-groups prints them.
        for m in members where m.assignment.isEmpty {
            rows.append([group, "-", "-", "-", "-", "-", m.memberId, kafkaHost(m.clientHost), m.clientId])
        }
        printTable(["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"], rows)
    }

    func reset(_ admin: KafkaAdmin, _ group: String) async throws {
        if let d = try await admin.describeGroups([group]).first, !d.members.isEmpty {
            throw ClientFailure(exit: .failed, message: "offsets can only be reset if group '\(group)' is inactive, but its state is \(d.state) with \(d.members.count) member(s); stop its consumers first")
        }
        var partitions: [TopicPartition] = []
        let committed: [TopicPartition: Int64]
        if let spec = try topicSpec() {
            let (name, parts) = spec
            let info = try await admin.describeTopics([name])[0]
            let all = info.partitions.map(\.partition)
            for p in parts ?? all {
                guard all.contains(p) else { throw KafkaClientError.unknownPartition(TopicPartition(topic: name, partition: p)) }
                partitions.append(TopicPartition(topic: name, partition: p))
            }
            committed = try await admin.committedOffsets(group: group, partitions: partitions)
        } else {
            committed = try await admin.committedOffsets(group: group)
            partitions = committed.keys.sorted()
            if partitions.isEmpty {
                throw ClientFailure(exit: .notFound, message: "group '\(group)' has no committed offsets; give --topic")
            }
        }
        let earliest = try await admin.listOffsets(partitions, spec: .earliest)
        let latest = try await admin.listOffsets(partitions, spec: .latest)
        var plan: [TopicPartition: Int64] = [:]
        for tp in partitions {
            let lo = earliest[tp] ?? 0, hi = latest[tp] ?? 0
            let target: Int64
            if toEarliest { target = lo }
            else if toLatest { target = hi }
            else if let o = toOffset { target = o }
            else { target = (committed[tp] ?? lo) + (shiftBy ?? 0) }
            plan[tp] = min(max(target, lo), hi)
        }
        if execute {
            try await admin.alterGroupOffsets(group: group, offsets: plan)
        } else {
            writeStderr("petrel: dry run (no offsets changed); add --execute to apply\n")
        }
        print("")
        printTable(["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
                   plan.keys.sorted().map { [group, $0.topic, String($0.partition), String(plan[$0]!)] })
    }
}

/// A member's host as kafka-consumer-groups prints it (`/127.0.0.1`), also from NIO's address
/// description (`[IPv4]127.0.0.1/127.0.0.1:44162`) that some brokers report.
func kafkaHost(_ raw: String) -> String {
    var host = raw
    if let close = host.firstIndex(of: "]"), host.hasPrefix("[") {
        host = String(host[host.index(after: close)...])
        if let slash = host.lastIndex(of: "/") { host = String(host[host.index(after: slash)...]) }
        if let colon = host.lastIndex(of: ":"), !host.contains("::") || host.filter({ $0 == ":" }).count == 1 {
            host = String(host[..<colon])
        }
    }
    if host.isEmpty { return "-" }
    return host.hasPrefix("/") ? host : "/" + host
}
