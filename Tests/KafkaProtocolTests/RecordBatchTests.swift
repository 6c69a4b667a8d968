import Foundation
import KafkaProtocol
import NIOCore
import PropertyBased
import Testing

// MARK: - Helpers

/// A record as a test describes it, independent of the codec's own types.
private struct SampleRecord: Hashable, Sendable, CustomStringConvertible {
    struct Header: Hashable, Sendable {
        var key: String
        var value: [UInt8]?
    }

    var key: [UInt8]?
    var value: [UInt8]?
    var headers: [Header]
    var timestamp: Int64

    var description: String {
        "SampleRecord(key: \(key.map { "\($0.count) bytes" } ?? "nil"), value: \(value.map { "\($0.count) bytes" } ?? "nil"), headers: \(headers.count), timestamp: \(timestamp))"
    }

    func matches(_ record: Record) -> Bool {
        record.key.map { Array($0.readableBytesView) } == key
            && record.value.map { Array($0.readableBytesView) } == value
            && record.timestamp == timestamp
            && record.headers.map { Header(key: $0.key, value: $0.value.map { Array($0.readableBytesView) }) } == headers
    }
}

extension RecordBatchBuilder {
    fileprivate mutating func append(_ sample: SampleRecord) throws {
        try append(
            key: sample.key.map { ByteBuffer(bytes: $0) },
            value: sample.value.map { ByteBuffer(bytes: $0) },
            headers: sample.headers.map { RecordHeader(key: $0.key, value: $0.value.map { ByteBuffer(bytes: $0) }) },
            timestamp: sample.timestamp)
    }
}

private enum Samples {
    static let header = zip(
        Gen.lowercaseLetter.string(of: 0...12),
        Gen<UInt8>.value().array(of: 0...20).optional(valueRate: 0.8)
    ).map { SampleRecord.Header(key: $0, value: $1) }

    static let record = zip(
        Gen<UInt8>.value().array(of: 0...40).optional(valueRate: 0.7),
        Gen<UInt8>.value().array(of: 0...400).optional(valueRate: 0.9),
        header.array(of: 0...3),
        Gen.int64(in: 1_600_000_000_000...1_900_000_000_000)
    ).map { SampleRecord(key: $0.0, value: $0.1, headers: $0.2, timestamp: $0.3) }

    static let records = record.array(of: 0...25)

    /// A few fixed records: null and empty keys and values, headers with null values, a
    /// timestamp going backwards.
    static let fixed: [SampleRecord] = [
        SampleRecord(key: Array("k".utf8), value: Array("hello".utf8), headers: [], timestamp: 1_700_000_000_000),
        SampleRecord(key: nil, value: nil, headers: [.init(key: "h", value: nil)], timestamp: 1_700_000_000_005),
        SampleRecord(key: [], value: [], headers: [.init(key: "", value: [])], timestamp: 1_699_999_999_000),
        SampleRecord(
            key: Array(repeating: 0xAB, count: 300), value: Array(repeating: 7, count: 5000),
            headers: [.init(key: "trace-id", value: Array("t-1".utf8)), .init(key: "ünïcödé", value: [1, 2, 3])],
            timestamp: 1_700_000_000_001),
    ]

    static func batch(
        _ records: [SampleRecord], compression: CompressionCodec = .none, baseOffset: Int64 = 0
    ) throws -> RecordBatch {
        var builder = RecordBatchBuilder(baseOffset: baseOffset, compression: compression)
        for record in records { try builder.append(record) }
        return try builder.build()
    }
}

/// The hand-made batch of the known-bytes tests, laid out field by field from Kafka's
/// implementation docs (section 5.3). The CRC was computed independently of Petrel, with a
/// bit-at-a-time CRC-32C over bytes 21..<84.
private let knownBatchBytes: [UInt8] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A,  // baseOffset 42
    0x00, 0x00, 0x00, 0x48,  // batchLength 72 (84 - 12)
    0x00, 0x00, 0x00, 0x03,  // partitionLeaderEpoch 3
    0x02,  // magic 2
    0x46, 0x20, 0xBC, 0xE6,  // crc 0x4620BCE6
    0x00, 0x00,  // attributes: no compression, create time
    0x00, 0x00, 0x00, 0x01,  // lastOffsetDelta 1
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00,  // baseTimestamp 1_700_000_000_000
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x05,  // maxTimestamp 1_700_000_000_005
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xE8,  // producerId 1000
    0x00, 0x02,  // producerEpoch 2
    0x00, 0x00, 0x00, 0x0A,  // baseSequence 10
    0x00, 0x00, 0x00, 0x02,  // records count 2
    // record 0: length 12, attributes 0, timestampDelta 0, offsetDelta 0, key "k", value "hello", 0 headers
    0x18, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x0A, 0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x00,
    // record 1: length 9, attributes 0, timestampDelta 5, offsetDelta 1, key null, value empty,
    // 1 header: key "h", value null
    0x12, 0x00, 0x0A, 0x02, 0x01, 0x00, 0x02, 0x02, 0x68, 0x01,
]

/// Finds the CRC-valid record batches inside captured request/response bytes, without a message
/// decoder: a batch is wherever magic 2 sits at +16, its length fits and its CRC checks.
private func scanForBatches(_ bytes: [UInt8]) -> [RecordBatch] {
    let buffer = ByteBuffer(bytes: bytes)
    var found: [RecordBatch] = []
    var index = 0
    while index + RecordBatch.headerSize <= bytes.count {
        if bytes[index + 16] == 2, let length = buffer.getInteger(at: index + 8, as: Int32.self), length >= 49,
            index + 12 + Int(length) <= bytes.count,
            let slice = buffer.getSlice(at: index, length: 12 + Int(length)),
            let batch = try? RecordBatch(slice), batch.isCRCValid
        {
            found.append(batch)
            index += batch.sizeInBytes
        } else {
            index += 1
        }
    }
    return found
}

private func fixture(_ path: String) throws -> [UInt8] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return Array(try Data(contentsOf: root.appendingPathComponent("protocol-fixtures").appendingPathComponent(path)))
}

// MARK: - Tests

@Suite("Record batches v2")
struct RecordBatchTests {
    @Test("a hand-made batch decodes field by field")
    func knownBatchDecodes() throws {
        let batch = try RecordBatch(ByteBuffer(bytes: knownBatchBytes))
        #expect(batch.baseOffset == 42)
        #expect(batch.batchLength == 72)
        #expect(batch.partitionLeaderEpoch == 3)
        #expect(batch.magic == 2)
        #expect(batch.crc == 0x4620_BCE6)
        #expect(batch.computedCRC == 0x4620_BCE6)
        #expect(batch.compression == CompressionCodec.none)
        #expect(batch.timestampType == .createTime)
        #expect(!batch.isTransactional && !batch.isControl)
        #expect(batch.lastOffsetDelta == 1)
        #expect(batch.lastOffset == 43)
        #expect(batch.nextOffset == 44)
        #expect(batch.baseTimestamp == 1_700_000_000_000)
        #expect(batch.maxTimestamp == 1_700_000_000_005)
        #expect(batch.producerId == 1000)
        #expect(batch.producerEpoch == 2)
        #expect(batch.baseSequence == 10)
        #expect(batch.lastSequence == 11)
        #expect(batch.recordCount == 2)
        try batch.validate()

        let records = try batch.decodeRecords()
        #expect(records.count == 2)
        #expect(records[0].offset == 42)
        #expect(records[0].timestamp == 1_700_000_000_000)
        #expect(records[0].key == ByteBuffer(string: "k"))
        #expect(records[0].value == ByteBuffer(string: "hello"))
        #expect(records[0].headers.isEmpty)
        #expect(records[1].offset == 43)
        #expect(records[1].offsetDelta == 1)
        #expect(records[1].timestamp == 1_700_000_000_005)
        #expect(records[1].timestampDelta == 5)
        #expect(records[1].key == nil)
        #expect(records[1].value == ByteBuffer())
        #expect(records[1].headers == [RecordHeader(key: "h", value: nil)])
    }

    @Test("the builder writes the hand-made batch byte for byte")
    func builderWritesKnownBytes() throws {
        var builder = RecordBatchBuilder(
            baseOffset: 42, partitionLeaderEpoch: 3, producerId: 1000, producerEpoch: 2, baseSequence: 10)
        try builder.append(key: ByteBuffer(string: "k"), value: ByteBuffer(string: "hello"), timestamp: 1_700_000_000_000)
        try builder.append(
            key: nil, value: ByteBuffer(), headers: [RecordHeader(key: "h", value: nil)], timestamp: 1_700_000_000_005)
        let batch = try builder.build()
        #expect(Array(batch.buffer.readableBytesView) == knownBatchBytes)
    }

    @Test("round trip of fixed edge-case records, uncompressed and gzip")
    func fixedRoundTrip() throws {
        for codec in [CompressionCodec.none, .gzip] {
            let batch = try Samples.batch(Samples.fixed, compression: codec, baseOffset: 1000)
            try batch.validate()
            #expect(batch.compression == codec)
            #expect(batch.recordCount == Int32(Samples.fixed.count))
            #expect(batch.baseTimestamp == Samples.fixed[0].timestamp)
            #expect(batch.maxTimestamp == Samples.fixed.map(\.timestamp).max())
            let records = try batch.decodeRecords()
            #expect(records.count == Samples.fixed.count)
            for (index, (sample, record)) in zip(Samples.fixed, records).enumerated() {
                #expect(sample.matches(record), "record \(index) with \(codec)")
                #expect(record.offset == 1000 + Int64(index))
            }
        }
    }

    @Test("round trip of random records (property)")
    func randomRoundTrip() async {
        await propertyCheck(
            count: 150, input: Samples.records, Gen.bool, Gen.int64(in: 0...Int64(Int32.max)), Gen.int32(in: -1...1000)
        ) { samples, gzip, baseOffset, epoch in
            var builder = RecordBatchBuilder(
                baseOffset: baseOffset, partitionLeaderEpoch: epoch, compression: gzip ? .gzip : .none,
                producerId: 77, producerEpoch: 3, baseSequence: 5)
            for sample in samples { try builder.append(sample) }
            let batch = try builder.build()

            // Through the batch iterator, as a Fetch response would carry it.
            let batches = try RecordBatch.batches(in: batch.buffer)
            #expect(batches.count == 1)
            let read = try #require(batches.first)
            try read.validate()
            #expect(read == batch)
            #expect(read.baseOffset == baseOffset)
            #expect(read.partitionLeaderEpoch == epoch)
            #expect(read.producerId == 77 && read.producerEpoch == 3 && read.baseSequence == 5)
            #expect(read.recordCount == Int32(samples.count))
            #expect(read.lastOffsetDelta == Int32(samples.count - 1))

            var iterator = try read.records()
            var index = 0
            while let record = try iterator.next() {
                #expect(samples[index].matches(record), "record \(index)")
                #expect(record.offset == baseOffset + Int64(index))
                index += 1
            }
            #expect(index == samples.count)
        }
    }

    @Test("uncompressed keys and values are slices of the batch, not copies")
    func zeroCopyRecords() throws {
        let batch = try Samples.batch(Samples.fixed)
        let records = try batch.decodeRecords()
        let range: Range<UInt> = batch.buffer.withUnsafeReadableBytes { raw in
            let start = UInt(bitPattern: raw.baseAddress)
            return start..<(start + UInt(raw.count))
        }
        let value = try #require(records[3].value)
        let address = value.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(range.contains(address))
    }

    @Test("several batches in one records field, and a partial batch at the end")
    func concatenatedAndPartial() throws {
        let first = try Samples.batch(Array(Samples.fixed.prefix(2)), baseOffset: 0)
        let second = try Samples.batch(Samples.fixed, compression: .gzip, baseOffset: 2)
        let third = try Samples.batch(Array(Samples.fixed.suffix(1)), baseOffset: 6)
        var all = ByteBuffer()
        for batch in [first, second, third] { all.writeImmutableBuffer(batch.buffer) }

        let batches = try RecordBatch.batches(in: all)
        #expect(batches == [first, second, third])
        #expect(batches.map(\.baseOffset) == [0, 2, 6])

        // Cut the third batch anywhere: the first two come out, then iteration stops quietly.
        let thirdStart = first.sizeInBytes + second.sizeInBytes
        for cut in thirdStart..<(all.readableBytes) {
            let prefix = all.getSlice(at: 0, length: cut)!
            var iterator = RecordBatchIterator(prefix)
            var count = 0
            while let _ = try iterator.next() { count += 1 }
            #expect(count == 2)
            #expect(iterator.partialTrailingBytes == cut - thirdStart)
            if cut > thirdStart {
                #expect(throws: KafkaProtocolError.self) {
                    _ = try RecordBatch.batches(in: prefix, allowPartialTrailingBatch: false)
                }
            } else {
                #expect(try RecordBatch.batches(in: prefix, allowPartialTrailingBatch: false).count == 2)
            }
        }
        var iterator = RecordBatchIterator(all)
        while let _ = try iterator.next() {}
        #expect(iterator.partialTrailingBytes == 0)
    }

    @Test("truncation at every byte position throws or stops cleanly")
    func truncationAtEveryPosition() throws {
        for codec in [CompressionCodec.none, .gzip] {
            let batch = try Samples.batch(Samples.fixed, compression: codec)
            let bytes = batch.buffer
            for cut in 0..<bytes.readableBytes {
                let prefix = bytes.getSlice(at: bytes.readerIndex, length: cut)!
                #expect(throws: KafkaProtocolError.self) { _ = try RecordBatch(prefix) }
                #expect(try RecordBatch.batches(in: prefix).isEmpty)

                // The same prefix with a batchLength that claims exactly the prefix: the header
                // checks pass (where the header is whole), the records must fail cleanly.
                guard cut >= RecordBatch.headerSize else { continue }
                var lying = prefix
                lying.setInteger(Int32(cut - RecordBatch.logOverhead), at: RecordBatch.Offset.batchLength)
                var view = try RecordBatch(lying)
                view.updateCRC()
                try view.validate()
                #expect(throws: KafkaProtocolError.self) { _ = try view.decodeRecords() }
            }
        }
    }

    @Test("random corruption of the records never traps (property)")
    func randomCorruption() async {
        await propertyCheck(
            count: 300, input: Samples.records, Gen.int(in: 0...Int.max), Gen<UInt8>.value(), Gen.bool
        ) { samples, position, byte, gzip in
            let batch = try Samples.batch(samples, compression: gzip ? .gzip : .none)
            var bytes = batch.buffer
            let index = RecordBatch.Offset.attributes + position % (bytes.readableBytes - RecordBatch.Offset.attributes)
            bytes.setInteger(byte, at: index)
            guard var view = try? RecordBatch(bytes) else { return }
            if view.buffer != batch.buffer {
                #expect(throws: KafkaProtocolError.self) { try view.validate() }
            }
            view.updateCRC()
            // Either decodes (the byte may be harmless) or throws; never traps.
            _ = try? view.decodeRecords()
        }
    }

    @Test("arbitrary bytes after a plausible header never trap (property)")
    func arbitraryBytes() async {
        await propertyCheck(
            count: 300, input: Gen<UInt8>.value().array(of: 0...300), Gen.int(in: 0...4), Gen.int32(in: -3...40)
        ) { tail, codec, count in
            // A valid-looking header (so the iterator gets past it) followed by random records.
            var bytes = ByteBuffer(bytes: knownBatchBytes.prefix(RecordBatch.headerSize))
            bytes.writeBytes(tail)
            bytes.setInteger(Int32(bytes.readableBytes - RecordBatch.logOverhead), at: RecordBatch.Offset.batchLength)
            bytes.setInteger(Int16(codec), at: RecordBatch.Offset.attributes)
            bytes.setInteger(count, at: RecordBatch.Offset.recordsCount)
            for batch in (try? RecordBatch.batches(in: bytes)) ?? [] {
                _ = try? batch.decodeRecords(maxDecompressedSize: 1 << 16)
            }
            _ = try? GzipCodec.decompress(ByteBuffer(bytes: tail), maxSize: 1 << 16)
            _ = try? RecordBatch.batches(in: ByteBuffer(bytes: tail))
        }
    }

    @Test("a corrupted byte is caught by the CRC; baseOffset and leader epoch are not covered")
    func crcMismatch() throws {
        let batch = try Samples.batch(Samples.fixed)
        for index in RecordBatch.Offset.attributes..<batch.sizeInBytes {
            var bytes = batch.buffer
            bytes.setInteger(bytes.getInteger(at: index, as: UInt8.self)! ^ 0x10, at: index)
            let view = try RecordBatch(bytes)
            #expect(!view.isCRCValid)
            #expect(throws: KafkaProtocolError.self) { try view.validate() }
        }
        var rewritten = batch
        rewritten.baseOffset = 123_456_789
        rewritten.partitionLeaderEpoch = 99
        #expect(rewritten.isCRCValid)
        try rewritten.validate()
        #expect(rewritten.baseOffset == 123_456_789)
        #expect(rewritten.partitionLeaderEpoch == 99)
        #expect(try rewritten.decodeRecords().map(\.offset) == [123_456_789, 123_456_790, 123_456_791, 123_456_792])

        var badCRC = batch.buffer
        badCRC.setInteger(batch.crc ^ 1, at: RecordBatch.Offset.crc)
        let error = #expect(throws: KafkaProtocolError.self) { try RecordBatch(badCRC).validate() }
        if case .corruptRecordBatch(let message)? = error {
            #expect(message.contains("CRC"))
        } else {
            Issue.record("expected corruptRecordBatch, got \(String(describing: error))")
        }
    }

    @Test("snappy, lz4 and zstd batches: headers, CRC and offsets work, records throw unsupported")
    func unsupportedCodecs() throws {
        let plain = try Samples.batch(Samples.fixed)
        for codec in [CompressionCodec.snappy, .lz4, .zstd] {
            var bytes = plain.buffer
            bytes.setInteger(RecordBatchAttributes(compression: codec).rawValue, at: RecordBatch.Offset.attributes)
            var batch = try RecordBatch(bytes)
            batch.updateCRC()
            try batch.validate()
            #expect(batch.compression == codec)
            #expect(batch.recordCount == 4)
            #expect(throws: KafkaProtocolError.unsupportedCompressionCodec(codec.description)) {
                _ = try batch.records()
            }
            var records = batch.buffer
            let assignment = try RecordBatch.assignOffsets(in: &records, firstOffset: 500, partitionLeaderEpoch: 4)
            #expect(assignment.lastOffset == 503)
            let stored = try RecordBatch(records)
            #expect(stored.baseOffset == 500 && stored.partitionLeaderEpoch == 4 && stored.isCRCValid)

            var builder = RecordBatchBuilder(compression: codec)
            try builder.append(key: nil, value: ByteBuffer(string: "x"), timestamp: 0)
            #expect(throws: KafkaProtocolError.unsupportedCompressionCodec(codec.description)) {
                _ = try builder.build()
            }
        }
        #expect(KafkaProtocolError.unsupportedCompressionCodec("snappy").description.contains("snappy"))

        // Codec ids 5-7 are not Kafka's.
        var bytes = plain.buffer
        bytes.setInteger(Int16(5), at: RecordBatch.Offset.attributes)
        var unknown = try RecordBatch(bytes)
        unknown.updateCRC()
        #expect(unknown.compression == nil)
        #expect(throws: KafkaProtocolError.self) { try unknown.validate() }
        #expect(throws: KafkaProtocolError.self) { _ = try unknown.records() }
    }

    @Test("legacy message sets (magic 0 and 1) are rejected clearly")
    func legacyMagic() throws {
        for magic: Int8 in [0, 1] {
            // offset, message_size, crc, magic, attributes, [timestamp,] key -1, value "v"
            var message = ByteBuffer()
            message.writeInteger(Int32(0))  // crc (not checked)
            message.writeInteger(magic)
            message.writeInteger(Int8(0))
            if magic == 1 { message.writeInteger(Int64(1_700_000_000_000)) }
            message.writeInteger(Int32(-1))
            message.writeInteger(Int32(1))
            message.writeString("v")
            var set = ByteBuffer()
            set.writeInteger(Int64(0))
            set.writeInteger(Int32(message.readableBytes))
            set.writeImmutableBuffer(message)

            for attempt in [{ _ = try RecordBatch.batches(in: set) }, { _ = try RecordBatch(set) }] {
                let error = #expect(throws: KafkaProtocolError.self) { try attempt() }
                if case .corruptRecordBatch(let message)? = error {
                    #expect(message.contains("legacy") && message.contains("magic \(magic)"))
                } else {
                    Issue.record("expected corruptRecordBatch, got \(String(describing: error))")
                }
            }
        }
        var garbage = ByteBuffer(bytes: knownBatchBytes)
        garbage.setInteger(Int8(7), at: RecordBatch.Offset.magic)
        #expect(throws: KafkaProtocolError.self) { _ = try RecordBatch.batches(in: garbage) }
    }

    @Test("garbage lengths and counts throw")
    func garbageHeaders() throws {
        var negative = ByteBuffer(bytes: knownBatchBytes)
        negative.setInteger(Int32(-5), at: RecordBatch.Offset.batchLength)
        #expect(throws: KafkaProtocolError.self) { _ = try RecordBatch.batches(in: negative) }

        var tooSmall = ByteBuffer(bytes: knownBatchBytes)
        tooSmall.setInteger(Int32(20), at: RecordBatch.Offset.batchLength)
        #expect(throws: KafkaProtocolError.self) { _ = try RecordBatch.batches(in: tooSmall) }

        var longer = ByteBuffer(bytes: knownBatchBytes)
        longer.writeInteger(UInt8(0))
        #expect(throws: KafkaProtocolError.self) { _ = try RecordBatch(longer) }

        for count: Int32 in [-1, 0, 1, 3, 1000, Int32.max] {
            var bytes = ByteBuffer(bytes: knownBatchBytes)
            bytes.setInteger(count, at: RecordBatch.Offset.recordsCount)
            var batch = try RecordBatch(bytes)
            batch.updateCRC()
            #expect(throws: KafkaProtocolError.self) { _ = try batch.decodeRecords() }
        }

        // A header count far beyond the bytes left must not allocate or trap.
        var builder = RecordBatchBuilder()
        try builder.append(key: nil, value: nil, timestamp: 0)
        var bytes = try builder.build().buffer
        // record: length, attributes, timestampDelta, offsetDelta, key -1, value -1, header count
        bytes.setInteger(UInt8(0xFE), at: RecordBatch.Offset.records + 6)
        bytes.writeBytes([0xFF, 0xFF, 0xFF, 0x07])  // continue the varint: a huge positive count
        bytes.setInteger(Int32(bytes.readableBytes - RecordBatch.logOverhead), at: RecordBatch.Offset.batchLength)
        bytes.setInteger(UInt8(20), at: RecordBatch.Offset.records)  // record length 10 (zig-zag)
        let batch = try RecordBatch(bytes)
        #expect(throws: KafkaProtocolError.self) { _ = try batch.decodeRecords() }
    }

    @Test("assignOffsets validates and rewrites every batch in place")
    func assignOffsetsInPlace() throws {
        let a = try Samples.batch(Array(Samples.fixed.prefix(3)))
        let b = try Samples.batch(Samples.fixed, compression: .gzip)
        var records = ByteBuffer()
        records.writeImmutableBuffer(a.buffer)
        records.writeImmutableBuffer(b.buffer)
        let before = records.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }

        let assignment = try RecordBatch.assignOffsets(in: &records, firstOffset: 1000, partitionLeaderEpoch: 9)
        #expect(
            assignment
                == OffsetAssignment(
                    firstOffset: 1000, lastOffset: 1006, batchCount: 2, recordCount: 7,
                    maxTimestamp: Samples.fixed.map(\.timestamp).max()!))
        let after = records.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(before == after, "rewritten in place, not copied")

        let batches = try RecordBatch.batches(in: records)
        #expect(batches.map(\.baseOffset) == [1000, 1003])
        #expect(batches.allSatisfy { $0.partitionLeaderEpoch == 9 && $0.isCRCValid })
        #expect(try batches[1].decodeRecords().map(\.offset) == [1003, 1004, 1005, 1006])

        // A partial batch, a bad CRC or an empty input are refused.
        var partial = records.getSlice(at: 0, length: records.readableBytes - 1)!
        #expect(throws: KafkaProtocolError.self) {
            _ = try RecordBatch.assignOffsets(in: &partial, firstOffset: 0, partitionLeaderEpoch: 0)
        }
        var corrupt = records
        corrupt.setInteger(UInt8(0xEE), at: corrupt.writerIndex - 1)
        #expect(throws: KafkaProtocolError.self) {
            _ = try RecordBatch.assignOffsets(in: &corrupt, firstOffset: 0, partitionLeaderEpoch: 0)
        }
        var empty = ByteBuffer()
        #expect(throws: KafkaProtocolError.self) {
            _ = try RecordBatch.assignOffsets(in: &empty, firstOffset: 0, partitionLeaderEpoch: 0)
        }
        var emptyBuilder = RecordBatchBuilder()
        var emptyBatch = try emptyBuilder.build().buffer
        #expect(throws: KafkaProtocolError.self) {
            _ = try RecordBatch.assignOffsets(in: &emptyBatch, firstOffset: 0, partitionLeaderEpoch: 0)
        }
    }

    @Test("a builder is empty and reusable after build")
    func builderReuse() throws {
        var builder = RecordBatchBuilder(baseOffset: 10, compression: .gzip)
        for sample in Samples.fixed { try builder.append(sample) }
        let first = try builder.build()
        #expect(builder.isEmpty && builder.recordCount == 0 && builder.baseTimestamp == -1)
        try builder.append(Samples.fixed[1])
        let second = try builder.build()
        #expect(try first.decodeRecords().count == 4)
        let records = try second.decodeRecords()
        #expect(records.count == 1 && Samples.fixed[1].matches(records[0]))
        #expect(second.baseOffset == 10 && second.compression == .gzip)
        let empty = try builder.build()
        #expect(empty.recordCount == 0 && empty.isCRCValid)
        #expect(try empty.decodeRecords().isEmpty)
    }

    /// A batch whose records section is exactly `records` (uncompressed), CRC updated.
    static func batch(withRecordBytes records: [UInt8], count: Int32) throws -> RecordBatch {
        var bytes = ByteBuffer(bytes: knownBatchBytes.prefix(RecordBatch.headerSize))
        bytes.writeBytes(records)
        bytes.setInteger(Int32(bytes.readableBytes - RecordBatch.logOverhead), at: RecordBatch.Offset.batchLength)
        bytes.setInteger(count, at: RecordBatch.Offset.recordsCount)
        var batch = try RecordBatch(bytes)
        batch.updateCRC()
        return batch
    }

    @Test("malformed record fields throw the right errors")
    func malformedRecords() throws {
        // length 7: attributes, timestampDelta, offsetDelta (6-byte varint: too long)
        let tooLong = try Self.batch(withRecordBytes: [0x10, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], count: 1)
        #expect(throws: KafkaProtocolError.varintTooLong) { _ = try tooLong.decodeRecords() }
        // key length -2
        let negativeKey = try Self.batch(withRecordBytes: [0x0C, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00], count: 1)
        #expect(throws: KafkaProtocolError.invalidLength(what: "record key", length: -2)) {
            _ = try negativeKey.decodeRecords()
        }
        // record length 50 with 7 bytes left
        let longRecord = try Self.batch(withRecordBytes: [0x64, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00], count: 1)
        #expect(throws: KafkaProtocolError.truncated(what: "record", needed: 50, available: 7)) {
            _ = try longRecord.decodeRecords()
        }
        // value length 3 but the record ends after 1 byte of it
        let shortValue = try Self.batch(withRecordBytes: [0x0C, 0x00, 0x00, 0x00, 0x01, 0x06, 0x41, 0x00], count: 1)
        #expect(throws: KafkaProtocolError.self) { _ = try shortValue.decodeRecords() }
        // record length leaves a byte after the headers
        let slack = try Self.batch(withRecordBytes: [0x0E, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00], count: 1)
        #expect(throws: KafkaProtocolError.self) { _ = try slack.decodeRecords() }
        // a header key with invalid UTF-8 is repaired, as Kafka's Java client does
        let badUTF8 = try Self.batch(
            withRecordBytes: [0x14, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x04, 0xFF, 0x41, 0x01], count: 1)
        let header = try #require(try badUTF8.decodeRecords().first?.headers.first)
        #expect(header.key == "\u{FFFD}A" && header.value == nil)
    }

    @Test("the record parser agrees with a plain reference decoder on mutated bytes (property)")
    func differentialDecoding() async {
        await propertyCheck(
            count: 400, input: Samples.records, Gen.int(in: 0...Int.max), Gen<UInt8>.value(), Gen.int(in: 0...2)
        ) { samples, position, byte, mode in
            let batch = try Samples.batch(samples)
            var records = Array(batch.recordsBytes.readableBytesView)
            guard !records.isEmpty else { return }
            switch mode {
            case 0: records[position % records.count] = byte
            case 1: records.insert(byte, at: position % records.count)
            default: records.remove(at: position % records.count)
            }
            let mutated = try Self.batch(withRecordBytes: records, count: Int32(samples.count))
            let fast = try? mutated.decodeRecords()
            let slow = try? ReferenceDecoder.decode(ByteBuffer(bytes: records), count: samples.count, batch: mutated)
            #expect(fast == slow)
        }
    }

    @Test("log append time: CRC updated, records take the batch's timestamp")
    func logAppendTime() throws {
        var batch = try Samples.batch(Samples.fixed)
        batch.setLogAppendTime(1_800_000_000_000)
        try batch.validate()
        #expect(batch.timestampType == .logAppendTime)
        #expect(batch.maxTimestamp == 1_800_000_000_000)
        #expect(try batch.decodeRecords().allSatisfy { $0.timestamp == 1_800_000_000_000 })
    }

    @Test("transaction markers are control batches with a control key")
    func controlRecords() throws {
        let marker = try RecordBatch.endTransactionMarker(
            .commit, producerId: 5, producerEpoch: 1, coordinatorEpoch: 12, timestamp: 1_700_000_000_000)
        try marker.validate()
        #expect(marker.isControl && marker.isTransactional)
        #expect(marker.producerId == 5 && marker.producerEpoch == 1)
        #expect(try marker.controlRecordKey() == ControlRecordKey(type: .commit))
        let record = try #require(try marker.decodeRecords().first)
        #expect(try EndTransactionMarker(from: record.value!) == EndTransactionMarker(coordinatorEpoch: 12))
        #expect(try ControlRecordKey(from: ByteBuffer(bytes: [0, 0, 0, 0])).type == .abort)
        #expect(throws: KafkaProtocolError.self) { _ = try ControlRecordKey(from: ByteBuffer(bytes: [0, 0, 0])) }
        #expect(try Samples.batch(Samples.fixed).controlRecordKey() == nil)
    }

    @Test("attributes bits")
    func attributes() {
        var attributes = RecordBatchAttributes(
            compression: .zstd, timestampType: .logAppendTime, isTransactional: true, isControl: true,
            hasDeleteHorizon: true)
        #expect(attributes.rawValue == 0b111_1100)
        attributes.compression = .gzip
        attributes.isControl = false
        #expect(attributes.rawValue == 0b101_1001)
        #expect(RecordBatchAttributes(rawValue: 0x0003).compression == .lz4)
    }

    @Test("records captured from real clients (librdkafka, kafka-python, aiokafka)")
    func realClientBatches() throws {
        let produces = [
            "kcat/Produce-v10-1.request.bin", "kcat/Produce-v10-2.request.bin", "kcat/Produce-v10-3.request.bin",
            "confluent-kafka/Produce-v10-1.request.bin", "confluent-kafka/Produce-v10-2.request.bin",
            "confluent-kafka/Produce-v10-3.request.bin", "kafka-python/Produce-v9-1.request.bin",
            "kafka-python/Produce-v9-2.request.bin", "kafka-python/Produce-v9-3.request.bin",
            "aiokafka/Produce-v7-1.request.bin", "aiokafka/Produce-v7-2.request.bin",
        ]
        for path in produces {
            let batches = scanForBatches(try fixture(path))
            #expect(batches.count == 1, "\(path)")
            guard let batch = batches.first else { continue }
            try batch.validate()
            let records = try batch.decodeRecords()
            #expect(records.count == 3, "\(path)")
            #expect(records.reduce(0) { $0 + $1.headers.count } == 6, "\(path)")
            for (index, record) in records.enumerated() {
                #expect(record.key == ByteBuffer(string: "key-\(index)"), "\(path)")
                #expect(record.value.map { String(buffer: $0) }?.hasPrefix("value-\(index)") == true, "\(path)")
                #expect(record.headers.map(\.key) == ["trace-id", "source"], "\(path)")
            }
            if path.contains("-2.") { #expect(batch.compression == .gzip, "\(path)") }
            if path.hasSuffix("-3.request.bin") && !path.hasPrefix("aiokafka") {
                #expect(batch.producerId == 1 && batch.producerEpoch == 0 && batch.baseSequence == 0, "\(path)")
            }

            // Re-encoding an uncompressed batch with the same header fields gives the client's bytes.
            if batch.compression == CompressionCodec.none {
                var builder = RecordBatchBuilder(
                    baseOffset: batch.baseOffset, partitionLeaderEpoch: batch.partitionLeaderEpoch,
                    isTransactional: batch.isTransactional, producerId: batch.producerId,
                    producerEpoch: batch.producerEpoch, baseSequence: batch.baseSequence)
                for record in records { try builder.append(record) }
                let rebuilt = try builder.build()
                #expect(rebuilt == batch, "\(path) re-encoded byte for byte")
            }
        }

        let fetches = [
            ("kcat/Fetch-v16-1.response.bin", 3, 9), ("confluent-kafka/Fetch-v16-1.response.bin", 3, 9),
            ("kafka-python/Fetch-v12-1.response.bin", 3, 9), ("aiokafka/Fetch-v11-1.response.bin", 2, 6),
        ]
        for (path, batchCount, recordCount) in fetches {
            let batches = scanForBatches(try fixture(path))
            #expect(batches.count == batchCount, "\(path)")
            var total = 0
            for batch in batches {
                try batch.validate()
                total += try batch.decodeRecords().count
            }
            #expect(total == recordCount, "\(path)")
        }
    }
}

/// A straightforward record decoder on top of the ByteBuffer varint readers, to check the
/// optimised raw-pointer parser against.
private enum ReferenceDecoder {
    static func bytes(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let length = try buffer.readVarint()
        if length == -1 { return nil }
        guard length >= 0, let slice = buffer.readSlice(length: Int(length)) else { throw KafkaProtocolError.varintTooLong }
        return slice
    }

    static func decode(_ input: ByteBuffer, count: Int, batch: RecordBatch) throws -> [Record] {
        var buffer = input
        var records: [Record] = []
        for _ in 0..<count {
            let length = try buffer.readVarint()
            guard length >= 0, var body = buffer.readSlice(length: Int(length)) else { throw KafkaProtocolError.varintTooLong }
            guard let attributes = body.readInteger(as: Int8.self) else { throw KafkaProtocolError.varintTooLong }
            let timestampDelta = try body.readVarlong()
            let offsetDelta = try body.readVarint()
            let key = try bytes(&body)
            let value = try bytes(&body)
            let headerCount = try body.readVarint()
            guard headerCount >= 0, Int(headerCount) <= body.readableBytes / 2 else { throw KafkaProtocolError.varintTooLong }
            var headers: [RecordHeader] = []
            for _ in 0..<headerCount {
                guard let keyBytes = try bytes(&body) else { throw KafkaProtocolError.varintTooLong }
                headers.append(RecordHeader(key: String(buffer: keyBytes), value: try bytes(&body)))
            }
            guard body.readableBytes == 0 else { throw KafkaProtocolError.varintTooLong }
            records.append(
                Record(
                    offset: batch.baseOffset &+ Int64(offsetDelta), timestamp: batch.baseTimestamp &+ timestampDelta,
                    attributes: attributes, offsetDelta: offsetDelta, timestampDelta: timestampDelta, key: key,
                    value: value, headers: headers))
        }
        guard buffer.readableBytes == 0, count <= input.readableBytes / 7 else { throw KafkaProtocolError.varintTooLong }
        return records
    }
}

@Suite("gzip codec")
struct GzipCodecTests {
    @Test("round trip, including empty input and every level")
    func roundTrip() throws {
        let text = ByteBuffer(string: String(repeating: "petrel record batches ", count: 500))
        for level in -1...9 {
            let compressed = try GzipCodec.compress(text, level: level)
            #expect(compressed.getInteger(at: 0, as: UInt16.self) == 0x1F8B)
            #expect(try GzipCodec.decompress(compressed, maxSize: 1 << 20) == text)
        }
        let empty = try GzipCodec.compress(ByteBuffer())
        #expect(try GzipCodec.decompress(empty, maxSize: 0) == ByteBuffer())
        #expect(throws: KafkaProtocolError.self) { _ = try GzipCodec.compress(text, level: 12) }
    }

    @Test("concatenated gzip members read as one stream")
    func concatenatedMembers() throws {
        var both = try GzipCodec.compress(ByteBuffer(string: "hello, "))
        var second = try GzipCodec.compress(ByteBuffer(string: "world"))
        both.writeBuffer(&second)
        #expect(try GzipCodec.decompress(both, maxSize: 100) == ByteBuffer(string: "hello, world"))
    }

    @Test("the decompressed size is capped (zip bomb guard)")
    func sizeCap() throws {
        let zeros = ByteBuffer(repeating: 0, count: 4 << 20)
        let bomb = try GzipCodec.compress(zeros, level: 9)
        #expect(bomb.readableBytes < 10_000)
        #expect(try GzipCodec.decompress(bomb, maxSize: 4 << 20).readableBytes == 4 << 20)
        #expect(throws: KafkaProtocolError.self) { _ = try GzipCodec.decompress(bomb, maxSize: (4 << 20) - 1) }
        #expect(throws: KafkaProtocolError.self) { _ = try GzipCodec.decompress(bomb, maxSize: 1000) }

        // The same through a batch.
        var builder = RecordBatchBuilder(compression: .gzip)
        try builder.append(key: nil, value: zeros, timestamp: 0)
        let batch = try builder.build()
        #expect(batch.sizeInBytes < 10_000)
        #expect(throws: KafkaProtocolError.self) { _ = try batch.records(maxDecompressedSize: 1 << 20) }
        #expect(try batch.decodeRecords(maxDecompressedSize: 5 << 20).first?.value == zeros)
    }

    @Test("corrupt and truncated gzip data throw compressionFailed")
    func corrupt() throws {
        let compressed = try GzipCodec.compress(ByteBuffer(string: String(repeating: "abcdefgh", count: 100)))
        for cut in 0..<compressed.readableBytes {
            let prefix = compressed.getSlice(at: 0, length: cut)!
            #expect(throws: KafkaProtocolError.self) { _ = try GzipCodec.decompress(prefix, maxSize: 1 << 20) }
        }
        var garbage = compressed
        garbage.setInteger(UInt32(0xDEAD_BEEF), at: 12)
        let error = #expect(throws: KafkaProtocolError.self) { _ = try GzipCodec.decompress(garbage, maxSize: 1 << 20) }
        if case .compressionFailed? = error {} else { Issue.record("expected compressionFailed, got \(String(describing: error))") }
        #expect(throws: KafkaProtocolError.self) {
            _ = try GzipCodec.decompress(ByteBuffer(string: "not gzip at all"), maxSize: 1 << 20)
        }
    }
}
