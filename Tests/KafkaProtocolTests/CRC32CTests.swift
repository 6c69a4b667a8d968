import KafkaProtocol
import NIOCore
import PropertyBased
import Testing

@Suite("CRC-32C")
struct CRC32CTests {
    /// Deterministic bytes for reproducible tests.
    static func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        var bytes = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        return bytes
    }

    @Test("check value of \"123456789\"")
    func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum(ByteBuffer(string: "123456789")) == 0xE306_9283)
        #expect(CRC32C.softwareChecksum(ByteBuffer(string: "123456789")) == 0xE306_9283)
    }

    @Test("RFC 3720 (iSCSI) test vectors")
    func rfc3720Vectors() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
    }

    @Test("empty input leaves the CRC unchanged")
    func empty() {
        #expect(CRC32C.checksum(ByteBuffer()) == 0)
        #expect(CRC32C.update(0x1234_5678, ByteBuffer()) == 0x1234_5678)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test("hardware and software agree on every length and alignment")
    func hardwareMatchesSoftware() {
        let bytes = Self.pseudoRandomBytes(count: (1 << 20) + 64, seed: 42)
        var lengths = Array(0...1100)
        // Around the interleaving block sizes (3 x 256 and 3 x 8192) and beyond.
        for edge in [768, 3 * 8192, 2 * 3 * 8192, 1 << 20] {
            lengths += (edge - 9)...(edge + 9)
        }
        lengths += [100_003, 500_000]
        bytes.withUnsafeBytes { raw in
            for length in lengths {
                for alignment in [0, 1, 3, 7, 8, 13] where alignment + length <= raw.count {
                    let slice = UnsafeRawBufferPointer(rebasing: raw[alignment..<(alignment + length)])
                    let seed = UInt32(truncatingIfNeeded: length &* 2_654_435_761)
                    let fast = CRC32C.update(seed, bytes: slice)
                    let slow = CRC32C.softwareUpdate(seed, bytes: slice)
                    if fast != slow {
                        Issue.record("length \(length), alignment \(alignment): \(fast) != \(slow)")
                        return
                    }
                }
            }
        }
    }

    @Test("the hardware path is used on x86-64 CPUs with SSE4.2")
    func reportsHardware() {
        #if arch(x86_64)
        // Every x86-64 CPU since 2008 has SSE4.2; a CI machine without it would be remarkable.
        #expect(CRC32C.isHardwareAccelerated)
        #endif
    }

    @Test("ByteBuffer checksums cover the readable bytes only")
    func byteBufferReadableBytes() {
        var buffer = ByteBuffer(string: "xx123456789yy")
        buffer.moveReaderIndex(forwardBy: 2)
        buffer.moveWriterIndex(to: buffer.writerIndex - 2)
        #expect(CRC32C.checksum(buffer) == 0xE306_9283)
        #expect(CRC32C.checksum(buffer, at: 2, length: 9) == 0xE306_9283)
        #expect(CRC32C.checksum(buffer, at: 3, length: 9) == nil)
        #expect(CRC32C.checksum(buffer, at: 1, length: 3) == nil)
        #expect(CRC32C.checksum(buffer, at: 2, length: -1) == nil)
        #expect(CRC32C.checksum(buffer, at: 11, length: 0) == 0)
        let slice = buffer.getSlice(at: 2, length: 9)!
        #expect(CRC32C.checksum(slice) == 0xE306_9283)
    }

    @Test("extending a CRC equals the CRC of the concatenation; combine agrees")
    func extendAndCombine() async {
        await propertyCheck(input: Gen<UInt8>.value().array(of: 0...3000), Gen.int(in: 0...3000)) { bytes, cut in
            let split = min(cut, bytes.count)
            let a = Array(bytes[..<split])
            let b = Array(bytes[split...])
            let whole = CRC32C.checksum(bytes)
            let crcA = CRC32C.checksum(a)
            let extended = b.withUnsafeBytes { CRC32C.update(crcA, bytes: $0) }
            #expect(extended == whole)
            #expect(CRC32C.combine(crcA, CRC32C.checksum(b), lengthB: b.count) == whole)
            let slow = bytes.withUnsafeBytes { CRC32C.softwareUpdate(0, bytes: $0) }
            #expect(slow == whole)
        }
    }

    @Test("a flipped bit changes the CRC")
    func detectsBitFlips() async {
        await propertyCheck(input: Gen<UInt8>.value().array(of: 1...2000), Gen.int(in: 0...Int.max)) { bytes, pick in
            var corrupted = bytes
            let bit = pick % (bytes.count * 8)
            corrupted[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
            #expect(CRC32C.checksum(corrupted) != CRC32C.checksum(bytes))
        }
    }
}
