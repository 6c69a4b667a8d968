import ArgumentParser
import Broker
import Foundation
import Logging

/// `petrel broker`: runs one Kafka-compatible broker until SIGTERM/SIGINT.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run a Petrel broker (Kafka's config keys: --config server.properties, --override key=value, KAFKA_*/PETREL_* env).")

    @Option(name: .long, help: "A Kafka server.properties file.")
    var config: String?

    @Option(name: .customLong("override"), help: "key=value, overriding the file and the environment (repeatable).")
    var overrides: [String] = []

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["PETREL_LOG_LEVEL"] ?? "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "petrel.broker")
        logger.logLevel = level
        let loaded: (config: BrokerConfig, warnings: [String])
        do {
            loaded = try BrokerConfig.load(
                propertiesFile: config, overrides: overrides, environment: ProcessInfo.processInfo.environment,
                ignoringEnvironment: ["PETREL_LOG_LEVEL"])
        } catch {
            logger.critical("refusing to start: \(error)")
            throw ExitCode(2)
        }
        for warning in loaded.warnings { logger.warning("\(warning)") }
        logger[metadataKey: "node"] = "\(loaded.config.nodeID)"

        let broker: PetrelBroker
        do {
            broker = try await PetrelBroker.start(config: loaded.config, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        await ShutdownSignal.wait()
        await broker.shutdown()
    }
}

/// Waits for SIGTERM or SIGINT.
enum ShutdownSignal {
    static func wait() async {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let queue = DispatchQueue(label: "petrel.signals")
            let once = OnceFlag()
            var sources = [DispatchSourceSignal]()
            for sig in [SIGTERM, SIGINT] {
                let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                source.setEventHandler {
                    if once.fire() { continuation.resume() }
                }
                source.resume()
                sources.append(source)
            }
            SignalSources.keep(sources)
        }
    }
}

final class OnceFlag: @unchecked Sendable {
    private var fired = false
    private let lock = NSLock()
    func fire() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if fired { return false }
        fired = true
        return true
    }
}

enum SignalSources {
    nonisolated(unsafe) static var kept: [DispatchSourceSignal] = []
    static func keep(_ sources: [DispatchSourceSignal]) { kept = sources }
}
