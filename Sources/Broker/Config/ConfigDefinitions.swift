// The registry of every broker configuration key Petrel knows: Kafka's name, type, default
// (as Kafka prints it), validator, whether it may change at runtime, and one line of docs.
//
// Defaults are Kafka 4.x's, except where a single Petrel node must start with no
// configuration at all (marked "Petrel default"): node.id=1, process.roles=broker,controller,
// listeners=PLAINTEXT://127.0.0.1:9092, controller.listener.names=CONTROLLER,
// log.dir=./petrel-data, and log.segment.bytes accepts values down to 14 bytes (Kafka 4.x
// requires 1 MiB and keeps smaller segments for tests behind an internal key).

public enum ConfigDefinitions {
    static let longMax = String(Int64.max)
    static let intMax = String(Int32.max)

    /// Every broker key, in documentation order.
    public static let broker: [ConfigDefinition] = server + listenersAndQuorum + logs + internalTopics + replicationAndNetwork

    /// Broker keys by name.
    public static let byName: [String: ConfigDefinition] = Dictionary(broker.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

    public static func definition(_ name: String) -> ConfigDefinition? { byName[name] }

    /// Kafka's `DynamicBrokerConfig.brokerConfigSynonyms`: the keys that set the same thing,
    /// highest precedence first.
    public static func brokerSynonyms(_ name: String) -> [String] {
        switch name {
        case "log.roll.ms", "log.roll.hours": ["log.roll.ms", "log.roll.hours"]
        case "log.roll.jitter.ms", "log.roll.jitter.hours": ["log.roll.jitter.ms", "log.roll.jitter.hours"]
        case "log.flush.interval.ms": ["log.flush.interval.ms", "log.flush.scheduler.interval.ms"]
        case "log.retention.ms", "log.retention.minutes", "log.retention.hours":
            ["log.retention.ms", "log.retention.minutes", "log.retention.hours"]
        default: [name]
        }
    }

    // MARK: - Validators for structured values

    static let listenersValidator = ConfigValidator.custom(
        expected: "a comma-separated list of NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092 (empty host = all interfaces)",
        check: { value in
            do throws(ConfigSyntaxError) { _ = try ListenerAddress.parseList(value) } catch { return error.reason }
            return nil
        })

    static let votersValidator = ConfigValidator.custom(
        expected: "a comma-separated list of id@host:port, e.g. 1@127.0.0.1:9093,2@127.0.0.1:9094",
        check: { value in
            do throws(ConfigSyntaxError) { _ = try QuorumVoter.parseList(value) } catch { return error.reason }
            return nil
        })

    static let protocolMapValidator = ConfigValidator.custom(
        expected: "a comma-separated list of LISTENER_NAME:SECURITY_PROTOCOL, e.g. PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        check: { value in
            do throws(ConfigSyntaxError) { _ = try parseSecurityProtocolMap(value) } catch { return error.reason }
            return nil
        })

    static let rolesValidator = ConfigValidator.custom(
        expected: "broker, controller, or broker,controller",
        check: { value in
            let roles = ConfigDefinition.splitList(value)
            if roles.isEmpty { return "process.roles must contain at least one of 'broker' and 'controller'" }
            for role in roles where ProcessRole(rawValue: role) == nil {
                return "Unknown process role '\(role)' (only 'broker' and 'controller' are allowed roles)"
            }
            if Set(roles).count != roles.count { return "Duplicate role names found in process.roles" }
            return nil
        })

    static let listenerNamesValidator = ConfigValidator.custom(
        expected: "a comma-separated list of listener names, e.g. CONTROLLER",
        check: { value in
            for name in ConfigDefinition.splitList(value)
            where !name.unicodeScalars.allSatisfy({ $0.value < 128 && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") }) {
                return "'\(name)' is not a listener name"
            }
            return nil
        })

    static let metricsListenerValidator = ConfigValidator.custom(
        expected: "host:port (empty to disable), e.g. 127.0.0.1:9308",
        check: { value in
            if value.isEmpty { return nil }
            do throws(ConfigSyntaxError) { _ = try HostPort.parse(value) } catch { return error.reason }
            return nil
        })

    static let compressionTypes = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]
    static let timestampTypes = ["CreateTime", "LogAppendTime"]
    static let securityProtocols = SecurityProtocol.allCases.map(\.rawValue)

    // MARK: - Server, roles and storage

    static let server: [ConfigDefinition] = [
        ConfigDefinition("node.id", .int, default: "1", .atLeast(0),
            doc: "The node ID of this server in the KRaft cluster (Petrel default: 1, so a single node needs no configuration)."),
        ConfigDefinition("broker.id", .int, default: nil, .atLeast(0),
            doc: "Legacy name of node.id; if set it must equal node.id."),
        ConfigDefinition("process.roles", .list, default: "broker,controller", rolesValidator,
            doc: "The roles this node plays: broker, controller, or both (Petrel default: both)."),
        ConfigDefinition("cluster.id", .string, default: nil,
            doc: "The cluster id this node must belong to (Kafka keeps it in meta.properties; Petrel also accepts it here)."),
        ConfigDefinition("log.dirs", .string, default: nil,
            doc: "A comma-separated list of the directories where the log data is stored. If not set, the value in log.dir is used."),
        ConfigDefinition("log.dir", .string, default: "./petrel-data",
            doc: "The directory in which the log data is kept (supplemental for log.dirs) (Petrel default: ./petrel-data)."),
        ConfigDefinition("metadata.log.dir", .string, default: nil,
            doc: "The directory of the KRaft metadata log. If not set, the first directory of log.dirs is used."),
        ConfigDefinition("metadata.log.segment.bytes", .int, default: "1073741824", .atLeast(12),
            doc: "The maximum size of a single metadata log file."),
        ConfigDefinition("metadata.max.retention.bytes", .long, default: "104857600",
            doc: "The maximum combined size of the metadata log and snapshots before old snapshots and log files are deleted."),
        ConfigDefinition("metadata.max.retention.ms", .long, default: "604800000",
            doc: "The number of milliseconds to keep a metadata log file or snapshot before deleting it."),
        ConfigDefinition("metadata.log.max.record.bytes.between.snapshots", .long, default: "20971520", .atLeast(1),
            doc: "The maximum number of bytes in the metadata log between the latest snapshot and the high watermark before a new snapshot is taken."),
        ConfigDefinition("metadata.log.max.snapshot.interval.ms", .long, default: "3600000", .atLeast(0),
            doc: "The maximum number of milliseconds to wait to generate a snapshot if there are committed records in the log that are not included in the latest snapshot. A value of zero disables time based snapshot generation."),
        ConfigDefinition("metadata.max.idle.interval.ms", .int, default: "500", .atLeast(0),
            doc: "Accepted for compatibility and unused: Petrel's controller appends no no-op records (brokers learn that the quorum is alive from their metadata fetches and heartbeats)."),
        ConfigDefinition("num.recovery.threads.per.data.dir", .int, default: "2", .atLeast(1), dynamic: true,
            doc: "The number of threads per data directory used for log recovery at startup and flushing at shutdown."),
        ConfigDefinition("background.threads", .int, default: "10", .atLeast(1), dynamic: true,
            doc: "The number of threads to use for various background processing tasks."),
        ConfigDefinition("num.partitions", .int, default: "1", .atLeast(1),
            doc: "The default number of log partitions per topic."),
        ConfigDefinition("default.replication.factor", .int, default: "1", .atLeast(1),
            doc: "The default replication factor for automatically created topics and for CreateTopics without one."),
        ConfigDefinition("min.insync.replicas", .int, default: "1", .atLeast(1), dynamic: true,
            doc: "With acks=all, the minimum number of in-sync replicas that must acknowledge a write for it to succeed."),
        ConfigDefinition("auto.create.topics.enable", .boolean, default: "true",
            doc: "Enable auto creation of topics on the server."),
        ConfigDefinition("delete.topic.enable", .boolean, default: "true",
            doc: "Enables deleting topics; deleting through the admin tool has no effect if this is off."),
        ConfigDefinition("unclean.leader.election.enable", .boolean, default: "false", dynamic: true,
            doc: "Whether replicas not in the ISR may be elected leader as a last resort, even though doing so may lose data."),
        ConfigDefinition("auto.leader.rebalance.enable", .boolean, default: "true",
            doc: "Enables moving leadership back to the preferred replica in the background."),
        ConfigDefinition("leader.imbalance.check.interval.seconds", .long, default: "300", .atLeast(1),
            doc: "How often the controller checks for partition leadership imbalance."),
        ConfigDefinition("leader.imbalance.per.broker.percentage", .int, default: "10",
            doc: "The leadership imbalance allowed per broker, in percent, before a rebalance is triggered."),
        ConfigDefinition("broker.session.timeout.ms", .int, default: "9000",
            doc: "How long a broker lease lasts if no heartbeats are made."),
        ConfigDefinition("broker.heartbeat.interval.ms", .int, default: "2000",
            doc: "How often a broker sends heartbeats to the controller, in milliseconds."),
        ConfigDefinition("initial.broker.registration.timeout.ms", .int, default: "60000",
            doc: "How long to wait for the first broker registration with the controller quorum before failing."),
        ConfigDefinition("group.initial.rebalance.delay.ms", .int, default: "3000",
            doc: "How long the group coordinator waits for more consumers to join a new group before the first rebalance."),
        ConfigDefinition("group.min.session.timeout.ms", .int, default: "6000",
            doc: "The minimum session timeout a registered consumer may ask for."),
        ConfigDefinition("group.max.session.timeout.ms", .int, default: "1800000",
            doc: "The maximum session timeout a registered consumer may ask for."),
        ConfigDefinition("group.max.size", .int, default: intMax, .atLeast(1),
            doc: "The maximum number of consumers a single consumer group can hold."),
        ConfigDefinition("max.incremental.fetch.session.cache.slots", .int, default: "1000", .atLeast(0),
            doc: "The maximum number of incremental fetch sessions kept."),
        ConfigDefinition("fetch.max.bytes", .int, default: "57671680", .atLeast(1024),
            doc: "The maximum number of bytes returned for a fetch request; must be at least 1024."),
        ConfigDefinition("petrel.metrics.listener", .string, default: "127.0.0.1:9308", metricsListenerValidator,
            doc: "Petrel only: host:port of the Prometheus /metrics HTTP endpoint (9308 is the Kafka exporter's registered port); empty disables it."),
    ]

    // MARK: - Listeners and the KRaft quorum

    static let listenersAndQuorum: [ConfigDefinition] = [
        ConfigDefinition("listeners", .string, default: "PLAINTEXT://127.0.0.1:9092", listenersValidator,
            doc: "Comma-separated NAME://host:port addresses to listen on; an empty host binds all interfaces (Petrel default: PLAINTEXT://127.0.0.1:9092)."),
        ConfigDefinition("advertised.listeners", .string, default: nil, listenersValidator,
            doc: "Listeners to publish to clients if different from listeners; defaults to listeners minus controller listeners, with wildcard hosts as 127.0.0.1."),
        ConfigDefinition("listener.security.protocol.map", .string,
            default: "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT", protocolMapValidator,
            doc: "Map between listener names and security protocols; when left unset, controller listeners map to PLAINTEXT."),
        ConfigDefinition("controller.listener.names", .string, default: "CONTROLLER", listenerNamesValidator,
            doc: "Comma-separated names of the listeners used by the controller (Petrel default: CONTROLLER)."),
        ConfigDefinition("inter.broker.listener.name", .string, default: nil,
            doc: "Name of the listener used between brokers; if unset, the listener named by security.inter.broker.protocol."),
        ConfigDefinition("security.inter.broker.protocol", .string, default: "PLAINTEXT", .oneOf(securityProtocols),
            doc: "Security protocol used between brokers; only one of this and inter.broker.listener.name may be set."),
        ConfigDefinition("controller.quorum.voters", .list, default: "", votersValidator,
            doc: "Map of id/endpoint of the voters, as id1@host1:port1,id2@host2:port2 (empty on a single node: it is its own quorum)."),
        ConfigDefinition("controller.quorum.election.timeout.ms", .int, default: "1000",
            doc: "Maximum time without a leader before a new election is started."),
        ConfigDefinition("controller.quorum.fetch.timeout.ms", .int, default: "2000",
            doc: "Maximum time without a successful fetch from the leader before a voter becomes a candidate."),
        ConfigDefinition("controller.quorum.election.backoff.max.ms", .int, default: "1000",
            doc: "Maximum time to wait before starting a new election (exponential backoff)."),
        ConfigDefinition("controller.quorum.request.timeout.ms", .int, default: "2000",
            doc: "Maximum time to wait for the answer to a quorum request."),
        ConfigDefinition("controller.quorum.retry.backoff.ms", .int, default: "20",
            doc: "Time to wait before retrying a failed quorum request."),
        ConfigDefinition("controller.quorum.append.linger.ms", .int, default: "25",
            doc: "How long the leader waits for more writes before flushing them to the metadata log."),
    ]

    // MARK: - Logs (the broker-wide defaults of topic configs)

    static let logs: [ConfigDefinition] = [
        ConfigDefinition("log.segment.bytes", .int, default: "1073741824", .atLeast(14), dynamic: true,
            doc: "The maximum size of a single log segment file."),
        ConfigDefinition("log.roll.ms", .long, default: nil, .atLeast(1), dynamic: true,
            doc: "The maximum time before a new log segment is rolled out, in milliseconds. If not set, log.roll.hours is used."),
        ConfigDefinition("log.roll.hours", .int, default: "168", .atLeast(1),
            doc: "The maximum time before a new log segment is rolled out, in hours; secondary to log.roll.ms."),
        ConfigDefinition("log.roll.jitter.ms", .long, default: nil, .atLeast(0), dynamic: true,
            doc: "The maximum jitter to subtract from the roll time, in milliseconds. If not set, log.roll.jitter.hours is used."),
        ConfigDefinition("log.roll.jitter.hours", .int, default: "0", .atLeast(0),
            doc: "The maximum jitter to subtract from the roll time, in hours; secondary to log.roll.jitter.ms."),
        ConfigDefinition("log.retention.ms", .long, default: nil, dynamic: true,
            doc: "How long to keep a log segment before deleting it, in milliseconds; -1 means no limit. If not set, log.retention.minutes is used."),
        ConfigDefinition("log.retention.minutes", .int, default: nil,
            doc: "How long to keep a log segment before deleting it, in minutes; secondary to log.retention.ms. If not set, log.retention.hours is used."),
        ConfigDefinition("log.retention.hours", .int, default: "168",
            doc: "How long to keep a log segment before deleting it, in hours; tertiary to log.retention.ms."),
        ConfigDefinition("log.retention.bytes", .long, default: "-1", dynamic: true,
            doc: "The maximum size of a partition's log before old segments are deleted; -1 means no limit."),
        ConfigDefinition("log.retention.check.interval.ms", .long, default: "300000", .atLeast(1),
            doc: "How often, in milliseconds, the broker checks whether any log segment is eligible for deletion."),
        ConfigDefinition("log.cleanup.policy", .list, default: "delete", .listOf(["compact", "delete"]), dynamic: true,
            doc: "The default cleanup policy for segments beyond the retention window: delete, compact, or both."),
        ConfigDefinition("log.cleaner.enable", .boolean, default: "true",
            doc: "Enable the log cleaner, which compacts topics with cleanup.policy=compact (such as __consumer_offsets)."),
        ConfigDefinition("log.cleaner.threads", .int, default: "1", .atLeast(0), dynamic: true,
            doc: "The number of background threads used for log cleaning."),
        ConfigDefinition("log.cleaner.backoff.ms", .long, default: "15000", .atLeast(0), dynamic: true,
            doc: "How long the cleaner sleeps when there are no logs to clean."),
        ConfigDefinition("log.cleaner.delete.retention.ms", .long, default: "86400000", .atLeast(0), dynamic: true,
            doc: "How long tombstones are kept in compacted topics."),
        ConfigDefinition("log.cleaner.min.compaction.lag.ms", .long, default: "0", .atLeast(0), dynamic: true,
            doc: "The minimum time a message stays uncompacted in the log."),
        ConfigDefinition("log.cleaner.max.compaction.lag.ms", .long, default: longMax, .atLeast(1), dynamic: true,
            doc: "The maximum time a message stays ineligible for compaction in the log."),
        ConfigDefinition("log.cleaner.min.cleanable.ratio", .double, default: "0.5", .doubleRange(min: 0, max: 1), dynamic: true,
            doc: "The minimum ratio of dirty log to total log for a log to be eligible for cleaning."),
        ConfigDefinition("log.segment.delete.delay.ms", .long, default: "60000", .atLeast(0), dynamic: true,
            doc: "How long to wait before deleting a file from the filesystem."),
        ConfigDefinition("log.index.size.max.bytes", .int, default: "10485760", .atLeast(4), dynamic: true,
            doc: "The maximum size in bytes of the offset index."),
        ConfigDefinition("log.index.interval.bytes", .int, default: "4096", .atLeast(0), dynamic: true,
            doc: "The interval, in bytes, with which an entry is added to the offset index."),
        ConfigDefinition("log.flush.interval.messages", .long, default: longMax, .atLeast(1), dynamic: true,
            doc: "The number of messages accumulated on a log partition before they are flushed to disk."),
        ConfigDefinition("log.flush.interval.ms", .long, default: nil, .atLeast(0), dynamic: true,
            doc: "The maximum time a message stays in memory before being flushed to disk. If not set, log.flush.scheduler.interval.ms is used."),
        ConfigDefinition("log.flush.scheduler.interval.ms", .long, default: longMax,
            doc: "How often, in milliseconds, the log flusher checks whether any log needs to be flushed to disk."),
        ConfigDefinition("log.flush.offset.checkpoint.interval.ms", .int, default: "60000", .atLeast(0),
            doc: "How often the recovery point (last flushed offset) is checkpointed."),
        ConfigDefinition("log.flush.start.offset.checkpoint.interval.ms", .int, default: "60000", .atLeast(0),
            doc: "How often the log start offset is checkpointed."),
        ConfigDefinition("log.preallocate", .boolean, default: "false", dynamic: true,
            doc: "Whether to preallocate the file when a new segment is created."),
        ConfigDefinition("log.message.timestamp.type", .string, default: "CreateTime", .oneOf(timestampTypes), dynamic: true,
            doc: "Whether record timestamps are the producer's create time or the broker's log append time: CreateTime or LogAppendTime."),
        ConfigDefinition("log.message.timestamp.difference.max.ms", .long, default: longMax, .atLeast(0), dynamic: true,
            doc: "Deprecated (removed in Kafka 4.0): the maximum difference allowed between a CreateTime timestamp and the broker's clock."),
        ConfigDefinition("log.message.timestamp.before.max.ms", .long, default: longMax, .atLeast(0), dynamic: true,
            doc: "How far in the past a CreateTime timestamp may be, relative to the broker's clock, before the batch is rejected."),
        ConfigDefinition("log.message.timestamp.after.max.ms", .long, default: "3600000", .atLeast(0), dynamic: true,
            doc: "How far in the future a CreateTime timestamp may be, relative to the broker's clock, before the batch is rejected."),
        ConfigDefinition("log.local.retention.ms", .long, default: "-2", .atLeast(-2), dynamic: true,
            doc: "Tiered storage: how long local segments are kept; -2 means log.retention.ms (Petrel keeps every segment local)."),
        ConfigDefinition("log.local.retention.bytes", .long, default: "-2", .atLeast(-2), dynamic: true,
            doc: "Tiered storage: how many bytes of local segments are kept; -2 means log.retention.bytes (Petrel keeps every segment local)."),
        ConfigDefinition("message.max.bytes", .int, default: "1048588", .atLeast(0), dynamic: true,
            doc: "The largest record batch size allowed, after compression."),
        ConfigDefinition("compression.type", .string, default: "producer", .oneOf(compressionTypes), dynamic: true,
            doc: "The final compression type for topics: uncompressed, zstd, lz4, snappy, gzip, or producer (keep the producer's)."),
    ]

    // MARK: - Internal topics, transactions and producer ids

    static let internalTopics: [ConfigDefinition] = [
        ConfigDefinition("offsets.topic.replication.factor", .short, default: "3", .atLeast(1),
            doc: "The replication factor of __consumer_offsets (capped to the number of live brokers when it is created)."),
        ConfigDefinition("offsets.topic.num.partitions", .int, default: "50", .atLeast(1),
            doc: "The number of partitions of __consumer_offsets; should not change after deployment."),
        ConfigDefinition("offsets.topic.segment.bytes", .int, default: "104857600", .atLeast(1),
            doc: "The segment size of __consumer_offsets, kept small for faster compaction and loading."),
        ConfigDefinition("offsets.retention.minutes", .int, default: "10080", .atLeast(1),
            doc: "How long committed offsets are kept after a group becomes empty."),
        ConfigDefinition("offsets.retention.check.interval.ms", .long, default: "600000", .atLeast(1),
            doc: "How often to check for stale offsets."),
        ConfigDefinition("offsets.commit.timeout.ms", .int, default: "5000", .atLeast(1),
            doc: "How long an offset commit waits for all replicas of the offsets partition."),
        ConfigDefinition("offset.metadata.max.bytes", .int, default: "4096",
            doc: "The maximum size of the metadata string of an offset commit."),
        ConfigDefinition("transaction.state.log.replication.factor", .short, default: "3", .atLeast(1),
            doc: "The replication factor of __transaction_state (capped to the number of live brokers when it is created)."),
        ConfigDefinition("transaction.state.log.num.partitions", .int, default: "50", .atLeast(1),
            doc: "The number of partitions of __transaction_state."),
        ConfigDefinition("transaction.state.log.min.isr", .int, default: "2", .atLeast(1),
            doc: "min.insync.replicas of __transaction_state."),
        ConfigDefinition("transaction.state.log.segment.bytes", .int, default: "104857600", .atLeast(1),
            doc: "The segment size of __transaction_state."),
        ConfigDefinition("transaction.max.timeout.ms", .int, default: "900000", .atLeast(1),
            doc: "The maximum transaction timeout a producer may ask for."),
        ConfigDefinition("transactional.id.expiration.ms", .int, default: "604800000", .atLeast(1),
            doc: "How long a transactional id is kept without transaction status updates."),
        ConfigDefinition("producer.id.expiration.ms", .int, default: "86400000", .atLeast(1), dynamic: true,
            doc: "How long a partition keeps producer id state after the producer's last write."),
    ]

    // MARK: - Replication and networking

    static let replicationAndNetwork: [ConfigDefinition] = [
        ConfigDefinition("replica.fetch.max.bytes", .int, default: "1048576", .atLeast(0),
            doc: "The number of bytes a follower tries to fetch from each partition."),
        ConfigDefinition("replica.fetch.response.max.bytes", .int, default: "10485760", .atLeast(0),
            doc: "The maximum number of bytes expected for a whole fetch response of a follower."),
        ConfigDefinition("replica.fetch.min.bytes", .int, default: "1",
            doc: "The minimum bytes a follower's fetch waits for, up to replica.fetch.wait.max.ms."),
        ConfigDefinition("replica.fetch.wait.max.ms", .int, default: "500",
            doc: "The maximum wait time of each fetch request issued by followers."),
        ConfigDefinition("replica.fetch.backoff.ms", .int, default: "1000", .atLeast(0),
            doc: "How long a follower sleeps after a fetch partition error."),
        ConfigDefinition("replica.lag.time.max.ms", .long, default: "30000",
            doc: "A follower that has not fetched, or not caught up to the leader's log end, for this long is removed from the ISR."),
        ConfigDefinition("replica.socket.timeout.ms", .int, default: "30000",
            doc: "The socket timeout of follower fetch requests."),
        ConfigDefinition("replica.high.watermark.checkpoint.interval.ms", .long, default: "5000",
            doc: "How often the high watermark is saved to disk."),
        ConfigDefinition("num.replica.fetchers", .int, default: "1", dynamic: true,
            doc: "The number of fetcher threads per source broker."),
        ConfigDefinition("socket.request.max.bytes", .int, default: "104857600", .atLeast(1),
            doc: "The maximum number of bytes in a socket request."),
        ConfigDefinition("socket.send.buffer.bytes", .int, default: "102400",
            doc: "SO_SNDBUF of the server sockets; -1 uses the OS default."),
        ConfigDefinition("socket.receive.buffer.bytes", .int, default: "102400",
            doc: "SO_RCVBUF of the server sockets; -1 uses the OS default."),
        ConfigDefinition("socket.listen.backlog.size", .int, default: "50", .atLeast(1),
            doc: "The maximum number of pending connections on a listening socket."),
        ConfigDefinition("queued.max.requests", .int, default: "500", .atLeast(1),
            doc: "The number of queued requests allowed before network threads stop reading."),
        ConfigDefinition("num.network.threads", .int, default: "3", .atLeast(1), dynamic: true,
            doc: "The number of threads receiving requests from and sending responses to the network."),
        ConfigDefinition("num.io.threads", .int, default: "8", .atLeast(1), dynamic: true,
            doc: "The number of threads processing requests, which may include disk I/O."),
        ConfigDefinition("connections.max.idle.ms", .long, default: "600000",
            doc: "Idle connections are closed after this many milliseconds."),
        ConfigDefinition("max.connections", .int, default: intMax, .atLeast(0), dynamic: true,
            doc: "The maximum number of connections the broker accepts at any time."),
        ConfigDefinition("max.connections.per.ip", .int, default: intMax, .atLeast(0), dynamic: true,
            doc: "The maximum number of connections accepted from each IP address."),
    ]
}
