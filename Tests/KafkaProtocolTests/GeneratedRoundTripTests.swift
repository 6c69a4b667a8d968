import KafkaProtocol
import NIOCore
import PropertyBased
import Testing

/// Encodes a random instance at `version`, decodes it, and checks the decode is exact, every byte
/// was consumed, and re-encoding gives the same bytes. Returns a failure description or nil.
func typedRoundTripFailure<M: ArbitraryMessage>(_: M.Type, version: Int16, seed: UInt64) -> String? {
    var random = SplitMix64(seed: seed)
    let message = M.arbitrary(version: version, using: &random)
    var buffer = ByteBuffer()
    do {
        try message.encode(into: &buffer, version: version)
    } catch {
        return "\(M.messageName) v\(version) seed \(seed): encode threw \(error)"
    }
    let encoded = buffer
    let decoded: M
    do {
        decoded = try M(from: &buffer, version: version)
    } catch {
        return "\(M.messageName) v\(version) seed \(seed): decode threw \(error)"
    }
    if buffer.readableBytes != 0 {
        return "\(M.messageName) v\(version) seed \(seed): \(buffer.readableBytes) bytes left after decode"
    }
    if decoded != message {
        return "\(M.messageName) v\(version) seed \(seed): decoded value differs\n  sent: \(message)\n  got:  \(decoded)"
    }
    var again = ByteBuffer()
    do {
        try decoded.encode(into: &again, version: version)
    } catch {
        return "\(M.messageName) v\(version) seed \(seed): re-encode threw \(error)"
    }
    if again != encoded {
        return "\(M.messageName) v\(version) seed \(seed): re-encoded bytes differ"
    }
    return nil
}

func roundTripFailure(_ type: any ArbitraryMessage.Type, version: Int16, seed: UInt64) -> String? {
    return typedRoundTripFailure(type, version: version, seed: seed)
}

@Suite("Generated codec round trips")
struct GeneratedRoundTripTests {
    @Test("every message, header and record type at every valid version")
    func everyMessageEveryVersion() {
        var failures = [String]()
        var checked = 0
        for type in allGeneratedMessageTypes {
            for version in type.validVersions {
                for seed in 0..<UInt64(12) {
                    checked += 1
                    if let failure = roundTripFailure(type, version: version, seed: seed &* 7919 &+ UInt64(version)) {
                        failures.append(failure)
                    }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(checked) round trips failed:\n\(failures.prefix(5).joined(separator: "\n"))")
        #expect(allGeneratedMessageTypes.count >= 244)
    }

    @Test("property: random type, version and seed round-trips exactly")
    func propertyRoundTrip() async {
        let types = allGeneratedMessageTypes
        await propertyCheck(
            count: 2000,
            input: Gen.int(in: 0...(types.count - 1)), Gen.int(in: 0...100), Gen.uint64()
        ) { index, versionPick, seed in
            let type = types[index]
            let range = type.validVersions
            let version = range.lowerBound + Int16(versionPick % range.count)
            let failure = roundTripFailure(type, version: version, seed: seed)
            #expect(failure == nil, "\(failure ?? "")")
        }
    }

    @Test("every API has a request and a response at the same versions")
    func apiTable() {
        for api in ApiKey.allCases {
            #expect(api.requestType.validVersions == api.validVersions, "\(api)")
            #expect(api.responseType.validVersions == api.validVersions, "\(api)")
            #expect(api.requestType.apiKey == api)
            #expect(api.responseType.apiKey == api)
        }
        #expect(ApiKey.allCases.count == 88)
        #expect(ApiKey.produce.rawValue == 0 && ApiKey.fetch.rawValue == 1 && ApiKey.apiVersions.rawValue == 18)
    }
}
