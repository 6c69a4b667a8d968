import AnswersAPI
import ArgumentParser
import Collatz
import Foundation
import Hummingbird
import KafkaClient
import Logging
import ServiceLifecycle

// `petrel collatz-producer`, `petrel clickhouse-sink`, `petrel api`: the Collatz pipeline's
// three processes. Every setting has a flag and an environment variable (docker/ENVIRONMENT.md):
// flag, then environment, then default; a malformed value stops the start with exit status 2.

/// Flag → environment → default, with a clear message for a malformed value.
struct SettingResolver {
    let environment: [String: String]
    let logger: Logger

    init(logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
        self.logger = logger
    }

    func string(_ flag: String?, flagName: String, env: String, default value: String) -> String {
        if let flag { return flag }
        if let v = environment[env], !v.isEmpty { return v }
        return value
    }

    func parse<T>(_ flag: String?, flagName: String, env: String, default value: T, expected: String,
                  _ convert: (String) -> T?) throws -> T {
        let (raw, source): (String?, String) = flag.map { ($0, "--\(flagName)") }
            ?? (environment[env].flatMap { $0.isEmpty ? nil : $0 }, env)
        guard let raw else { return value }
        guard let parsed = convert(raw.trimmingCharacters(in: .whitespaces)) else {
            logger.critical("refusing to start: \(source)=\(raw.debugDescription) is malformed: expected \(expected)")
            throw ExitCode(2)
        }
        return parsed
    }

    /// `X_PASSWORD_FILE` (one trailing newline dropped) wins over `X_PASSWORD`; none: empty.
    func password(prefix: String) throws -> String {
        if let file = environment["\(prefix)_PASSWORD_FILE"], !file.isEmpty {
            guard var text = try? String(contentsOfFile: file, encoding: .utf8) else {
                logger.critical("refusing to start: \(prefix)_PASSWORD_FILE=\(file.debugDescription) cannot be read")
                throw ExitCode(2)
            }
            if text.hasSuffix("\r\n") { text.removeLast(1) } else if text.hasSuffix("\n") { text.removeLast() }
            return text
        }
        return environment["\(prefix)_PASSWORD"] ?? ""
    }

    /// `host:port`, or nil for empty (off).
    func listener(_ flag: String?, env: String) throws -> (host: String, port: Int)? {
        let raw = flag ?? environment[env] ?? ""
        if raw.isEmpty { return nil }
        guard let colon = raw.lastIndex(of: ":"), let port = Int(raw[raw.index(after: colon)...]), (0...65535).contains(port) else {
            logger.critical("refusing to start: \(flag != nil ? "--metrics-listener" : env)=\(raw.debugDescription) is malformed: expected host:port")
            throw ExitCode(2)
        }
        var host = String(raw[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}

/// Options every worker shares.
struct WorkerCommonOptions: ParsableArguments {
    @Option(name: .customLong("bootstrap-server"), help: "Comma-separated host:port brokers (env PETREL_BOOTSTRAP_SERVERS; default 127.0.0.1:9092).")
    var bootstrapServer: String?

    @Option(name: .long, help: "Topic of the Collatz step records (env COLLATZ_TOPIC; default conjecture.data).")
    var topic: String?

    @Option(name: .customLong("metrics-listener"), help: "host:port for GET /metrics and /healthz (env PETREL_METRICS_LISTENER; default off).")
    var metricsListener: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical (env PETREL_LOG_LEVEL; default info).")
    var logLevel: String?

    func bootstrapLogging(label: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel ?? ProcessInfo.processInfo.environment["PETREL_LOG_LEVEL"] ?? "info") ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }

    func servers(_ settings: SettingResolver) throws -> [String] {
        let raw = settings.string(bootstrapServer, flagName: "bootstrap-server", env: "PETREL_BOOTSTRAP_SERVERS", default: "127.0.0.1:9092")
        let list = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty, list.allSatisfy({ s in s.lastIndex(of: ":").flatMap { Int(s[s.index(after: $0)...]) } != nil }) else {
            settings.logger.critical("refusing to start: bootstrap servers \(raw.debugDescription) are malformed: expected host:port[,host:port...]")
            throw ExitCode(2)
        }
        return list
    }

    func topicName(_ settings: SettingResolver) -> String {
        settings.string(topic, flagName: "topic", env: "COLLATZ_TOPIC", default: "conjecture.data")
    }
}

/// ClickHouse options shared by the sink and the API.
struct ClickHouseOptions: ParsableArguments {
    @Option(name: .customLong("clickhouse-url"), help: "ClickHouse HTTP interface (env CLICKHOUSE_URL; default http://127.0.0.1:8123).")
    var url: String?

    @Option(name: .customLong("clickhouse-user"), help: "ClickHouse user (env CLICKHOUSE_USER; default default). Password: CLICKHOUSE_PASSWORD_FILE or CLICKHOUSE_PASSWORD.")
    var user: String?

    @Option(name: .customLong("clickhouse-database"), help: "Database of the Collatz tables (env CLICKHOUSE_DATABASE; default collatz).")
    var database: String?

    func configuration(_ settings: SettingResolver) throws -> (ClickHouseConfiguration, ClickHouseSchema) {
        let url = settings.string(url, flagName: "clickhouse-url", env: "CLICKHOUSE_URL", default: "http://127.0.0.1:8123")
        guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil else {
            settings.logger.critical("refusing to start: ClickHouse URL \(url.debugDescription) is malformed: expected http://host:port")
            throw ExitCode(2)
        }
        let user = settings.string(user, flagName: "clickhouse-user", env: "CLICKHOUSE_USER", default: "default")
        let database = settings.string(database, flagName: "clickhouse-database", env: "CLICKHOUSE_DATABASE", default: "collatz")
        let schema: ClickHouseSchema
        do {
            schema = try ClickHouseSchema(database: database)
        } catch {
            settings.logger.critical("refusing to start: ClickHouse database \(database.debugDescription): \(error)")
            throw ExitCode(2)
        }
        let config = ClickHouseConfiguration(url: url, database: database, user: user, password: try settings.password(prefix: "CLICKHOUSE"))
        return (config, schema)
    }
}

/// Runs `services` until SIGTERM/SIGINT (graceful) or until the worker ends.
func runServices(worker: any Service, metrics: (host: String, port: Int)?, status: WorkerStatus, logger: Logger) async throws {
    var services = [ServiceGroupConfiguration.ServiceConfiguration]()
    if let metrics {
        let app = WorkerEndpoints.makeApplication(status: status, host: metrics.host, port: metrics.port, logger: logger)
        services.append(ServiceGroupConfiguration.ServiceConfiguration(service: app))
    }
    // The worker ending (e.g. --max-chains reached) shuts the group down gracefully.
    services.append(ServiceGroupConfiguration.ServiceConfiguration(service: worker, successTerminationBehavior: .gracefullyShutdownGroup,
                                         failureTerminationBehavior: .gracefullyShutdownGroup))
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
}

struct CollatzProducerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collatz-producer",
        abstract: "Publish every step of random Collatz chains to Kafka ({\"Number\": n, \"Step\": s, \"Value\": v}, key n).")

    @OptionGroup var common: WorkerCommonOptions

    @Option(help: "Partitions when creating the topic (env COLLATZ_PARTITIONS; default 4).")
    var partitions: String?
    @Option(name: .customLong("replication-factor"), help: "Replication factor when creating the topic (env COLLATZ_REPLICATION_FACTOR; default 3).")
    var replicationFactor: String?
    @Option(help: "Smallest start number (env COLLATZ_MIN; default 1).")
    var min: String?
    @Option(help: "Largest start number, inclusive (env COLLATZ_MAX; default 99999999999999).")
    var max: String?
    @Option(help: "Records per second for this instance, 0 = unlimited (env COLLATZ_RATE; default 0).")
    var rate: String?
    @Option(name: .customLong("max-chains"), help: "Stop after this many chains (default: run until stopped).")
    var maxChains: Int?
    @Option(help: "Seed for reproducible start numbers (default: random).")
    var seed: UInt64?

    func run() async throws {
        let logger = common.bootstrapLogging(label: "petrel.collatz-producer")
        let settings = SettingResolver(logger: logger)
        var config = CollatzProducerConfiguration()
        config.topic = common.topicName(settings)
        config.partitions = try settings.parse(partitions, flagName: "partitions", env: "COLLATZ_PARTITIONS", default: 4,
                                               expected: "an integer 1...100000") { Int32($0).flatMap { (1...100_000).contains($0) ? $0 : nil } }
        config.replicationFactor = try settings.parse(replicationFactor, flagName: "replication-factor", env: "COLLATZ_REPLICATION_FACTOR",
                                                      default: 3, expected: "an integer 1...32") { Int16($0).flatMap { (1...32).contains($0) ? $0 : nil } }
        let lo = try settings.parse(min, flagName: "min", env: "COLLATZ_MIN", default: UInt64(1), expected: "an integer ≥ 1") {
            UInt64($0).flatMap { $0 >= 1 ? $0 : nil }
        }
        let hi = try settings.parse(max, flagName: "max", env: "COLLATZ_MAX", default: UInt64(99_999_999_999_999),
                                    expected: "an integer ≥ 1 and below 2^63") { UInt64($0).flatMap { $0 >= 1 && $0 < 1 << 63 ? $0 : nil } }
        guard lo <= hi else {
            logger.critical("refusing to start: min \(lo) is above max \(hi)")
            throw ExitCode(2)
        }
        config.range = lo...hi
        config.recordsPerSecond = try settings.parse(rate, flagName: "rate", env: "COLLATZ_RATE", default: 0,
                                                     expected: "a number ≥ 0") { Double($0).flatMap { $0 >= 0 && $0.isFinite ? $0 : nil } }
        config.maxChains = maxChains
        config.seed = seed
        let servers = try common.servers(settings)
        let metrics = try settings.listener(common.metricsListener, env: "PETREL_METRICS_LISTENER")

        var client = ClientConfiguration(bootstrapServers: servers)
        client.clientId = "petrel-collatz-producer"
        let publisher: KafkaRecordPublisher
        do {
            publisher = try KafkaRecordPublisher(client: KafkaClient(client, logger: logger), logger: logger)
        } catch {
            logger.critical("cannot start the producer: \(error)")
            throw ExitCode(1)
        }
        logger.info("collatz-producer: starting", metadata: [
            "bootstrap": "\(servers.joined(separator: ","))", "topic": "\(config.topic)", "range": "\(lo)...\(hi)",
            "rate": "\(config.recordsPerSecond == 0 ? "unlimited" : String(config.recordsPerSecond))",
        ])
        let status = WorkerStatus(worker: "collatz-producer")
        let worker = CollatzProducerWorker(configuration: config, publisher: publisher, logger: logger, status: status)
        try await runServices(worker: worker, metrics: metrics, status: status, logger: logger)
    }
}

struct ClickHouseSinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clickhouse-sink",
        abstract: "Consume Collatz step records (consumer group) and batch them into ClickHouse; at-least-once, duplicate-tolerant.")

    @OptionGroup var common: WorkerCommonOptions
    @OptionGroup var clickHouse: ClickHouseOptions

    @Option(help: "Consumer group (env SINK_GROUP; default collatz-sink).")
    var group: String?
    @Option(name: .customLong("batch-rows"), help: "Flush at this many rows (env SINK_BATCH_ROWS; default 100000).")
    var batchRows: String?
    @Option(name: .customLong("flush-interval-ms"), help: "... or after this long (env SINK_FLUSH_INTERVAL_MS; default 1000).")
    var flushIntervalMs: String?
    @Option(name: .customLong("dead-letter-topic"), help: "Where unparsable records go (env SINK_DEAD_LETTER_TOPIC; default conjecture.data.dead-letter).")
    var deadLetterTopic: String?
    @Option(name: .customLong("insert-format"), help: "RowBinary or TabSeparated (default RowBinary).")
    var insertFormat: String = "RowBinary"
    @Option(name: .customLong("session-timeout-ms"), help: "Consumer group session timeout (default 45000).")
    var sessionTimeoutMs: Int = 45_000

    func run() async throws {
        let logger = common.bootstrapLogging(label: "petrel.clickhouse-sink")
        let settings = SettingResolver(logger: logger)
        var config = ClickHouseSinkConfiguration()
        config.topic = common.topicName(settings)
        config.batchRows = try settings.parse(batchRows, flagName: "batch-rows", env: "SINK_BATCH_ROWS", default: 100_000,
                                              expected: "an integer 1...10000000") { Int($0).flatMap { (1...10_000_000).contains($0) ? $0 : nil } }
        let ms = try settings.parse(flushIntervalMs, flagName: "flush-interval-ms", env: "SINK_FLUSH_INTERVAL_MS", default: 1000,
                                    expected: "an integer 1...3600000") { Int($0).flatMap { (1...3_600_000).contains($0) ? $0 : nil } }
        config.flushInterval = .milliseconds(ms)
        config.deadLetterTopic = settings.string(deadLetterTopic, flagName: "dead-letter-topic", env: "SINK_DEAD_LETTER_TOPIC",
                                                 default: "conjecture.data.dead-letter")
        let groupId = settings.string(group, flagName: "group", env: "SINK_GROUP", default: "collatz-sink")
        guard let format = ClickHouseInsertFormat.allCases.first(where: { $0.rawValue.lowercased() == insertFormat.lowercased() }) else {
            logger.critical("refusing to start: --insert-format \(insertFormat.debugDescription): expected RowBinary or TabSeparated")
            throw ExitCode(2)
        }
        let (chConfig, schema) = try clickHouse.configuration(settings)
        let servers = try common.servers(settings)
        let metrics = try settings.listener(common.metricsListener, env: "PETREL_METRICS_LISTENER")

        var clientConfig = ClientConfiguration(bootstrapServers: servers)
        clientConfig.clientId = "petrel-clickhouse-sink"
        var consumerConfig = ConsumerConfiguration(groupId: groupId)
        consumerConfig.autoOffsetReset = .earliest
        guard (1_000...3_600_000).contains(sessionTimeoutMs) else {
            logger.critical("refusing to start: --session-timeout-ms \(sessionTimeoutMs): expected 1000...3600000")
            throw ExitCode(2)
        }
        consumerConfig.sessionTimeoutMs = sessionTimeoutMs
        consumerConfig.heartbeatIntervalMs = Swift.min(3_000, sessionTimeoutMs / 3)
        let source = KafkaRecordSource(client: KafkaClient(clientConfig, logger: logger), topics: [config.topic],
                                       configuration: consumerConfig, logger: logger)
        let deadLetters: KafkaRecordPublisher
        do {
            deadLetters = try KafkaRecordPublisher(client: KafkaClient(clientConfig, logger: logger), logger: logger)
        } catch {
            logger.critical("cannot start the dead-letter producer: \(error)")
            throw ExitCode(1)
        }
        let inserter = ClickHouseInserter(client: ClickHouseClient(configuration: chConfig), schema: schema, format: format, logger: logger)
        logger.info("clickhouse-sink: starting", metadata: [
            "bootstrap": "\(servers.joined(separator: ","))", "topic": "\(config.topic)", "group": "\(groupId)",
            "clickhouse": "\(chConfig.url)", "database": "\(schema.database)", "batch_rows": "\(config.batchRows)",
            "flush_interval_ms": "\(ms)", "format": "\(format.rawValue)",
        ])
        let status = WorkerStatus(worker: "clickhouse-sink")
        let worker = ClickHouseSinkWorker(configuration: config, source: source, deadLetters: deadLetters,
                                          inserter: inserter, logger: logger, status: status)
        try await runServices(worker: worker, metrics: metrics, status: status, logger: logger)
    }
}

struct AnswersAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Serve the Collatz answers over HTTP: /longest_step_chain, /highest_value, /part/{x}, /plot/{n}, /docs.")

    @OptionGroup var clickHouse: ClickHouseOptions

    @Option(help: "Address to listen on (env API_HOST; default 127.0.0.1).")
    var host: String?
    @Option(help: "Port (env API_PORT; default 8000).")
    var port: String?
    @Option(name: .customLong("log-level"), help: "Log level (env PETREL_LOG_LEVEL; default info).")
    var logLevel: String?
    @Option(name: .customLong("swagger-ui-dir"),
            help: "Serve /docs with Swagger UI's swagger-ui.css and swagger-ui-bundle.js from this directory instead of the unpkg CDN, for browsers without internet access (env API_SWAGGER_UI_DIR; default: CDN).")
    var swaggerUIDir: String?

    func run() async throws {
        var common = WorkerCommonOptions()
        common.logLevel = logLevel
        let logger = common.bootstrapLogging(label: "petrel.api")
        let settings = SettingResolver(logger: logger)
        let host = settings.string(host, flagName: "host", env: "API_HOST", default: "127.0.0.1")
        let port = try settings.parse(port, flagName: "port", env: "API_PORT", default: 8000, expected: "a port 0...65535") {
            Int($0).flatMap { (0...65535).contains($0) ? $0 : nil }
        }
        let swaggerUI = settings.string(swaggerUIDir, flagName: "swagger-ui-dir", env: "API_SWAGGER_UI_DIR", default: "")
        if !swaggerUI.isEmpty {
            let missing = SwaggerUIAssets.missing(in: swaggerUI)
            guard missing.isEmpty else {
                let source = swaggerUIDir != nil ? "--swagger-ui-dir" : "API_SWAGGER_UI_DIR"
                logger.critical("refusing to start: \(source)=\(swaggerUI.debugDescription) lacks \(missing.joined(separator: ", ")) (a swagger-ui-dist folder, e.g. python3 -c 'import swagger_ui_bundle; print(swagger_ui_bundle.swagger_ui_path)')")
                throw ExitCode(2)
            }
        }
        let (chConfig, schema) = try clickHouse.configuration(settings)
        let client = ClickHouseClient(configuration: chConfig)
        let store = ClickHouseAnswersStore(client: client, schema: schema)
        // Best effort: the tables may not exist before the sink's first start.
        do {
            try await schema.create(on: client)
        } catch {
            logger.notice("api: could not create the ClickHouse tables (the sink will): \(error)")
        }
        let app = AnswersApplication.makeApplication(
            store: store, configuration: AnswersAPIConfiguration(host: host, port: port, swaggerUIDirectory: swaggerUI.isEmpty ? nil : swaggerUI),
            logger: logger)
        logger.info("api: listening", metadata: ["url": "http://\(host):\(port)/", "docs": "http://\(host):\(port)/docs",
                                                  "swagger_ui": "\(swaggerUI.isEmpty ? "CDN" : swaggerUI)",
                                                  "clickhouse": "\(chConfig.url)", "database": "\(schema.database)"])
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
