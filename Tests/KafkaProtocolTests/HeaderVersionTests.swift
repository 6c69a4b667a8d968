import KafkaProtocol
import NIOCore
import Testing

@Suite("Request and response headers")
struct HeaderVersionTests {
    @Test("header versions follow each API's flexible versions")
    func derivedFromFlexibleVersions() {
        #expect(ApiKey.produce.requestHeaderVersion(for: 8) == 1)
        #expect(ApiKey.produce.requestHeaderVersion(for: 9) == 2)
        #expect(ApiKey.produce.responseHeaderVersion(for: 8) == 0)
        #expect(ApiKey.produce.responseHeaderVersion(for: 9) == 1)
        #expect(ApiKey.metadata.requestHeaderVersion(for: 9) == 2)
        #expect(ApiKey.metadata.requestHeaderVersion(for: 8) == 1)
        for api in ApiKey.allCases where api != .apiVersions && api != .controlledShutdown {
            for version in api.validVersions {
                let flexible = api.firstFlexibleVersion.map { version >= $0 } ?? false
                #expect(api.requestHeaderVersion(for: version) == (flexible ? 2 : 1), "\(api) v\(version)")
                #expect(api.responseHeaderVersion(for: version) == (flexible ? 1 : 0), "\(api) v\(version)")
            }
        }
    }

    @Test("exception: the ApiVersions response header is never flexible")
    func apiVersionsResponseHeader() throws {
        #expect(ApiKey.apiVersions.requestHeaderVersion(for: 3) == 2)
        for version in ApiKey.apiVersions.validVersions {
            #expect(ApiKey.apiVersions.responseHeaderVersion(for: version) == 0)
        }
        var response = ApiVersionsResponse()
        response.apiKeys = [.init(apiKey: 0, minVersion: 0, maxVersion: 11)]
        var frame = ByteBuffer()
        try KafkaFrames.encodeResponse(response, version: 3, correlationId: 7, into: &frame)
        // size(4) correlationId(4) then straight into the body: no tagged-field byte in the header.
        #expect(frame.getInteger(at: 4, as: Int32.self) == 7)
        #expect(frame.getInteger(at: 8, as: Int16.self) == 0)  // errorCode
        var body = try #require(try KafkaFrames.readFrame(from: &frame))
        let (header, decoded) = try KafkaFrames.decodeResponse(&body, apiKey: .apiVersions, version: 3)
        #expect(header.correlationId == 7)
        #expect(decoded == .apiVersions(response))
        #expect(body.readableBytes == 0)
    }

    @Test("exception: the client id is never a compact string, even in header v2")
    func clientIdNeverCompact() throws {
        var frame = ByteBuffer()
        try KafkaFrames.encodeRequest(ApiVersionsRequest(clientSoftwareName: "petrel", clientSoftwareVersion: "1"),
                                      version: 3, correlationId: 1, clientId: "abc", into: &frame)
        // size(4) key(2) version(2) correlation(4), then int16 length 3 and "abc", then tagged fields (0).
        #expect(frame.getInteger(at: 12, as: Int16.self) == 3)
        #expect(frame.getString(at: 14, length: 3) == "abc")
        #expect(frame.getInteger(at: 17, as: UInt8.self) == 0)
        var body = try #require(try KafkaFrames.readFrame(from: &frame))
        let request = try KafkaFrames.decodeRequest(&body)
        #expect(request.header.clientId == "abc")
        #expect(request.apiKey == .apiVersions)
        #expect(body.readableBytes == 0)
    }

    @Test("a null client id is written as int16 -1")
    func nullClientId() throws {
        var frame = ByteBuffer()
        try KafkaFrames.encodeRequest(MetadataRequest(), version: 12, correlationId: 2, clientId: nil, into: &frame)
        #expect(frame.getInteger(at: 12, as: Int16.self) == -1)
        var body = try #require(try KafkaFrames.readFrame(from: &frame))
        #expect(try KafkaFrames.decodeRequest(&body).header.clientId == nil)
    }

    @Test("frames: incomplete, oversized and negative sizes")
    func frameSplitting() throws {
        var partial = ByteBuffer(bytes: [0, 0, 0, 10, 1, 2])
        #expect(try KafkaFrames.readFrame(from: &partial) == nil)
        #expect(partial.readableBytes == 6)
        var huge = ByteBuffer(bytes: [0x7F, 0, 0, 0])
        #expect(throws: KafkaProtocolError.frameTooLarge(size: 0x7F00_0000, max: KafkaFrames.defaultMaxFrameSize)) {
            try KafkaFrames.readFrame(from: &huge)
        }
        var negative = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFE])
        #expect(throws: KafkaProtocolError.self) { try KafkaFrames.readFrame(from: &negative) }
        var unknown = ByteBuffer(bytes: [0x03, 0xE7, 0, 0, 0, 0, 0, 1])
        #expect(throws: KafkaProtocolError.unknownApiKey(999)) { try KafkaFrames.decodeRequest(&unknown) }
        var badVersion = ByteBuffer(bytes: [0, 0, 0x00, 0x63, 0, 0, 0, 1, 0xFF, 0xFF])
        #expect(throws: KafkaProtocolError.unsupportedVersion(api: "Produce", version: 99)) {
            try KafkaFrames.decodeRequest(&badVersion)
        }
    }

    @Test("a non-default field that a version cannot carry is refused, not silently dropped")
    func unsupportedFieldAtVersion() {
        var request = ProduceRequest()
        request.transactionalId = "txn"
        var buffer = ByteBuffer()
        #expect(throws: KafkaProtocolError.fieldNotSupportedAtVersion(field: "ProduceRequest.transactionalId", version: 2)) {
            try request.encode(into: &buffer, version: 2)
        }
    }
}
