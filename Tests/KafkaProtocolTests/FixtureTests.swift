import Foundation
import KafkaProtocol
import NIOCore
import Testing

/// Real bytes from real clients (kcat/librdkafka, confluent-kafka, kafka-python, aiokafka) and a
/// real broker (Tansu 0.6.0), recorded by `scripts/fixtures/record_all.sh`. Each frame must
/// decode completely and re-encode byte for byte.
@Suite("Fixtures from real Kafka clients")
struct FixtureTests {
    struct Fixture: CustomStringConvertible {
        var file: String
        var client: String
        var apiKey: ApiKey
        var apiVersion: Int16
        var isRequest: Bool
        var detail: String
        var bytes: ByteBuffer

        var description: String { file }
    }

    static let indexURL = TestEnvironment.fixturesRoot.appendingPathComponent("index.tsv")
    static let present = FileManager.default.fileExists(atPath: indexURL.path)

    static func load() throws -> [Fixture] {
        let text = try String(contentsOf: indexURL, encoding: .utf8)
        var fixtures = [Fixture]()
        for line in text.split(separator: "\n").dropFirst() {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count >= 7, let key = Int16(columns[3]), let apiKey = ApiKey(rawValue: key),
                  let version = Int16(columns[4]) else {
                Issue.record("bad index line: \(line)")
                continue
            }
            let url = TestEnvironment.fixturesRoot.appendingPathComponent(columns[0])
            let data = try Data(contentsOf: url)
            fixtures.append(Fixture(
                file: columns[0], client: columns[1], apiKey: apiKey, apiVersion: version,
                isRequest: columns[5] == "request", detail: columns[6], bytes: ByteBuffer(bytes: data)))
        }
        return fixtures
    }

    @Test("every recorded frame decodes completely and re-encodes byte for byte",
          .enabled(if: TestEnvironment.available(present, "protocol-fixtures/index.tsv is missing")))
    func decodeAndReencode() throws {
        let fixtures = try Self.load()
        #expect(fixtures.count >= 200)
        var exact = 0
        var defaultTaggedFields = 0
        for f in fixtures {
            var wire = f.bytes
            guard var frame = try KafkaFrames.readFrame(from: &wire) else {
                Issue.record("\(f): incomplete frame")
                continue
            }
            #expect(wire.readableBytes == 0, "\(f): bytes after the frame")
            var out = ByteBuffer()
            out.writeInteger(Int32(0))
            if f.isRequest {
                let request: RequestFrame
                do { request = try KafkaFrames.decodeRequest(&frame) } catch {
                    Issue.record("\(f): \(error)")
                    continue
                }
                #expect(request.apiKey == f.apiKey && request.apiVersion == f.apiVersion, "\(f)")
                #expect(frame.readableBytes == 0, "\(f): \(frame.readableBytes) bytes not consumed")
                try request.header.encode(into: &out, version: f.apiKey.requestHeaderVersion(for: f.apiVersion))
                try request.body.encode(into: &out, version: f.apiVersion)
            } else {
                // An ApiVersions error answer to a too-new request is a v0 body (KIP-511).
                let bodyVersion: Int16 = f.detail.contains("version-downgrade") ? 0 : f.apiVersion
                let header = try ResponseHeader(from: &frame, version: f.apiKey.responseHeaderVersion(for: f.apiVersion))
                let body: KafkaResponse
                do { body = try KafkaResponse.decode(apiKey: f.apiKey, version: bodyVersion, from: &frame) } catch {
                    Issue.record("\(f): \(error)")
                    continue
                }
                #expect(frame.readableBytes == 0, "\(f): \(frame.readableBytes) bytes not consumed")
                try header.encode(into: &out, version: f.apiKey.responseHeaderVersion(for: f.apiVersion))
                try body.encode(into: &out, version: bodyVersion)
                out.setInteger(Int32(out.readableBytes - 4), at: out.readerIndex)
                if out != f.bytes {
                    // Tansu writes tagged fields even when they hold their default value; Kafka
                    // (and Petrel) omit those, so such a response re-encodes shorter. It must
                    // still carry exactly the same values.
                    var again = out
                    again.moveReaderIndex(forwardBy: 4)
                    _ = try ResponseHeader(from: &again, version: f.apiKey.responseHeaderVersion(for: f.apiVersion))
                    let reread = try KafkaResponse.decode(apiKey: f.apiKey, version: bodyVersion, from: &again)
                    #expect(reread == body && out.readableBytes < f.bytes.readableBytes, "\(f): re-encoded bytes differ")
                    defaultTaggedFields += 1
                    continue
                }
            }
            out.setInteger(Int32(out.readableBytes - 4), at: out.readerIndex)
            if out == f.bytes { exact += 1 } else { Issue.record("\(f): re-encoded bytes differ") }
        }
        print("fixtures: \(fixtures.count) frames decoded completely, \(exact) re-encoded byte for byte, \(defaultTaggedFields) broker responses equal after dropping default-valued tagged fields")
        #expect(exact >= fixtures.count - 20)
    }

    @Test("the fixtures cover the APIs the issue names, from every client",
          .enabled(if: TestEnvironment.available(present, "protocol-fixtures/index.tsv is missing")))
    func coverage() throws {
        let fixtures = try Self.load()
        let required: [ApiKey] = [
            .apiVersions, .metadata, .produce, .fetch, .listOffsets, .findCoordinator, .joinGroup, .syncGroup,
            .heartbeat, .offsetCommit, .offsetFetch, .leaveGroup, .createTopics, .describeConfigs, .initProducerId,
        ]
        for api in required {
            #expect(fixtures.contains { $0.apiKey == api && $0.isRequest }, "no request fixture for \(api)")
            #expect(fixtures.contains { $0.apiKey == api && !$0.isRequest }, "no response fixture for \(api)")
        }
        for client in ["kcat", "confluent-kafka", "kafka-python", "aiokafka"] {
            #expect(fixtures.filter { $0.client == client }.count >= 20, "few fixtures from \(client)")
        }
        #expect(fixtures.contains { $0.apiKey == .produce && $0.detail.contains("gzip") })
        #expect(fixtures.contains { $0.apiKey == .produce && $0.detail.contains("uncompressed") })
    }
}
