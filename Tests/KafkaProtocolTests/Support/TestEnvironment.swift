import Foundation

/// Where the tests find things outside the package, and whether a missing one may skip a test.
///
/// `PETREL_CI=1` (set by `.ci/run` and `scripts/test`) turns every "skipped: X is missing" into a
/// failure, so CI can never pass by silently skipping.
enum TestEnvironment {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // KafkaProtocolTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static let requireEverything: Bool = ProcessInfo.processInfo.environment["PETREL_CI"] == "1"

    /// Apache Kafka's JSON specs: `PETREL_KAFKA_SPECS`, or `../shared/kafka-protocol` beside the checkout.
    static let specRoot: URL? = {
        let candidates = [
            ProcessInfo.processInfo.environment["PETREL_KAFKA_SPECS"].map { URL(fileURLWithPath: $0) },
            packageRoot.deletingLastPathComponent().appendingPathComponent("shared/kafka-protocol"),
        ].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("messages").path) }
    }()

    static let fixturesRoot: URL = packageRoot.appendingPathComponent("protocol-fixtures")

    /// Enabled when the resource exists, or when CI demands it (so that the test fails instead).
    static func available(_ present: Bool, _ what: String) -> Bool {
        if !present {
            print("SKIP: \(what) (set PETREL_CI=1 to make this a failure)")
        }
        return present || requireEverything
    }
}
