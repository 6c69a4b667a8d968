@testable import AnswersAPI
import CZlib
import Collatz
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The answers API against the in-memory store: no ClickHouse needed.
@Suite("Answers API (Hummingbird, fake store)")
struct AnswersAPITests {
    struct StoreDown: Error, CustomStringConvertible { var description: String { "connection refused" } }

    static func app(_ store: some AnswersStore) -> some ApplicationProtocol {
        Application(router: AnswersApplication.makeRouter(store: store, configuration: .init(defaultPageSize: 3, maxPageSize: 50)))
    }

    static let store: InMemoryAnswersStore = try! InMemoryAnswersStore(startNumbers: [1, 3, 6, 7, 27, 97, 12_327_829_503])

    static func json(_ r: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
    }

    @Test("the four questions")
    func fourQuestions() async throws {
        try await Self.app(Self.store).test(.router) { client in
            try await client.execute(uri: "/longest_step_chain", method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "application/json")
                let body = try Self.json(r)
                #expect(body["number"] as? Int == 12_327_829_503)
                #expect(body["steps"] as? Int == 543)
            }
            try await client.execute(uri: "/highest_value", method: .get) { r throws in
                #expect(r.status == .ok)
                let body = try Self.json(r)
                #expect(body["number"] as? Int == 12_327_829_503)
                #expect(body["value"] as? String == "20722398914405051728")  // above 2^53: a string
                #expect(body["value_decimal"] as? String == "20722398914405051728")
            }
            try await client.execute(uri: "/part/9232", method: .get) { r throws in
                #expect(r.status == .ok)
                let body = try Self.json(r)
                #expect(body["numbers"] as? [Int] == [27, 97])
                #expect(body["count"] as? Int == 2)
                #expect(body["next_after"] is NSNull)
            }
            try await client.execute(uri: "/plot/27", method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "image/svg+xml")
                let svg = String(buffer: r.body)
                #expect(svg.hasPrefix("<?xml"))
                #expect(svg.contains("Collatz chain of 27: 111 steps, peak 9232 at step 77"))
                #expect(svg.contains(">step</text>") && svg.contains(">value</text>"))
                #expect(svg.components(separatedBy: "<circle").count - 1 == 113)  // 112 points + the peak
                let parsed = XMLDocumentCheck(svg)
                #expect(parsed.ok, "SVG is not well-formed XML: \(parsed.error ?? "")")
            }
            try await client.execute(uri: "/plot/12327829503?scale=log", method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("peak 20722398914405051728"))
                #expect(XMLDocumentCheck(String(buffer: r.body)).ok)
            }
        }
    }

    @Test("PNG plots: signature, IHDR, CRCs, rows that inflate to width × height, the line drawn", arguments: [
        ("/plot/27?format=png", UInt64(27)),
        ("/plot/12327829503?format=png&scale=log", UInt64(12_327_829_503)),
        ("/plot/97?format=PNG", UInt64(97)),
    ])
    func pngPlot(uri: String, number: UInt64) async throws {
        try await Self.app(Self.store).test(.router) { client in
            try await client.execute(uri: uri, method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "image/png")
                let png = try PNGCheck(Array(buffer: r.body))
                #expect(png.width == 960 && png.height == 540)
                #expect(png.bitDepth == 8 && png.colorType == 2)
                // What the SVG draws, at the same places.
                let chain = try CollatzChain.values(from: UInt128(number)).enumerated().map { ChainStep(step: UInt64($0), value: $1) }
                let plot = ChainPlot(number: number, steps: chain, logScale: uri.contains("log"))
                let g = plot.geometry()
                var onLine = 0
                for (i, step) in chain.enumerated() {
                    let x = Int(plot.px(Double(step.step), g)), y = Int(plot.py(g.yValues[i], g))
                    let p = png.pixel(min(x, png.width - 1), min(y, png.height - 1))
                    if Int(p.r) + Int(p.g) + Int(p.b) < 3 * 200 { onLine += 1 }
                }
                #expect(onLine == chain.count, "\(chain.count - onLine) of \(chain.count) chain points are not drawn")
                let peak = png.pixel(Int(plot.px(Double(g.peak.step), g)), Int(plot.py(g.peakY, g)))
                #expect(peak.r > 150 && peak.g < 100 && peak.b < 100, "the peak marker is red: \(peak)")
                // Title, tick labels and axis labels: dark pixels in their bands.
                #expect(png.darkPixels(x: 0..<960, y: 10..<35) > 200, "title")
                #expect(png.darkPixels(x: 110..<930, y: 482..<500) > 50, "x tick labels")
                #expect(png.darkPixels(x: 0..<100, y: 60..<470) > 100, "y tick labels and the value axis label")
                #expect(png.darkPixels(x: 440..<560, y: 505..<521) > 20, "the step axis label")
                // Mostly white background.
                #expect(png.darkPixels(x: 0..<960, y: 0..<540) < 960 * 540 / 10)
            }
        }
    }

    @Test("the PNG font draws every character the charts use; unknown ones as '?'")
    func bitmapFont() {
        for ch in "0123456789.,:-+^()/=?!_' abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
            let rows = BitmapFont.glyph(ch)
            #expect(rows.count == 7 || rows.count == 9, "\(ch)")
            #expect(rows.allSatisfy { $0 < 32 }, "\(ch)")
            #expect(ch == " " || rows.contains { $0 != 0 }, "\(ch)")
        }
        #expect(BitmapFont.glyph("€") == BitmapFont.glyph("?"))
        #expect(BitmapFont.width(of: "abc", scale: 2) == 34)
    }

    @Test("pagination: x itself is excluded, next_after walks the pages")
    func pagination() async throws {
        let store = try InMemoryAnswersStore(startNumbers: 1...200)
        let expected = try await store.numbersPassingThrough(16, after: nil, offset: 0, limit: 1000)
        #expect(expected.count > 10)
        #expect(!expected.contains(16))
        try await Self.app(store).test(.router) { client in
            var seen = [Int]()
            var after: Int?
            var pages = 0
            repeat {
                let uri = "/part/16?limit=7" + (after.map { "&after=\($0)" } ?? "")
                let body = try await client.execute(uri: uri, method: .get) { r throws in
                    #expect(r.status == .ok)
                    return try Self.json(r)
                }
                seen += body["numbers"] as? [Int] ?? []
                after = body["next_after"] as? Int
                pages += 1
            } while after != nil && pages < 100
            #expect(seen == expected.map { Int($0) })
            // The same walk with page=.
            var byPage = [Int]()
            var page: Int? = 1
            while let p = page, p < 100 {
                let body = try await client.execute(uri: "/part/16?limit=4&page=\(p)", method: .get) { r throws in
                    #expect(r.status == .ok)
                    return try Self.json(r)
                }
                #expect(body["page"] as? Int == p)
                byPage += body["numbers"] as? [Int] ?? []
                page = body["next_page"] as? Int
            }
            #expect(byPage == expected.map { Int($0) })
            // The default page size (3 here).
            try await client.execute(uri: "/part/16", method: .get) { r throws in
                #expect(try Self.json(r)["count"] as? Int == 3)
            }
        }
    }

    @Test("hostile parameters get a 400 with a JSON reason", arguments: [
        ("/part/abc", "decimal integer"),
        ("/part/-5", "must not be negative"),
        ("/part/0", "at least 1"),
        ("/part/1.5", "decimal integer"),
        ("/part/0x10", "decimal integer"),
        ("/part/1e5", "decimal integer"),
        ("/part/%20", "decimal integer"),
        ("/part/%3Cb%3E", "decimal integer"),
        ("/part/340282366920938463463374607431768211456", "too large"),
        ("/part/" + String(repeating: "9", count: 5000), "too large"),
        ("/part/16?limit=0", "limit"),
        ("/part/16?limit=51", "too large"),
        ("/part/16?limit=", "empty"),
        ("/part/16?after=-1", "negative"),
        ("/part/16?page=0", "at least 1"),
        ("/part/16?page=abc", "decimal integer"),
        ("/part/16?page=99999999999999999999", "too large"),
        ("/part/16?page=500000&limit=50", "use after="),
        ("/part/16?after=18446744073709551616", "too large"),
        ("/plot/0", "at least 1"),
        ("/plot/18446744073709551616", "too large"),
        ("/plot/%F0%9F%90%A6", "decimal integer"),
        ("/plot/27?format=gif", "not supported"),
        ("/plot/27?format=png%00", "not supported"),
        ("/plot/27?format=%3Cscript%3E", "not supported"),
        ("/plot/27?scale=cubic", "not supported"),
    ])
    func badParameters(uri: String, reason: String) async throws {
        try await Self.app(Self.store).test(.router) { client in
            try await client.execute(uri: uri, method: .get) { r throws in
                #expect(r.status == .badRequest, "\(uri)")
                #expect(r.headers[.contentType] == "application/json")
                let body = try Self.json(r)
                #expect(body["status"] as? Int == 400)
                let message = body["error"] as? String ?? ""
                #expect(message.contains(reason), "\(uri): \(message)")
                #expect(!message.contains("<script>"))
            }
        }
    }

    @Test("unknown numbers and paths are 404 with a JSON body; an empty store is 404")
    func notFound() async throws {
        try await Self.app(Self.store).test(.router) { client in
            for uri in ["/plot/28", "/nope", "/part/", "/plot", "/part/16/extra"] {
                try await client.execute(uri: uri, method: .get) { r throws in
                    #expect(r.status == .notFound, "\(uri)")
                    #expect(try Self.json(r)["status"] as? Int == 404, "\(uri)")
                }
            }
        }
        try await Self.app(InMemoryAnswersStore(chains: [:])).test(.router) { client in
            for uri in ["/longest_step_chain", "/highest_value"] {
                try await client.execute(uri: uri, method: .get) { r throws in #expect(r.status == .notFound) }
            }
            try await client.execute(uri: "/part/5", method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(try Self.json(r)["numbers"] as? [Int] == [])
            }
        }
    }

    @Test("a store that is down: 503 with the reason, /healthz too")
    func storeDown() async throws {
        let store = InMemoryAnswersStore(chains: [:], failure: StoreDown())
        try await Self.app(store).test(.router) { client in
            for uri in ["/longest_step_chain", "/highest_value", "/part/5", "/plot/5", "/healthz"] {
                try await client.execute(uri: uri, method: .get) { r throws in
                    #expect(r.status == .serviceUnavailable, "\(uri)")
                    #expect((try Self.json(r)["error"] as? String)?.contains("connection refused") == true)
                }
            }
        }
        try await Self.app(Self.store).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(try Self.json(r)["status"] as? String == "ok")
            }
        }
    }

    @Test("OpenAPI document, Swagger UI page and metrics")
    func documentation() async throws {
        try await Self.app(Self.store).test(.router) { client in
            try await client.execute(uri: "/openapi.json", method: .get) { r throws in
                #expect(r.status == .ok)
                let doc = try Self.json(r)
                #expect(doc["openapi"] as? String == "3.0.3")
                let paths = try #require(doc["paths"] as? [String: Any])
                for path in ["/longest_step_chain", "/highest_value", "/part/{x}", "/plot/{n}", "/healthz", "/metrics"] {
                    #expect(paths[path] != nil, "\(path)")
                }
            }
            try await client.execute(uri: "/docs", method: .get) { r throws in
                #expect(r.status == .ok)
                let page = String(buffer: r.body)
                #expect(page.contains("SwaggerUIBundle") && page.contains("openapi.json"))
            }
            _ = try await client.execute(uri: "/plot/27", method: .get)
            _ = try await client.execute(uri: "/part/x", method: .get)
            try await client.execute(uri: "/metrics", method: .get) { r throws in
                let text = String(buffer: r.body)
                #expect(text.contains(#"petrel_api_requests_total{route="/plot/{n}",status="200"} 1"#), "\(text)")
                #expect(text.contains(#"petrel_api_requests_total{route="/part/{x}",status="400"} 1"#), "\(text)")
                #expect(text.contains("petrel_api_request_duration_seconds_bucket"))
            }
        }
    }
}

/// Well-formedness check with Foundation's XML parser.
struct XMLDocumentCheck {
    var ok: Bool
    var error: String?
    init(_ text: String) {
        #if canImport(FoundationXML)
        let parser = FoundationXML.XMLParser(data: Data(text.utf8))
        #else
        let parser = XMLParser(data: Data(text.utf8))
        #endif
        ok = parser.parse()
        error = parser.parserError.map { "\($0)" }
    }
}
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A strict PNG reader for the tests: signature, chunk lengths and CRCs, IHDR, the IDAT stream
/// inflated with zlib to exactly height rows of 1 + 3 × width bytes, filter type 0.
struct PNGCheck {
    struct Invalid: Error, CustomStringConvertible { var description: String }

    var width = 0, height = 0, bitDepth = 0, colorType = 0
    var rows = [UInt8]()

    init(_ bytes: [UInt8]) throws {
        guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw Invalid(description: "no PNG signature") }
        var i = 8
        var idat = [UInt8]()
        var types = [String]()
        func u32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        while i + 12 <= bytes.count {
            let length = u32(i)
            guard i + 12 + length <= bytes.count else { throw Invalid(description: "chunk past the end") }
            let type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
            let data = Array(bytes[(i + 8)..<(i + 8 + length)])
            let crc = Array(bytes[(i + 4)..<(i + 8 + length)]).withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            guard crc == UInt32(u32(i + 8 + length)) else { throw Invalid(description: "bad CRC in \(type)") }
            types.append(type)
            if type == "IHDR" {
                width = u32(i + 8)
                height = u32(i + 12)
                bitDepth = Int(data[8])
                colorType = Int(data[9])
                guard data[10] == 0, data[11] == 0, data[12] == 0 else { throw Invalid(description: "IHDR methods") }
            } else if type == "IDAT" {
                idat += data
            }
            i += 12 + length
        }
        guard types.first == "IHDR", types.last == "IEND", i == bytes.count else { throw Invalid(description: "chunks \(types)") }
        let stride = 1 + 3 * width
        var out = [UInt8](repeating: 0, count: stride * height + 1)
        var outLength = uLong(out.count)
        let rc = out.withUnsafeMutableBufferPointer { dst in
            idat.withUnsafeBufferPointer { src in uncompress(dst.baseAddress, &outLength, src.baseAddress, uLong(src.count)) }
        }
        guard rc == Z_OK else { throw Invalid(description: "IDAT does not inflate (\(rc))") }
        guard Int(outLength) == stride * height else { throw Invalid(description: "IDAT inflates to \(outLength) bytes, not \(stride * height)") }
        for y in 0..<height where out[y * stride] != 0 { throw Invalid(description: "row \(y) filter \(out[y * stride])") }
        rows = Array(out.prefix(stride * height))
    }

    func pixel(_ x: Int, _ y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = y * (1 + 3 * width) + 1 + 3 * x
        return (rows[i], rows[i + 1], rows[i + 2])
    }

    func darkPixels(x: Range<Int>, y: Range<Int>) -> Int {
        var n = 0
        for yy in y { for xx in x { let p = pixel(xx, yy); if Int(p.r) + Int(p.g) + Int(p.b) < 300 { n += 1 } } }
        return n
    }
}
