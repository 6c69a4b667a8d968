import Foundation
import ProtocolGenKit
import Testing

/// The committed generated Swift must be exactly what ProtocolGen makes from Kafka's specs today.
@Suite("Generated code matches the specs")
struct GeneratedCodeDriftTests {
    @Test(
        "regenerating from ../shared/kafka-protocol reproduces the committed files",
        .enabled(if: TestEnvironment.available(TestEnvironment.specRoot != nil, "Kafka specs not found at ../shared/kafka-protocol or PETREL_KAFKA_SPECS"))
    )
    func noDrift() throws {
        let specRoot = try #require(TestEnvironment.specRoot, "Kafka specs are required in CI: ../shared/kafka-protocol")
        let files = try Generator.generate(specRoot: specRoot)
        let root = TestEnvironment.packageRoot
        var problems = [String]()
        for (path, text) in files.sorted(by: { $0.key < $1.key }) {
            let committed = try? String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
            if committed == nil {
                problems.append("missing: \(path)")
            } else if committed != text {
                problems.append("differs: \(path)")
            }
        }
        for dir in [Generator.sourceDirectory, Generator.testDirectory] {
            let base = root.appendingPathComponent(dir)
            let enumerator = FileManager.default.enumerator(atPath: base.path)
            while let entry = enumerator?.nextObject() as? String {
                guard entry.hasSuffix(".swift") else { continue }
                if files["\(dir)/\(entry)"] == nil { problems.append("stale: \(dir)/\(entry)") }
            }
        }
        #expect(problems.isEmpty, "run `swift run protocol-gen` and commit the result:\n\(problems.prefix(20).joined(separator: "\n"))")
        #expect(files.count > 250)
    }

    @Test("comments are stripped outside strings only")
    func commentStripping() {
        let text = "{ // comment\n \"about\": \"see http://kafka.apache.org\" // tail\n}"
        let stripped = SpecLoader.stripComments(text)
        #expect(stripped.contains("http://kafka.apache.org"))
        #expect(!stripped.contains("comment"))
        #expect(!stripped.contains("tail"))
    }

    @Test("version ranges parse as the specs write them")
    func versionRanges() throws {
        #expect(try VersionRange(parsing: "3+") == VersionRange(low: 3, high: Int(Int16.max)))
        #expect(try VersionRange(parsing: "1-4") == VersionRange(low: 1, high: 4))
        #expect(try VersionRange(parsing: "7") == VersionRange(low: 7, high: 7))
        #expect(try VersionRange(parsing: "none").isEmpty)
        #expect(throws: SpecError.self) { try VersionRange(parsing: "x+") }
    }
}
