@testable import AnswersAPI
import CZlib
import Collatz
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServiceLifecycle
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `/docs` and the plots in a real browser: the answers API listens on a free loopback port
/// (fake store), Debian's headless Chromium loads the pages, and the screenshots are decoded
/// and looked at. Swagger UI's files come from the PyPI package swagger-ui-bundle through
/// `--swagger-ui-dir` (no internet here). Skipped with a printed reason when Chromium or the
/// files are missing, unless PETREL_CI=1 (then the test fails).
@Suite("Browser rendering (headless Chromium)", .serialized)
struct BrowserRenderTests {
    static let store: InMemoryAnswersStore = try! InMemoryAnswersStore(startNumbers: [1, 3, 6, 7, 27, 97])

    @Test("/docs: Swagger UI runs from the local files and draws every operation",
          .enabled(if: BrowserEnvironment.available(swaggerUI: true)), .timeLimit(.minutes(5)))
    func swaggerUI() async throws {
        try BrowserEnvironment.requirePresent(swaggerUI: true)
        let chromium = try #require(BrowserEnvironment.chromium)
        let assets = try #require(BrowserEnvironment.swaggerUIDirectory)
        let metrics = APIMetrics()
        try await LiveAnswersAPI.run(store: Self.store, swaggerUIDirectory: assets, metrics: metrics) { base in
            // The operations are not in the page: only Swagger UI's JavaScript puts them there.
            let page = OpenAPIDocument.swaggerPage(assetBase: SwaggerUIAssets.localBase)
            #expect(!page.contains("longest_step_chain") && !page.contains("unpkg.com"))

            let dom = try await chromium.dumpDOM(url: base + "/docs")
            let mounted = dom.contains(#"<div class="swagger-ui">"#), titled = dom.contains("Petrel Collatz answers API")
            #expect(mounted, "Swagger UI did not mount; the DOM: \(dom.prefix(1500))")
            #expect(titled, "no title from openapi.json")
            let paths = ["/longest_step_chain", "/highest_value", "/part/{x}", "/plot/{n}", "/healthz", "/metrics"]
            let missing = paths.filter { !dom.contains(#"data-path="\#($0)""#) }
            #expect(missing.isEmpty, "operations not rendered: \(missing)")

            let shot = try await chromium.screenshot(url: base + "/docs")
            #expect(shot.width == 1280 && shot.height == 900)
            #expect(shot.distinctColours(limit: 1000) > 50, "one flat page: \(shot.distinctColours(limit: 1000)) colours")
            let share = Double(shot.count { r, g, b in Int(r) + Int(g) + Int(b) < 3 * 250 }) / Double(shot.width * shot.height)
            #expect(share > 0.10, "only \(Int(share * 100))% of the pixels are not white")
            // Text (the title, paths, summaries) and the blue GET badges of swagger-ui.css.
            #expect(shot.count { r, g, b in Int(r) + Int(g) + Int(b) < 300 } > 2_000, "no text drawn")
            let getBlue = shot.count { r, g, b in abs(Int(r) - 97) < 16 && abs(Int(g) - 175) < 16 && abs(Int(b) - 254) < 16 }
            #expect(getBlue > 5_000, "GET badges (#61affe): \(getBlue) pixels; the stylesheet did not apply")
        }
        // The browser took the files from this server, not from a CDN.
        let text = await metrics.render()
        #expect(text.contains(#"petrel_api_requests_total{route="/docs/{file}",status="200"}"#), "\(text)")
        #expect(text.contains(#"petrel_api_requests_total{route="/openapi.json",status="200"}"#), "\(text)")
    }

    @Test("/plot/27 (SVG and PNG) in the browser: every point of the chain, the axes, the labels and the red peak",
          .enabled(if: BrowserEnvironment.available(swaggerUI: false)), .timeLimit(.minutes(5)))
    func plot() async throws {
        try BrowserEnvironment.requirePresent(swaggerUI: false)
        let chromium = try #require(BrowserEnvironment.chromium)
        let chain = try CollatzChain.values(from: 27).enumerated().map { ChainStep(step: UInt64($0), value: $1) }
        let plot = ChainPlot(number: 27, steps: chain)
        let g = plot.geometry()
        let isLine: @Sendable (UInt8, UInt8, UInt8) -> Bool = { r, g, b in Int(b) - Int(r) > 40 }  // #1f77b4 and its anti-aliased edges
        let isPeak: @Sendable (UInt8, UInt8, UInt8) -> Bool = { r, g, b in r > 150 && g < 100 && b < 100 }  // #d62728
        let isDark: @Sendable (UInt8, UInt8, UInt8) -> Bool = { r, g, b in Int(r) + Int(g) + Int(b) < 300 }
        // A black 1-pixel line on a whole coordinate is anti-aliased over two grey rows in the SVG.
        let isAxis: @Sendable (UInt8, UInt8, UInt8) -> Bool = { r, g, b in max(r, g, b) < 200 && Int(max(r, g, b)) - Int(min(r, g, b)) < 30 }
        let isWhite: @Sendable (UInt8, UInt8, UInt8) -> Bool = { r, g, b in r > 240 && g > 240 && b > 240 }
        try await LiveAnswersAPI.run(store: Self.store, swaggerUIDirectory: nil, metrics: APIMetrics()) { base in
            // An SVG document is drawn at the top left of a white page; an image alone is
            // centred on a dark background.
            for (uri, ox, oy) in [("/plot/27", 0, 0), ("/plot/27?format=png", (1280 - 960) / 2, (900 - 540) / 2)] {
                let shot = try await chromium.screenshot(url: base + uri)
                #expect(shot.width == 1280 && shot.height == 900)
                let chart = (x: ox..<(ox + 960), y: oy..<(oy + 540))
                let white = shot.count(x: chart.x, y: chart.y, where: isWhite)
                #expect(white > 960 * 540 * 3 / 4, "\(uri): \(white) white pixels where the chart should be")
                var missed = [UInt64]()
                for (i, step) in chain.enumerated() {
                    let x = ox + Int(plot.px(Double(step.step), g).rounded()), y = oy + Int(plot.py(g.yValues[i], g).rounded())
                    if !shot.any(nearX: x, y: y, radius: 2, where: isLine) && !shot.any(nearX: x, y: y, radius: 5, where: isPeak) {
                        missed.append(step.step)
                    }
                }
                #expect(missed.isEmpty, "\(uri): no line at steps \(missed.prefix(20)) of \(chain.count)")
                let peakX = ox + Int(plot.px(Double(g.peak.step), g).rounded()), peakY = oy + Int(plot.py(g.peakY, g).rounded())
                #expect(shot.count(x: (peakX - 4)..<(peakX + 5), y: (peakY - 4)..<(peakY + 5), where: isPeak) >= 9, "\(uri): the red peak marker")
                // The axes: a black line along the bottom and the left of the plot area.
                let axisY = oy + Int(plot.top + g.plotH), axisX = ox + Int(plot.left)
                let xAxis = shot.count(x: axisX..<(axisX + Int(g.plotW)), y: (axisY - 1)..<(axisY + 2), where: isAxis)
                let yAxis = shot.count(x: (axisX - 1)..<(axisX + 2), y: (oy + Int(plot.top))..<axisY, where: isAxis)
                #expect(xAxis > Int(g.plotW * 0.9) && yAxis > Int(g.plotH * 0.9), "\(uri): axes \(xAxis), \(yAxis) dark pixels")
                // Text: the title, the tick labels under the x axis, the value axis label.
                #expect(shot.count(x: chart.x, y: oy..<(oy + 40), where: isDark) > 200, "\(uri): title")
                #expect(shot.count(x: chart.x, y: (axisY + 8)..<(axisY + 30), where: isDark) > 50, "\(uri): x tick labels")
                #expect(shot.count(x: ox..<(axisX - 8), y: (oy + Int(plot.top))..<axisY, where: isDark) > 100, "\(uri): y tick labels")
            }
        }
    }
}

/// The Swagger UI file routes without a browser (a directory of stand-in files).
@Suite("Swagger UI files from --swagger-ui-dir")
struct SwaggerUIAssetTests {
    static func withAssets(_ body: (String) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-swagger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "/* css */ .swagger-ui {}".write(to: dir.appendingPathComponent("swagger-ui.css"), atomically: true, encoding: .utf8)
        try "window.SwaggerUIBundle = function () {};".write(to: dir.appendingPathComponent("swagger-ui-bundle.js"), atomically: true, encoding: .utf8)
        try "secret".write(to: dir.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try await body(dir.path)
    }

    static func app(swaggerUIDirectory: String?) -> some ApplicationProtocol {
        Application(router: AnswersApplication.makeRouter(
            store: BrowserRenderTests.store, configuration: .init(swaggerUIDirectory: swaggerUIDirectory)))
    }

    @Test("known names with their Content-Type; anything else, a missing file or a traversal: JSON 404")
    func routes() async throws {
        try await Self.withAssets { dir in
            #expect(SwaggerUIAssets.missing(in: dir) == [])
            #expect(SwaggerUIAssets.missing(in: dir + "/nope") == ["swagger-ui.css", "swagger-ui-bundle.js"])
            try await Self.app(swaggerUIDirectory: dir).test(.router) { client in
                try await client.execute(uri: "/docs", method: .get) { r throws in
                    let page = String(buffer: r.body)
                    #expect(page.contains(#"href="docs/swagger-ui.css""#) && page.contains(#"src="docs/swagger-ui-bundle.js""#))
                    #expect(!page.contains("unpkg.com"))
                }
                try await client.execute(uri: "/docs/swagger-ui.css", method: .get) { r throws in
                    #expect(r.status == .ok)
                    #expect(r.headers[.contentType] == "text/css; charset=utf-8")
                    #expect(String(buffer: r.body) == "/* css */ .swagger-ui {}")
                }
                try await client.execute(uri: "/docs/swagger-ui-bundle.js", method: .get) { r throws in
                    #expect(r.status == .ok)
                    #expect(r.headers[.contentType] == "text/javascript; charset=utf-8")
                    #expect(String(buffer: r.body).contains("SwaggerUIBundle"))
                }
                for uri in ["/docs/favicon-32x32.png", "/docs/index.html", "/docs/..%2F..%2Fetc%2Fpasswd", "/docs/../../etc/passwd",
                            "/docs/%2Fetc%2Fpasswd", "/docs/swagger-ui.css%00", "/docs/swagger-ui.css/x", "/docs/.."] {
                    try await client.execute(uri: uri, method: .get) { r throws in
                        #expect(r.status == .notFound, "\(uri)")
                        #expect(r.headers[.contentType] == "application/json", "\(uri)")
                        let body = String(buffer: r.body)
                        #expect(body.contains(#""status": 404"#), "\(uri): \(body)")
                        #expect(!body.contains("secret") && !body.contains("root:"), "\(uri): \(body)")
                    }
                }
            }
        }
    }

    @Test("without a directory /docs uses the CDN and serves no files")
    func cdn() async throws {
        try await Self.app(swaggerUIDirectory: nil).test(.router) { client in
            try await client.execute(uri: "/docs", method: .get) { r throws in
                #expect(String(buffer: r.body).contains("https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"))
            }
            try await client.execute(uri: "/docs/swagger-ui.css", method: .get) { r throws in
                #expect(r.status == .notFound)
                #expect(r.headers[.contentType] == "application/json")
            }
        }
    }
}

/// Chromium and Swagger UI's files: where they are, and whether a missing one skips or fails.
enum BrowserEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static let requireEverything = environment["PETREL_CI"] == "1"

    static let chromium: Chromium? = {
        for name in ["chromium", "chromium-browser"] {
            for dir in (environment["PATH"] ?? "").split(separator: ":") + ["/usr/bin"] {
                let path = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: path) { return Chromium(path: path) }
            }
        }
        return nil
    }()

    /// `API_SWAGGER_UI_DIR`, else the folder of the installed PyPI package swagger-ui-bundle.
    static let swaggerUIDirectory: String? = {
        if let dir = environment["API_SWAGGER_UI_DIR"], !dir.isEmpty { return SwaggerUIAssets.missing(in: dir).isEmpty ? dir : nil }
        let probe = try? ProcessRunner.run(
            "/usr/bin/env", ["python3", "-c", "import swagger_ui_bundle; print(swagger_ui_bundle.swagger_ui_path)"], timeout: .seconds(60))
        guard let probe, probe.status == 0 else { return nil }
        let dir = probe.output.trimmingCharacters(in: .whitespacesAndNewlines)
        return !dir.isEmpty && SwaggerUIAssets.missing(in: dir).isEmpty ? dir : nil
    }()

    static let chromiumMissing: String? = chromium == nil ? "chromium (apt-get install -y chromium)" : nil
    static let swaggerUIMissing: String? = swaggerUIDirectory == nil
        ? "Swagger UI's files (pip install swagger-ui-bundle==1.1.0, or API_SWAGGER_UI_DIR=a swagger-ui-dist folder)" : nil

    /// What a test needs and is not there (nil: nothing).
    static func missing(swaggerUI: Bool) -> String? {
        let missing = [chromiumMissing, swaggerUI ? swaggerUIMissing : nil].compactMap { $0 }
        return missing.isEmpty ? nil : missing.joined(separator: ", ")
    }

    /// Enabled when nothing is missing, or under PETREL_CI=1 (so that the test fails).
    static func available(swaggerUI: Bool) -> Bool {
        guard let missing = missing(swaggerUI: swaggerUI) else { return true }
        if requireEverything {
            print("PETREL_CI=1: running although \(missing) is missing, so that the test fails")
            return true
        }
        print("SKIP: browser tests need \(missing) (set PETREL_CI=1 to make this a failure)")
        return false
    }

    struct Missing: Error, CustomStringConvertible { var description: String }

    /// Under PETREL_CI=1 a test runs even when its tools are missing: fail it with the reason.
    static func requirePresent(swaggerUI: Bool) throws {
        if let missing = missing(swaggerUI: swaggerUI) { throw Missing(description: "missing: \(missing)") }
    }
}

/// The answers API on 127.0.0.1 and a port the kernel picked, for the duration of `body`.
enum LiveAnswersAPI {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func run(store: some AnswersStore, swaggerUIDirectory: String?, metrics: APIMetrics,
                    _ body: @Sendable (String) async throws -> Void) async throws {
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let router = AnswersApplication.makeRouter(
            store: store, configuration: .init(swaggerUIDirectory: swaggerUIDirectory), metrics: metrics)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "petrel-api"),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? 0)
                portSink.finish()
            })
        let group = ServiceGroup(configuration: .init(services: [app], logger: app.logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { portSink.finish() }  // a server that fails to start ends the wait below
                try await group.run()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else {
                await group.triggerGracefulShutdown()
                throw Failure(description: "the API did not start")
            }
            do {
                try await body("http://127.0.0.1:\(port)")
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

/// Debian's Chromium, headless, one fresh profile per run.
struct Chromium: Sendable {
    let path: String

    struct Failure: Error, CustomStringConvertible { var description: String }

    func arguments(_ extra: [String], profile: URL) -> [String] {
        ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--no-proxy-server", "--user-data-dir=\(profile.path)",
         "--window-size=1280,900", "--virtual-time-budget=5000"] + extra
    }

    func withProfile<T>(_ body: (URL) async throws -> T) async throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        return try await body(dir)
    }

    func screenshot(url: String) async throws -> DecodedPNG {
        try await withProfile { dir in
            let file = dir.appendingPathComponent("screenshot.png")
            let result = try await ProcessRunner.runAsync(path, arguments(["--screenshot=\(file.path)", url], profile: dir.appendingPathComponent("profile")),
                                                          timeout: .seconds(120))
            guard let bytes = FileManager.default.contents(atPath: file.path) else {
                throw Failure(description: "chromium wrote no screenshot of \(url) (exit \(result.status)): \(result.errors.suffix(3000))")
            }
            return try DecodedPNG([UInt8](bytes))
        }
    }

    func dumpDOM(url: String) async throws -> String {
        try await withProfile { dir in
            let result = try await ProcessRunner.runAsync(path, arguments(["--dump-dom", url], profile: dir.appendingPathComponent("profile")),
                                                          timeout: .seconds(120))
            guard result.status == 0, !result.output.isEmpty else {
                throw Failure(description: "chromium --dump-dom \(url) failed (exit \(result.status)): \(result.errors.suffix(3000))")
            }
            return result.output
        }
    }
}

/// Runs a process with its output in files (no pipe to fill up), killed after `timeout`.
enum ProcessRunner {
    struct Result { var status: Int32; var output: String; var errors: String }
    struct Timeout: Error, CustomStringConvertible { var description: String }

    static func start(_ executable: String, _ arguments: [String]) throws -> (Process, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petrel-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let out = dir.appendingPathComponent("out"), err = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, dir)
    }

    static func finish(_ p: Process, _ dir: URL, timedOut: Bool, what: String) throws -> Result {
        defer { try? FileManager.default.removeItem(at: dir) }
        if timedOut {
            p.terminate()
            Thread.sleep(forTimeInterval: 1)
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            throw Timeout(description: "\(what) did not finish in time")
        }
        p.waitUntilExit()
        let read = { (name: String) in (try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? "" }
        return Result(status: p.terminationStatus, output: read("out"), errors: read("err"))
    }

    /// Blocking; for the one-off probes.
    static func run(_ executable: String, _ arguments: [String], timeout: Duration) throws -> Result {
        let (p, dir) = try start(executable, arguments)
        let deadline = ContinuousClock.now + timeout
        while p.isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
        return try finish(p, dir, timedOut: p.isRunning, what: "\(executable) \(arguments.prefix(2))")
    }

    /// Polls without blocking a thread of the cooperative pool.
    static func runAsync(_ executable: String, _ arguments: [String], timeout: Duration) async throws -> Result {
        let (p, dir) = try start(executable, arguments)
        let deadline = ContinuousClock.now + timeout
        while p.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return try finish(p, dir, timedOut: p.isRunning, what: "\(executable) \(arguments.last ?? "")")
    }
}

/// A PNG reader for browser screenshots: 8-bit RGB or RGBA, non-interlaced, all five row
/// filters, CRCs checked (the plot tests' `PNGCheck` takes only the filter-0 RGB the API writes).
struct DecodedPNG {
    struct Invalid: Error, CustomStringConvertible { var description: String }

    let width: Int, height: Int, channels: Int
    /// Unfiltered rows, `channels` bytes per pixel.
    let pixels: [UInt8]

    init(_ bytes: [UInt8]) throws {
        guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw Invalid(description: "no PNG signature") }
        func u32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        var i = 8, idat = [UInt8](), types = [String]()
        var header: [UInt8] = []
        while i + 12 <= bytes.count {
            let length = u32(i)
            guard i + 12 + length <= bytes.count else { throw Invalid(description: "chunk past the end") }
            let type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
            let crc = bytes[(i + 4)..<(i + 8 + length)].withContiguousStorageIfAvailable { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
                ?? Array(bytes[(i + 4)..<(i + 8 + length)]).withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            guard crc == UInt32(u32(i + 8 + length)) else { throw Invalid(description: "bad CRC in \(type)") }
            types.append(type)
            if type == "IHDR" { header = Array(bytes[(i + 8)..<(i + 8 + length)]) }
            if type == "IDAT" { idat += bytes[(i + 8)..<(i + 8 + length)] }
            i += 12 + length
        }
        guard types.first == "IHDR", types.last == "IEND", header.count == 13 else { throw Invalid(description: "chunks \(types)") }
        width = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        height = Int(header[4]) << 24 | Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
        guard header[8] == 8, header[9] == 2 || header[9] == 6, header[10] == 0, header[11] == 0, header[12] == 0 else {
            throw Invalid(description: "not 8-bit RGB/RGBA non-interlaced: IHDR \(header)")
        }
        guard width > 0, height > 0, width <= 10_000, height <= 10_000 else { throw Invalid(description: "size \(width) × \(height)") }
        channels = header[9] == 2 ? 3 : 4
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height + 1)
        var rawLength = uLong(raw.count)
        let rc = raw.withUnsafeMutableBufferPointer { dst in
            idat.withUnsafeBufferPointer { src in uncompress(dst.baseAddress, &rawLength, src.baseAddress, uLong(src.count)) }
        }
        guard rc == Z_OK, Int(rawLength) == (stride + 1) * height else {
            throw Invalid(description: "IDAT inflates to \(rawLength) bytes (zlib \(rc)), not \((stride + 1) * height)")
        }
        var out = [UInt8](repeating: 0, count: stride * height)
        let bpp = channels
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            let src = y * (stride + 1) + 1, row = y * stride, up = row - stride
            for x in 0..<stride {
                let a = x >= bpp ? Int(out[row + x - bpp]) : 0
                let b = y > 0 ? Int(out[up + x]) : 0
                let c = x >= bpp && y > 0 ? Int(out[up + x - bpp]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw Invalid(description: "row \(y): filter \(filter)")
                }
                out[row + x] = UInt8(truncatingIfNeeded: Int(raw[src + x]) + predictor)
            }
        }
        pixels = out
    }

    func pixel(_ x: Int, _ y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * channels
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    func count(x: Range<Int>? = nil, y: Range<Int>? = nil, where match: (UInt8, UInt8, UInt8) -> Bool) -> Int {
        var n = 0
        for yy in (y ?? 0..<height).clamped(to: 0..<height) {
            for xx in (x ?? 0..<width).clamped(to: 0..<width) {
                let p = pixel(xx, yy)
                if match(p.r, p.g, p.b) { n += 1 }
            }
        }
        return n
    }

    func any(nearX x: Int, y: Int, radius: Int, where match: (UInt8, UInt8, UInt8) -> Bool) -> Bool {
        count(x: (x - radius)..<(x + radius + 1), y: (y - radius)..<(y + radius + 1), where: match) > 0
    }

    /// Distinct colours, counted up to `limit`.
    func distinctColours(limit: Int) -> Int {
        var seen = Set<UInt32>()
        for yy in 0..<height {
            for xx in 0..<width {
                let p = pixel(xx, yy)
                seen.insert(UInt32(p.r) << 16 | UInt32(p.g) << 8 | UInt32(p.b))
                if seen.count >= limit { return limit }
            }
        }
        return seen.count
    }
}
