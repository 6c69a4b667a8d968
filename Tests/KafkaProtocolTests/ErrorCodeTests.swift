import KafkaProtocol
import NIOCore
import Testing

@Suite("Error codes and error responses")
struct ErrorCodeTests {
    @Test("error codes carry Kafka's names, numbers and retriability")
    func codes() {
        #expect(KafkaErrorCode(rawValue: 35) == .unsupportedVersion)
        #expect(KafkaErrorCode.unsupportedVersion.name == "UNSUPPORTED_VERSION")
        #expect(KafkaErrorCode.notLeaderOrFollower.rawValue == 6)
        #expect(KafkaErrorCode.notLeaderOrFollower.isRetriable)
        #expect(!KafkaErrorCode.topicAlreadyExists.isRetriable)
        #expect(KafkaErrorCode.unknownServerError.rawValue == -1)
        #expect(KafkaErrorCode.allCases.count > 120)
        #expect(Set(KafkaErrorCode.allCases.map(\.rawValue)).count == KafkaErrorCode.allCases.count)
    }

    @Test("every API's error response encodes at every version")
    func errorResponsesEncode() throws {
        for api in ApiKey.allCases {
            for version in api.validVersions {
                let response = KafkaResponse.errorResponse(apiKey: api, version: version, errorCode: KafkaErrorCode.unsupportedVersion.rawValue)
                #expect(response.apiKey == api)
                var buffer = ByteBuffer()
                try response.encode(into: &buffer, version: version)
                let decoded = try KafkaResponse.decode(apiKey: api, version: version, from: &buffer)
                #expect(buffer.readableBytes == 0)
                #expect(decoded.apiKey == api)
            }
        }
        guard case .apiVersions(let r) = KafkaResponse.errorResponse(apiKey: .apiVersions, version: 3, errorCode: 35) else {
            Issue.record("wrong case")
            return
        }
        #expect(r.errorCode == 35)
    }
}
