import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real third-party Kafka clients against a real `petrel broker` process:
/// `scripts/interop/run-against.sh petrel` (kcat with librdkafka 2.0.2 and 2.16, kafka-python,
/// confluent-kafka, aiokafka) and `scripts/interop/crash_test.py` (kill -9, restart, no
/// acknowledged write lost).
///
/// Needs kcat (apt) and the Python packages confluent-kafka, kafka-python, aiokafka and pytest.
/// Without them the tests skip and print why, unless `PETREL_CI=1`, where they fail instead.
@Suite("Interop with real Kafka clients", .serialized)
struct InteropTests {
    @Test("kcat, kafka-python, confluent-kafka and aiokafka pass the interop suite against petrel",
          .enabled(if: InteropEnvironment.available(InteropEnvironment.clientsMissing)),
          .timeLimit(.minutes(40)))
    func interopSuite() throws {
        try InteropEnvironment.requirePresent(InteropEnvironment.clientsMissing)
        let run = try InteropEnvironment.run(
            ["bash", "scripts/interop/run-against.sh", "petrel", "-q"], timeout: 2100)
        InteropEnvironment.check(run, name: "run-against-petrel")
    }

    @Test("crash test: kill -9 and restart lose no acknowledged acks=all record",
          .enabled(if: InteropEnvironment.available(InteropEnvironment.clientsMissing)),
          .timeLimit(.minutes(40)))
    func crashTest() throws {
        try InteropEnvironment.requirePresent(InteropEnvironment.clientsMissing)
        let run = try InteropEnvironment.run(
            ["python3", "scripts/interop/crash_test.py", "--timeout", "120"], timeout: 2100)
        InteropEnvironment.check(run, name: "crash-test")
    }

    @Test("the crash test's verifier rejects lost, duplicated, reordered and altered records",
          .enabled(if: InteropEnvironment.available(InteropEnvironment.pythonMissing)))
    func crashVerifierSelfTest() throws {
        try InteropEnvironment.requirePresent(InteropEnvironment.pythonMissing)
        let run = try InteropEnvironment.run(
            ["python3", "scripts/interop/crash_test.py", "--self-test"], timeout: 120)
        InteropEnvironment.check(run, name: "crash-test-self-test")
    }
}

enum InteropEnvironment {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // InteropTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static let environment = ProcessInfo.processInfo.environment
    static let requireEverything: Bool = environment["PETREL_CI"] == "1"

    /// Why python3 is unusable, or nil.
    static let pythonMissing: String? = {
        guard executable(named: "python3") != nil else { return "python3 is not installed" }
        return nil
    }()

    /// Why the interop clients are unusable, or nil when everything is there.
    static let clientsMissing: String? = {
        var missing = [String]()
        if executable(named: "kcat") == nil { missing.append("kcat (apt-get install -y kcat)") }
        if let python = pythonMissing { return python }
        let probe = try? run(["python3", "-c", """
            import importlib.util as u
            mods = ["confluent_kafka", "kafka", "aiokafka", "pytest"]
            print(" ".join(m for m in mods if u.find_spec(m) is None))
            """], timeout: 60)
        let absent = probe?.output.trimmingCharacters(in: .whitespacesAndNewlines) ?? "python3 failed"
        if !absent.isEmpty {
            missing.append("Python packages \(absent) (pip install confluent-kafka kafka-python aiokafka pytest)")
        }
        return missing.isEmpty ? nil : missing.joined(separator: ", ")
    }()

    /// Enabled when nothing is missing, or when CI demands it (so that the test fails instead).
    static func available(_ missing: String?) -> Bool {
        guard let missing else { return true }
        if requireEverything {
            print("PETREL_CI=1: running although \(missing) is missing, so that the test fails")
            return true
        }
        print("SKIP: interop tests need \(missing) (set PETREL_CI=1 to make this a failure)")
        return false
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    /// Under PETREL_CI=1 a test runs even when its tools are missing: fail it with the reason.
    static func requirePresent(_ missing: String?) throws {
        if let missing { throw Missing(description: "missing: \(missing)") }
    }

    static func executable(named name: String) -> String? {
        for dir in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// The `petrel` binary `swift test` built next to this test runner, if there is one.
    /// The scripts use it instead of building (a nested `swift build` on the same scratch path
    /// would wait forever for the lock `swift test` holds).
    static let builtPetrel: String? = {
        let selfExe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        guard let exe = selfExe ?? CommandLine.arguments.first else { return nil }
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<4 {  // Linux: <bin>/X.xctest; macOS: <bin>/X.xctest/Contents/MacOS/X
            let candidate = dir.appendingPathComponent("petrel").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()

    struct Run {
        var command: [String]
        var status: Int32
        var timedOut: Bool
        var output: String
    }

    /// Runs `command` in the package root, stdout and stderr together, killed after `timeout` s.
    static func run(_ command: [String], timeout: TimeInterval) throws -> Run {
        let outURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("petrel-interop-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL) }
        let out = try FileHandle(forWritingTo: outURL)
        defer { try? out.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.currentDirectoryURL = packageRoot
        var env = environment
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if env["PETREL_BIN"] == nil {
            if let builtPetrel {
                env["PETREL_BIN"] = builtPetrel
            } else if env["PETREL_SCRATCH_PATH"] == nil {
                env["PETREL_SCRATCH_PATH"] = packageRoot.appendingPathComponent(".build-interop").path
            }
        }
        process.environment = env
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        try process.run()

        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        // Foundation's Process does not always reap its children when many tests spawn
        // processes in one runner (seen as zombies still reported running): reap ours here too.
        let pid = process.processIdentifier
        var reaped: Int32?
        func reap() -> Bool {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let signal = status & 0x7f
                reaped = signal == 0 ? (status >> 8) & 0xff : 128 + signal
                return true
            }
            return false
        }
        while process.isRunning && reaped == nil {
            if reap() { break }
            if Date() > deadline {
                timedOut = true
                kill(pid, SIGTERM)  // the scripts stop their brokers on SIGTERM
                let grace = Date().addingTimeInterval(15)
                while process.isRunning && reaped == nil && Date() < grace {
                    if reap() { break }
                    Thread.sleep(forTimeInterval: 0.1)
                }
                if process.isRunning && reaped == nil { kill(pid, SIGKILL) }
                let last = Date().addingTimeInterval(5)
                while process.isRunning && reaped == nil && Date() < last {
                    if reap() { break }
                    Thread.sleep(forTimeInterval: 0.1)
                }
                break
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let status = reaped ?? (process.isRunning ? -1 : process.terminationStatus)
        let text = (try? String(contentsOf: outURL, encoding: .utf8)) ?? "(output not readable)"
        return Run(command: command, status: status, timedOut: timedOut, output: text)
    }

    /// Expects exit status 0; on failure attaches the whole output and shows its tail.
    static func check(_ run: Run, name: String) {
        let ok = run.status == 0 && !run.timedOut
        if !ok {
            Attachment.record(run.output, named: "\(name).log")
            let tail = run.output.split(separator: "\n", omittingEmptySubsequences: false).suffix(150)
                .joined(separator: "\n")
            Issue.record("""
                \(run.command.joined(separator: " ")) \(run.timedOut ? "timed out" : "exited \(run.status)")
                --- last 150 lines of output ---
                \(tail)
                """)
        } else {
            print(run.output.split(separator: "\n").suffix(3).joined(separator: "\n"))
        }
    }
}
