import NIOCore
import Testing
@testable import Collatz

@Suite("Record JSON, keys and ClickHouse row encodings")
struct CollatzRecordTests {
    @Test("JSON is byte for byte what Python's json.dumps wrote, exact above 2^64")
    func encoding() {
        let r = CollatzRecord(number: 27, step: 0, value: 27)
        #expect(String(decoding: r.jsonBytes, as: UTF8.self) == #"{"Number": 27, "Step": 0, "Value": 27}"#)
        let big = CollatzRecord(number: 12_327_829_503, step: 5, value: UInt128(decimalDigits: "20722398914405051728")!)
        #expect(String(decoding: big.jsonBytes, as: UTF8.self)
            == #"{"Number": 12327829503, "Step": 5, "Value": 20722398914405051728}"#)
        let max = CollatzRecord(number: .max, step: .max, value: .max)
        #expect(String(decoding: max.jsonBytes, as: UTF8.self)
            == #"{"Number": 18446744073709551615, "Step": 4294967295, "Value": 340282366920938463463374607431768211455}"#)
        #expect(r.keyBytes == Array("27".utf8))
        #expect(CollatzRecord.key(for: 12_327_829_503) == Array("12327829503".utf8))
    }

    @Test("decoding round-trips every step of a chain that passes 2^64")
    func roundTrip() throws {
        for (step, value) in try CollatzChain.values(from: 12_327_829_503).enumerated() {
            let r = CollatzRecord(number: 12_327_829_503, step: UInt32(step), value: value)
            #expect(try CollatzRecord.decode(json: r.jsonBytes) == r)
        }
    }

    @Test("decoding is lenient in layout: whitespace, key order, quoted digits, extra scalar keys")
    func lenient() throws {
        let expected = CollatzRecord(number: 27, step: 3, value: 82)
        for text in [
            #"{"Number":27,"Step":3,"Value":82}"#,
            " {\n\t\"Value\" : 82 ,\r\n \"Step\": 3, \"Number\": 27 } \n",
            #"{"Number": "27", "Step": 3, "Value": "82"}"#,
            #"{"Number": 27, "Step": 3, "Value": 82, "Source": "python", "ts": 1.5, "ok": true, "x": null}"#,
        ] {
            #expect(try CollatzRecord.decode(json: Array(text.utf8)) == expected, "\(text)")
        }
    }

    @Test("decoding refuses malformed records with a reason", arguments: [
        ("", "truncated"),
        ("not json", "expected '{'"),
        ("{}", "empty object"),
        (#"{"Number": 27, "Step": 3}"#, "missing key Value"),
        (#"{"Number": -27, "Step": 3, "Value": 82}"#, "negative"),
        (#"{"Number": 27.5, "Step": 3, "Value": 82}"#, "not an integer"),
        (#"{"Number": 27, "Step": 3, "Value": 8.2e1}"#, "not an integer"),
        (#"{"Number": 27, "Step": 3, "Value": 82, "Number": 28}"#, "duplicate key Number"),
        (#"{"Number": 27, "Step": 3, "Value": 82} x"#, "trailing bytes"),
        (#"{"Number": 27, "Step": 3, "Value": 82"#, "truncated"),
        (#"{"Number": 27, "Step": 3, "Value": {"a": 1}}"#, "not an integer"),
        (#"{"Number": 27, "Step": 3, "Value": 82, "x": [1]}"#, "nested"),
        (#"{"Number": 0, "Step": 3, "Value": 82}"#, "outside"),
        (#"{"Number": 18446744073709551616, "Step": 3, "Value": 82}"#, "outside"),
        (#"{"Number": 27, "Step": 4294967296, "Value": 82}"#, "larger than"),
        (#"{"Number": 27, "Step": 3, "Value": 340282366920938463463374607431768211456}"#, "128 bits"),
        (#"{"Number": 27, "Step": 3, "Value": 0}"#, "Value is 0"),
        (#"{"Num\ber": 27}"#, "escaped"),
    ])
    func malformed(text: String, reason: String) {
        do {
            _ = try CollatzRecord.decode(json: Array(text.utf8))
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.reason.contains(reason), "\(text): \(error.reason)")
        }
    }

    @Test("random garbage never traps the decoder")
    func garbage() {
        var rng = SystemRandomNumberGenerator()
        let base = Array(#"{"Number": 27, "Step": 3, "Value": 82}"#.utf8)
        for _ in 0..<20_000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1: if bytes.count > 1 { bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng)) }
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                }
            }
            _ = try? CollatzRecord.decode(json: bytes)
        }
        #expect(throws: CollatzRecord.DecodeError.self) { try CollatzRecord.decode(json: [UInt8](repeating: 0x20, count: 5000)) }
    }

    @Test("RowBinary: UInt64, UInt32, Float64, String, DateTime; TabSeparated: exact digits")
    func rowEncodings() {
        let rows = [CollatzRow(CollatzRecord(number: 5, step: 1, value: 16), timestamp: 1_700_000_000),
                    CollatzRow(CollatzRecord(number: 7, step: 3, value: (1 << 100) + 7), timestamp: 1)]
        var buffer = ByteBuffer()
        ClickHouseInsertFormat.rowBinary.encode(rows, into: &buffer)
        #expect(buffer.readableBytes == (8 + 4 + 8 + 1 + 2 + 4) + (8 + 4 + 8 + 1 + 31 + 4))
        #expect(buffer.readInteger(endianness: .little, as: UInt64.self) == 5)
        #expect(buffer.readInteger(endianness: .little, as: UInt32.self) == 1)
        #expect(buffer.readInteger(endianness: .little, as: UInt64.self).map(Double.init(bitPattern:)) == 16)
        #expect(buffer.readInteger(as: UInt8.self) == 2)
        #expect(buffer.readString(length: 2) == "16")
        #expect(buffer.readInteger(endianness: .little, as: UInt32.self) == 1_700_000_000)
        #expect(buffer.readInteger(endianness: .little, as: UInt64.self) == 7)
        #expect(buffer.readInteger(endianness: .little, as: UInt32.self) == 3)
        #expect(buffer.readInteger(endianness: .little, as: UInt64.self).map(Double.init(bitPattern:)) == 0x1p100)
        #expect(buffer.readInteger(as: UInt8.self) == 31)
        #expect(buffer.readString(length: 31) == "1267650600228229401496703205383")
        #expect(buffer.readInteger(endianness: .little, as: UInt32.self) == 1)
        var tsv = ByteBuffer()
        ClickHouseInsertFormat.tabSeparated.encode(rows, into: &tsv)
        #expect(String(buffer: tsv) == "5\t1\t16\t16\t1700000000\n7\t3\t1.2676506002282294e+30\t1267650600228229401496703205383\t1\n")
    }

    @Test("backoff grows, is capped and jittered")
    func backoff() {
        let policy = InsertRetryPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(2))
        for _ in 0..<100 {
            let first = policy.delay(afterAttempt: 1)
            #expect(first >= .milliseconds(50) && first <= .milliseconds(100))
            let late = policy.delay(afterAttempt: 30)
            #expect(late >= .seconds(1) && late <= .seconds(2))
        }
    }

    @Test("retriable ClickHouse failures: no answer, overload, transient codes; not bad SQL")
    func retriable() {
        #expect(ClickHouseError(kind: .transport, message: "refused").isRetriable)
        #expect(ClickHouseError(kind: .server(status: 503), message: "").isRetriable)
        #expect(ClickHouseError(kind: .server(status: 500), message: "Code: 252, e.displayText() = too many parts").isRetriable)
        #expect(!ClickHouseError(kind: .server(status: 500), message: "Code: 62, e.displayText() = Syntax error").isRetriable)
        #expect(!ClickHouseError(kind: .server(status: 400), message: "Code: 27, cannot parse").isRetriable)
    }

    @Test("schema: identifiers are checked, DDL names the database")
    func schema() throws {
        #expect(throws: ClickHouseSchema.Failure.self) { try ClickHouseSchema(database: "x; DROP TABLE y") }
        #expect(throws: ClickHouseSchema.Failure.self) { try ClickHouseSchema(database: "") }
        #expect(throws: ClickHouseSchema.Failure.self) { try ClickHouseSchema(database: "1abc") }
        let schema = try ClickHouseSchema(database: "collatz_test")
        #expect(schema.statements.first == "CREATE DATABASE IF NOT EXISTS collatz_test")
        #expect(schema.statements.allSatisfy { $0.contains("collatz_test") })
    }
}
