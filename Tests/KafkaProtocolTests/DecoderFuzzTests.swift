import Foundation
import KafkaProtocol
import NIOCore
import Testing

/// Hostile input: random and mutated frames go through the request decoder. Every one must end
/// in a decoded request or a `KafkaProtocolError`, never a trap or a hang. A crash here kills the
/// test process, which fails the run.
@Suite("Decoder fuzzing")
struct DecoderFuzzTests {
    static let iterations: Int = {
        ProcessInfo.processInfo.environment["PETREL_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 300_000
    }()

    /// Valid request frames (no size prefix) for every request type and version: the corpus.
    static func corpus() -> [ByteBuffer] {
        var random = SplitMix64(seed: 0xF022)
        var frames = [ByteBuffer]()
        for type in allGeneratedMessageTypes {
            guard let requestType = type as? any (KafkaRequestMessage & ArbitraryMessage).Type else { continue }
            for version in requestType.validVersions {
                if let frame = encodeFrame(requestType, version: version, random: &random) { frames.append(frame) }
            }
        }
        return frames
    }

    static func encodeFrame<M: KafkaRequestMessage & ArbitraryMessage>(_: M.Type, version: Int16, random: inout SplitMix64) -> ByteBuffer? {
        let message = M.arbitrary(version: version, using: &random)
        var buffer = ByteBuffer()
        guard (try? KafkaFrames.encodeRequest(message, version: version, correlationId: 1, clientId: "fuzz", into: &buffer)) != nil else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer
    }

    static func mutate(_ input: ByteBuffer, random: inout SplitMix64) -> ByteBuffer {
        var bytes = Array(input.readableBytesView)
        let edits = 1 + Int(random.next() % 4)
        for _ in 0..<edits {
            guard !bytes.isEmpty else { break }
            let at = Int(random.next() % UInt64(bytes.count))
            switch random.next() % 7 {
            case 0: bytes[at] ^= UInt8(1 << (random.next() % 8))
            case 1: bytes[at] = UInt8(truncatingIfNeeded: random.next())
            case 2: bytes.removeSubrange(at...)  // truncate
            case 3: bytes.insert(contentsOf: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F], at: at)  // huge varint / -1 lengths
            case 4: bytes.insert(contentsOf: [0x7F, 0xFF, 0xFF, 0xFF], at: at)  // huge int32 length
            case 5: bytes.remove(at: at)
            default: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: at)
            }
        }
        return ByteBuffer(bytes: bytes)
    }

    @Test("random and mutated frames never trap the request decoder")
    func fuzzRequestDecoder() {
        let corpus = Self.corpus()
        #expect(corpus.count > 300)
        var random = SplitMix64(seed: 0x5EED)
        var decoded = 0
        var rejected = 0
        for i in 0..<Self.iterations {
            var frame: ByteBuffer
            if i % 10 == 0 {
                // Pure garbage behind a plausible header prefix.
                var bytes = [UInt8]()
                let api = Int16(random.next() % 90)
                let version = Int16(random.next() % 20)
                bytes += [UInt8(api >> 8), UInt8(truncatingIfNeeded: api), UInt8(version >> 8), UInt8(truncatingIfNeeded: version)]
                for _ in 0..<(random.next() % 64) { bytes.append(UInt8(truncatingIfNeeded: random.next())) }
                frame = ByteBuffer(bytes: bytes)
            } else {
                frame = Self.mutate(corpus[Int(random.next() % UInt64(corpus.count))], random: &random)
            }
            do {
                let request = try KafkaFrames.decodeRequest(&frame)
                decoded += 1
                // Whatever decoded must encode again without trapping.
                var out = ByteBuffer()
                _ = try? request.body.encode(into: &out, version: request.apiVersion)
            } catch {
                rejected += 1
            }
        }
        #expect(decoded + rejected == Self.iterations)
        #expect(rejected > Self.iterations / 10, "the mutations should break most frames")
        print("fuzz: \(Self.iterations) frames, \(decoded) decoded, \(rejected) rejected with a typed error")
    }

    @Test("every truncation of every valid request frame throws instead of trapping")
    func everyTruncation() {
        var truncations = 0
        for frame in Self.corpus().prefix(400) {
            for length in 0..<frame.readableBytes {
                var cut = frame.getSlice(at: frame.readerIndex, length: length)!
                // A prefix can decode only if the removed tail was empty tagged fields / trailing data.
                _ = try? KafkaFrames.decodeRequest(&cut)
                truncations += 1
            }
        }
        #expect(truncations > 1000)
    }

    @Test("an array count larger than the frame is refused before allocating")
    func hugeArrayCount() {
        // Metadata v1: header (key 3, version 1, correlation 1, client id null) then topics count 2^31-1.
        var frame = ByteBuffer(bytes: [0, 3, 0, 1, 0, 0, 0, 1, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF])
        #expect(throws: KafkaProtocolError.self) { try KafkaFrames.decodeRequest(&frame) }
        // Metadata v12 (flexible): compact count as a 5-byte varint.
        var flexible = ByteBuffer(bytes: [0, 3, 0, 12, 0, 0, 0, 1, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(throws: KafkaProtocolError.self) { try KafkaFrames.decodeRequest(&flexible) }
        // An over-long varint.
        var overlong = ByteBuffer(bytes: [0, 3, 0, 12, 0, 0, 0, 1, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(throws: KafkaProtocolError.varintTooLong) { try KafkaFrames.decodeRequest(&overlong) }
    }
}
