import AnswersAPI
import Collatz
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The ClickHouse side against a real server: Debian's clickhouse-server 18.16, started per
/// test on loopback (see `ClickHouseTestServer`). Skipped with a printed reason when it is not
/// installed, unless PETREL_CI=1.
@Suite("ClickHouse 18.16: schema, batched inserts, the four answers", .serialized)
struct ClickHouseIntegrationTests {
    static func records(for starts: some Sequence<UInt64>) throws -> [CollatzRow] {
        var out = [CollatzRow]()
        for n in starts {
            try CollatzChain.forEachValue(from: UInt128(n)) { step, value in
                out.append(CollatzRow(CollatzRecord(number: n, step: UInt32(step), value: value), timestamp: 1_700_000_000))
            }
        }
        return out
    }

    static func setUp(_ server: ClickHouseTestServer, database: String = "collatz") async throws
        -> (ClickHouseClient, ClickHouseSchema, ClickHouseInserter, ClickHouseAnswersStore)
    {
        try await server.start()
        let client = ClickHouseClient(configuration: .init(url: server.url, database: database))
        let schema = try ClickHouseSchema(database: database)
        try await schema.create(on: client)
        try await schema.create(on: client)  // idempotent
        let inserter = ClickHouseInserter(client: client, schema: schema,
                                          retry: InsertRetryPolicy(initialDelay: .milliseconds(50), maxDelay: .milliseconds(500)))
        return (client, schema, inserter, ClickHouseAnswersStore(client: client, schema: schema))
    }

    @Test("duplicates and values above 2^64: the answers match chains computed here",
          .enabled(if: ClickHouseTestServer.available), .timeLimit(.minutes(5)))
    func answers() async throws {
        let server = try ClickHouseTestServer()
        defer { server.stop() }
        let (client, schema, inserter, store) = try await Self.setUp(server)

        let starts: [UInt64] = Array(1...3000) + [837_799, 12_327_829_503, 99_999_999_999_999]
        let rows = try Self.records(for: starts)
        // Batches of 5,000 in RowBinary, then a replay of a third of them in TabSeparated,
        // then one batch again in RowBinary: at-least-once delivery as the sink sees it.
        for chunk in stride(from: 0, to: rows.count, by: 5_000) {
            try await inserter.insert(rows[chunk..<min(chunk + 5_000, rows.count)])
        }
        var tsv = inserter
        tsv.format = .tabSeparated
        try await tsv.insert(rows[0..<(rows.count / 3)])
        try await inserter.insert(rows.suffix(2_000))

        let expected = try InMemoryAnswersStore(startNumbers: starts)
        // The raw table holds duplicates until merges run; FINAL shows the distinct set.
        let distinct = try await client.execute("SELECT count() FROM \(schema.dataTable) FINAL FORMAT TabSeparated")
        #expect(Int(distinct.trimmingCharacters(in: .whitespacesAndNewlines)) == rows.count)

        #expect(try await store.longestChain() == expected.longestChain())
        #expect(try await store.longestChain() == LongestChain(number: 12_327_829_503, steps: 543))
        let highest = try await store.highestValue()
        #expect(highest == (try await expected.highestValue()))
        #expect(highest?.value == UInt128(decimalDigits: "20722398914405051728"))

        let big = try #require(UInt128(decimalDigits: "20722398914405051728"))
        for x: UInt128 in [1, 16, 9232, 27, 3000, 4_372, big, big / 2, 7_777_777_777_777] {
            let got = try await store.numbersPassingThrough(x, after: nil, offset: 0, limit: 100_000)
            let want = try await expected.numbersPassingThrough(x, after: nil, offset: 0, limit: 100_000)
            #expect(got == want, "x = \(x)")
            let page = try await store.numbersPassingThrough(x, after: want.first, offset: 0, limit: 5)
            #expect(page == Array(want.dropFirst().prefix(5)), "x = \(x) paged")
            let offsetPage = try await store.numbersPassingThrough(x, after: nil, offset: 3, limit: 4)
            #expect(offsetPage == Array(want.dropFirst(3).prefix(4)), "x = \(x) offset")
        }
        #expect(try await store.numbersPassingThrough(.max, after: nil, offset: 0, limit: 10) == [])
        #expect(try await store.numbersPassingThrough(big + 1, after: nil, offset: 0, limit: 10) == [])

        for n: UInt64 in [1, 27, 837_799, 12_327_829_503, 99_999_999_999_999] {
            #expect(try await store.chain(of: n) == (try await expected.chain(of: n)), "chain of \(n)")
        }
        #expect(try await store.chain(of: 5_000).isEmpty)
        try await store.checkHealth()

        // After merges the table really is free of duplicates.
        _ = try await client.execute("OPTIMIZE TABLE \(schema.dataTable) FINAL")
        let total = try await client.execute("SELECT count() FROM \(schema.dataTable) FORMAT TabSeparated")
        #expect(Int(total.trimmingCharacters(in: .whitespacesAndNewlines)) == rows.count)
        #expect(try await store.longestChain() == expected.longestChain())

        // The API over the real store.
        let app = Application(router: AnswersApplication.makeRouter(store: store))
        try await app.test(.router) { http in
            try await http.execute(uri: "/highest_value", method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains(#""value": "20722398914405051728""#))
            }
            try await http.execute(uri: "/part/20722398914405051728", method: .get) { r throws in
                #expect(String(buffer: r.body).contains("\"numbers\": [12327829503]"))
            }
            try await http.execute(uri: "/plot/837799", method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("524 steps"))
            }
        }
    }

    @Test("ClickHouse down mid-run: the insert retries with backoff and lands once it is back",
          .enabled(if: ClickHouseTestServer.available), .timeLimit(.minutes(5)))
    func outage() async throws {
        let server = try ClickHouseTestServer()
        defer { server.stop() }
        let (_, _, inserter, store) = try await Self.setUp(server)
        try await inserter.insert(try Self.records(for: 1...100))

        server.kill()
        let failures = Counter()
        let rows = try Self.records(for: [27, 12_327_829_503])
        let pending = Task {
            try await inserter.insert(rows) { _, _ in failures.increment() }
        }
        try await Task.sleep(for: .seconds(2))
        #expect(failures.value >= 2, "retried while down")
        try await server.start()
        let attempts = try await pending.value
        #expect(attempts >= 3)
        #expect(try await store.highestValue()?.number == 12_327_829_503)
        #expect(try await store.chain(of: 27).count == 112)

        // A bounded policy gives up with the error; cancellation stops the retries.
        server.kill()
        var bounded = inserter
        bounded.retry = InsertRetryPolicy(initialDelay: .milliseconds(10), maxDelay: .milliseconds(20), maxAttempts: 3)
        await #expect(throws: ClickHouseError.self) { try await bounded.insert(rows) }
        let cancelled = Task { try await inserter.insert(rows) }
        try await Task.sleep(for: .milliseconds(300))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
    }

    @Test("insert throughput into 18.16 (RowBinary and TabSeparated, 200,000-row INSERTs)",
          .enabled(if: ClickHouseTestServer.available), .timeLimit(.minutes(5)))
    func throughput() async throws {
        let server = try ClickHouseTestServer()
        defer { server.stop() }
        let (client, schema, inserter, _) = try await Self.setUp(server)
        // ~1.2 M rows of real chains (start numbers near the top of the default range).
        let base: UInt64 = 99_999_999_000_000
        let rows = try Self.records(for: base..<(base + 4_000))
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        for format in ClickHouseInsertFormat.allCases {
            _ = try await client.execute("TRUNCATE TABLE \(schema.dataTable)")
            // Encoding (this debug build's cost) and ClickHouse's side, measured apart.
            let encodeStart = ContinuousClock.now
            var buffers = [ByteBuffer]()
            for chunk in stride(from: 0, to: rows.count, by: 200_000) {
                var buffer = ByteBuffer()
                format.encode(rows[chunk..<min(chunk + 200_000, rows.count)], into: &buffer)
                buffers.append(buffer)
            }
            let encode = seconds(ContinuousClock.now - encodeStart)
            let start = ContinuousClock.now
            for buffer in buffers {
                try await client.insert(table: schema.dataTable, columns: ["number", "step", "value", "value_text", "timestamp"],
                                        format: format.rawValue, data: buffer)
            }
            let insert = seconds(ContinuousClock.now - start)
            let bytes = buffers.reduce(0) { $0 + $1.readableBytes }
            print("""
                ClickHouse 18.16 \(format.rawValue): \(rows.count) rows (\(bytes / rows.count) B/row), \
                INSERTs of 200,000 rows into data_series + 2 materialized views: \
                \(Int(Double(rows.count) / insert)) rows/s; encoding here: \(Int(Double(rows.count) / encode)) rows/s
                """)
            let count = try await client.execute("SELECT count() FROM \(schema.dataTable) FORMAT TabSeparated")
            #expect(Int(count.trimmingCharacters(in: .whitespacesAndNewlines)) == rows.count)
        }
        _ = inserter
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
