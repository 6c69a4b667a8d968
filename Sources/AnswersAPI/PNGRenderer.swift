import CZlib
import Foundation

// `GET /plot/{n}?format=png`: the same chart as the SVG, rasterised here in pure Swift (an RGB
// canvas, antialiased strokes and discs, a built-in 5×7 bitmap font) and encoded as a PNG with
// zlib's deflate and CRC-32 (the CZlib system library KafkaProtocol's gzip uses).

extension ChainPlot {
    static let chainColor = RGB(0x1f, 0x77, 0xb4)
    static let peakColor = RGB(0xd6, 0x27, 0x28)
    static let gridColor = RGB(0xe5, 0xe5, 0xe5)

    /// The chart as PNG bytes (960 × 540, 8-bit RGB).
    func png() -> [UInt8] {
        var canvas = Raster(width: Int(width), height: Int(height))
        draw(on: &canvas)
        return PNGEncoder.encode(canvas)
    }

    /// Draws what `svg()` describes, element for element.
    func draw(on canvas: inout Raster) {
        let g = geometry()
        let plotBottom = top + g.plotH, plotRight = left + g.plotW
        let black = RGB(0, 0, 0)

        // Title: 2× text, 1× when it would not fit (very large start numbers and peaks).
        let titleScale = BitmapFont.width(of: title, scale: 2) <= canvas.width - 20 ? 2 : 1
        canvas.text(title, centerX: width / 2, top: 14, scale: titleScale, color: black, bold: true)

        // Grid and ticks.
        for t in g.xTicks {
            let x = px(t, g)
            canvas.vline(x: x, from: top, to: plotBottom, color: Self.gridColor)
            canvas.vline(x: x, from: plotBottom, to: plotBottom + 6, color: black)
            canvas.text(Self.label(t), centerX: x, top: plotBottom + 12, scale: 2, color: black)
        }
        for t in g.yTicks {
            let y = py(t, g)
            canvas.hline(y: y, from: left, to: plotRight, color: Self.gridColor)
            canvas.hline(y: y, from: left - 6, to: left, color: black)
            let text = yTickLabel(t)
            canvas.text(text, rightX: left - 10, centerY: y, scale: 2, color: black)
        }
        // Axes and their labels.
        canvas.hline(y: plotBottom, from: left, to: plotRight, color: black)
        canvas.vline(x: left, from: top, to: plotBottom, color: black)
        canvas.text("step", centerX: left + g.plotW / 2, top: height - 34, scale: 2, color: black)
        canvas.verticalText(valueAxisLabel, centerX: 24, centerY: top + g.plotH / 2, scale: 2, color: black)

        // The chain: a 1.5 px polyline, dots when there are few steps, the peak in red.
        let points = steps.enumerated().map { i, step in (px(Double(step.step), g), py(g.yValues[i], g)) }
        canvas.polyline(points, width: 1.5, color: Self.chainColor)
        if steps.count <= 200 {
            for (x, y) in points { canvas.disc(x: x, y: y, radius: 2, color: Self.chainColor) }
        }
        canvas.disc(x: px(Double(g.peak.step), g), y: py(g.peakY, g), radius: 4, color: Self.peakColor)
    }
}

struct RGB: Equatable {
    var r: UInt8, g: UInt8, b: UInt8
    init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }
}

/// An 8-bit RGB canvas, white to start with; (0, 0) is the top-left corner and pixel (x, y)
/// covers [x, x+1) × [y, y+1).
struct Raster {
    let width: Int
    let height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 255, count: width * height * 3)
    }

    func pixel(_ x: Int, _ y: Int) -> RGB {
        let i = (y * width + x) * 3
        return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Mixes `color` into pixel (x, y) with coverage `a` (0...1).
    mutating func blend(_ x: Int, _ y: Int, _ color: RGB, _ a: Double) {
        guard x >= 0, y >= 0, x < width, y < height, a > 0 else { return }
        let i = (y * width + x) * 3
        if a >= 1 {
            pixels[i] = color.r
            pixels[i + 1] = color.g
            pixels[i + 2] = color.b
            return
        }
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 {
            UInt8((Double(old) * (1 - a) + Double(new) * a).rounded())
        }
        pixels[i] = mix(pixels[i], color.r)
        pixels[i + 1] = mix(pixels[i + 1], color.g)
        pixels[i + 2] = mix(pixels[i + 2], color.b)
    }

    mutating func fill(x0: Int, y0: Int, x1: Int, y1: Int, color: RGB) {
        for y in max(0, y0)..<min(height, y1) {
            for x in max(0, x0)..<min(width, x1) { blend(x, y, color, 1) }
        }
    }

    /// A 1 px horizontal line through y (SVG's stroke centred on y covers the pixel row below it).
    mutating func hline(y: Double, from x0: Double, to x1: Double, color: RGB) {
        let row = Int(y.rounded(.down))
        fill(x0: Int(x0.rounded()), y0: row, x1: Int(x1.rounded()) + 1, y1: row + 1, color: color)
    }

    mutating func vline(x: Double, from y0: Double, to y1: Double, color: RGB) {
        let column = Int(x.rounded(.down))
        fill(x0: column, y0: Int(y0.rounded()), x1: column + 1, y1: Int(y1.rounded()) + 1, color: color)
    }

    /// An antialiased filled disc.
    mutating func disc(x cx: Double, y cy: Double, radius r: Double, color: RGB) {
        for y in Int((cy - r - 1).rounded(.down))...Int((cy + r + 1).rounded(.up)) {
            for x in Int((cx - r - 1).rounded(.down))...Int((cx + r + 1).rounded(.up)) {
                let d = ((Double(x) + 0.5 - cx) * (Double(x) + 0.5 - cx) + (Double(y) + 0.5 - cy) * (Double(y) + 0.5 - cy)).squareRoot()
                blend(x, y, color, min(1, max(0, r + 0.5 - d)))
            }
        }
    }

    /// An antialiased polyline of the given width: each pixel takes the highest coverage any
    /// segment gives it (no darker joints where segments overlap).
    mutating func polyline(_ points: [(Double, Double)], width w: Double, color: RGB) {
        guard let first = points.first else { return }
        let half = w / 2
        var coverage = [Float](repeating: 0, count: width * height)
        func segment(_ a: (Double, Double), _ b: (Double, Double)) {
            let (ax, ay) = a, (bx, by) = b
            let dx = bx - ax, dy = by - ay
            let length2 = dx * dx + dy * dy
            let x0 = max(0, Int((min(ax, bx) - half - 1).rounded(.down)))
            let x1 = min(width - 1, Int((max(ax, bx) + half + 1).rounded(.up)))
            let y0 = max(0, Int((min(ay, by) - half - 1).rounded(.down)))
            let y1 = min(height - 1, Int((max(ay, by) + half + 1).rounded(.up)))
            guard x0 <= x1, y0 <= y1 else { return }
            for y in y0...y1 {
                let cy = Double(y) + 0.5
                for x in x0...x1 {
                    let cx = Double(x) + 0.5
                    // Distance from the pixel centre to the segment.
                    var t = length2 > 0 ? ((cx - ax) * dx + (cy - ay) * dy) / length2 : 0
                    t = min(1, max(0, t))
                    let ex = cx - (ax + t * dx), ey = cy - (ay + t * dy)
                    let c = Float(min(1, max(0, half + 0.5 - (ex * ex + ey * ey).squareRoot())))
                    let i = y * width + x
                    if c > coverage[i] { coverage[i] = c }
                }
            }
        }
        if points.count == 1 { segment(first, first) }
        for i in points.indices.dropFirst() { segment(points[i - 1], points[i]) }
        for y in 0..<height {
            for x in 0..<width where coverage[y * width + x] > 0 {
                blend(x, y, color, Double(coverage[y * width + x]))
            }
        }
    }

    /// Text from the built-in font with its top-left corner at (x, y); `scale` × 5×7 px glyphs.
    mutating func text(_ s: String, x: Int, y: Int, scale: Int, color: RGB, bold: Bool = false) {
        var cx = x
        for ch in s {
            let rows = BitmapFont.glyph(ch)
            for (row, bits) in rows.enumerated() {
                for col in 0..<5 where bits & (0x10 >> col) != 0 {
                    let px = cx + col * scale, py = y + row * scale
                    fill(x0: px, y0: py, x1: px + scale + (bold ? 1 : 0), y1: py + scale, color: color)
                }
            }
            cx += BitmapFont.advance * scale
        }
    }

    mutating func text(_ s: String, centerX: Double, top: Double, scale: Int, color: RGB, bold: Bool = false) {
        let w = BitmapFont.width(of: s, scale: scale)
        text(s, x: Int((centerX - Double(w) / 2).rounded()), y: Int(top.rounded()), scale: scale, color: color, bold: bold)
    }

    mutating func text(_ s: String, rightX: Double, centerY: Double, scale: Int, color: RGB) {
        let w = BitmapFont.width(of: s, scale: scale)
        text(s, x: Int(rightX.rounded()) - w, y: Int((centerY - Double(BitmapFont.capHeight * scale) / 2).rounded()),
             scale: scale, color: color)
    }

    /// Text turned 90° counter-clockwise (reading bottom to top), centred on (centerX, centerY).
    mutating func verticalText(_ s: String, centerX: Double, centerY: Double, scale: Int, color: RGB) {
        let length = BitmapFont.width(of: s, scale: scale)
        // Glyph row r lands in column x0 + r; glyph column c of character k lands at
        // y = bottom - (k × advance + c).
        let x0 = Int((centerX - Double(BitmapFont.capHeight * scale) / 2).rounded())
        let bottom = Int((centerY + Double(length) / 2).rounded())
        for (k, ch) in s.enumerated() {
            for (row, bits) in BitmapFont.glyph(ch).enumerated() {
                for col in 0..<5 where bits & (0x10 >> col) != 0 {
                    let px = x0 + row * scale
                    let py = bottom - (k * BitmapFont.advance + col + 1) * scale
                    fill(x0: px, y0: py, x1: px + scale, y1: py + scale, color: color)
                }
            }
        }
    }
}

/// A small 5×7 bitmap font (rows of 5 bits, most significant bit on the left; letters with
/// descenders have two more rows), drawn for these charts: ASCII letters, digits and the
/// punctuation tick labels and titles use. Anything else is drawn as '?'.
enum BitmapFont {
    static let advance = 6
    static let capHeight = 7

    static func width(of s: String, scale: Int) -> Int {
        s.isEmpty ? 0 : (s.count * advance - 1) * scale
    }

    static func glyph(_ ch: Character) -> [UInt8] { glyphs[ch] ?? glyphs["?"]! }

    static let glyphs: [Character: [UInt8]] = {
        var table = [Character: [UInt8]]()
        for (ch, art) in drawings {
            table[ch] = art.split(separator: " ").map { row in
                row.reduce(UInt8(0)) { $0 << 1 | ($1 == "#" ? 1 : 0) }
            }
        }
        return table
    }()

    private static let drawings: [(Character, String)] = [
        (" ", "..... ..... ..... ..... ..... ..... ....."),
        ("0", ".###. #...# #..## #.#.# ##..# #...# .###."),
        ("1", "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."),
        ("2", ".###. #...# ....# ...#. ..#.. .#... #####"),
        ("3", "##### ...#. ..#.. ...#. ....# #...# .###."),
        ("4", "...#. ..##. .#.#. #..#. ##### ...#. ...#."),
        ("5", "##### #.... ####. ....# ....# #...# .###."),
        ("6", "..##. .#... #.... ####. #...# #...# .###."),
        ("7", "##### ....# ...#. ..#.. .#... .#... .#..."),
        ("8", ".###. #...# #...# .###. #...# #...# .###."),
        ("9", ".###. #...# #...# .#### ....# ...#. .##.."),
        (".", "..... ..... ..... ..... ..... .##.. .##.."),
        (",", "..... ..... ..... ..... ..... .##.. .##.. ..#.. .#..."),
        (":", "..... .##.. .##.. ..... .##.. .##.. ....."),
        ("-", "..... ..... ..... .###. ..... ..... ....."),
        ("+", "..... ..#.. ..#.. ##### ..#.. ..#.. ....."),
        ("^", "..#.. .#.#. #...# ..... ..... ..... ....."),
        ("(", "...#. ..#.. .#... .#... .#... ..#.. ...#."),
        (")", ".#... ..#.. ...#. ...#. ...#. ..#.. .#..."),
        ("/", "....# ....# ...#. ..#.. .#... #.... #...."),
        ("=", "..... ..... ##### ..... ##### ..... ....."),
        ("?", ".###. #...# ....# ...#. ..#.. ..... ..#.."),
        ("!", "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.."),
        ("_", "..... ..... ..... ..... ..... ..... #####"),
        ("'", "..#.. ..#.. ..... ..... ..... ..... ....."),
        ("A", ".###. #...# #...# ##### #...# #...# #...#"),
        ("B", "####. #...# #...# ####. #...# #...# ####."),
        ("C", ".###. #...# #.... #.... #.... #...# .###."),
        ("D", "####. #...# #...# #...# #...# #...# ####."),
        ("E", "##### #.... #.... ####. #.... #.... #####"),
        ("F", "##### #.... #.... ####. #.... #.... #...."),
        ("G", ".###. #...# #.... #.### #...# #...# .####"),
        ("H", "#...# #...# #...# ##### #...# #...# #...#"),
        ("I", ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
        ("J", "..### ...#. ...#. ...#. ...#. #..#. .##.."),
        ("K", "#...# #..#. #.#.. ##... #.#.. #..#. #...#"),
        ("L", "#.... #.... #.... #.... #.... #.... #####"),
        ("M", "#...# ##.## #.#.# #.#.# #...# #...# #...#"),
        ("N", "#...# #...# ##..# #.#.# #..## #...# #...#"),
        ("O", ".###. #...# #...# #...# #...# #...# .###."),
        ("P", "####. #...# #...# ####. #.... #.... #...."),
        ("Q", ".###. #...# #...# #...# #.#.# #..#. .##.#"),
        ("R", "####. #...# #...# ####. #.#.. #..#. #...#"),
        ("S", ".#### #.... #.... .###. ....# ....# ####."),
        ("T", "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."),
        ("U", "#...# #...# #...# #...# #...# #...# .###."),
        ("V", "#...# #...# #...# #...# #...# .#.#. ..#.."),
        ("W", "#...# #...# #...# #.#.# #.#.# #.#.# .#.#."),
        ("X", "#...# #...# .#.#. ..#.. .#.#. #...# #...#"),
        ("Y", "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."),
        ("Z", "##### ....# ...#. ..#.. .#... #.... #####"),
        ("a", "..... ..... .###. ....# .#### #...# .####"),
        ("b", "#.... #.... #.##. ##..# #...# #...# ####."),
        ("c", "..... ..... .###. #.... #.... #...# .###."),
        ("d", "....# ....# .##.# #..## #...# #...# .####"),
        ("e", "..... ..... .###. #...# ##### #.... .###."),
        ("f", "..##. .#..# .#... ###.. .#... .#... .#..."),
        ("g", "..... ..... .#### #...# #...# .#### ....# ....# .###."),
        ("h", "#.... #.... #.##. ##..# #...# #...# #...#"),
        ("i", "..#.. ..... .##.. ..#.. ..#.. ..#.. .###."),
        ("j", "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##.."),
        ("k", "#.... #.... #..#. #.#.. ##... #.#.. #..#."),
        ("l", ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
        ("m", "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#"),
        ("n", "..... ..... #.##. ##..# #...# #...# #...#"),
        ("o", "..... ..... .###. #...# #...# #...# .###."),
        ("p", "..... ..... ####. #...# #...# ####. #.... #.... #...."),
        ("q", "..... ..... .#### #...# #...# .#### ....# ....# ....#"),
        ("r", "..... ..... #.##. ##..# #.... #.... #...."),
        ("s", "..... ..... .###. #.... .###. ....# ####."),
        ("t", ".#... .#... ###.. .#... .#... .#..# ..##."),
        ("u", "..... ..... #...# #...# #...# #..## .##.#"),
        ("v", "..... ..... #...# #...# #...# .#.#. ..#.."),
        ("w", "..... ..... #...# #...# #.#.# #.#.# .#.#."),
        ("x", "..... ..... #...# .#.#. ..#.. .#.#. #...#"),
        ("y", "..... ..... #...# #...# #...# .#### ....# ....# .###."),
        ("z", "..... ..... ##### ...#. ..#.. .#... #####"),
    ]
}

/// PNG (8-bit RGB, no interlace): signature, IHDR, one IDAT with the zlib stream of the rows
/// (filter type 0 each), IEND; chunk CRCs are zlib's CRC-32.
enum PNGEncoder {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    static func encode(_ raster: Raster) -> [UInt8] {
        var out = signature
        var header = [UInt8]()
        header.appendBigEndian(UInt32(raster.width))
        header.appendBigEndian(UInt32(raster.height))
        header += [8, 2, 0, 0, 0]  // bit depth 8, colour type 2 (RGB), deflate, adaptive filters, no interlace
        appendChunk("IHDR", header, to: &out)

        let stride = raster.width * 3
        var raw = [UInt8]()
        raw.reserveCapacity((stride + 1) * raster.height)
        for y in 0..<raster.height {
            raw.append(0)  // filter: none
            raw += raster.pixels[(y * stride)..<((y + 1) * stride)]
        }
        appendChunk("IDAT", deflate(raw), to: &out)
        appendChunk("IEND", [], to: &out)
        return out
    }

    /// A zlib stream (RFC 1950) of `data`, zlib's default level.
    static func deflate(_ data: [UInt8]) -> [UInt8] {
        var length = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(length))
        let rc = out.withUnsafeMutableBufferPointer { dst in
            data.withUnsafeBufferPointer { src in
                compress2(dst.baseAddress, &length, src.baseAddress, uLong(src.count), Z_DEFAULT_COMPRESSION)
            }
        }
        precondition(rc == Z_OK, "compress2 failed (\(rc)) with a buffer of compressBound bytes")
        out.removeSubrange(Int(length)...)
        return out
    }

    static func crc(_ bytes: [UInt8]) -> UInt32 {
        UInt32(bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) })
    }

    static func appendChunk(_ type: String, _ data: [UInt8], to out: inout [UInt8]) {
        out.appendBigEndian(UInt32(data.count))
        let typed = Array(type.utf8) + data
        out += typed
        out.appendBigEndian(crc(typed))
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ v: UInt32) {
        append(UInt8(v >> 24))
        append(UInt8((v >> 16) & 0xff))
        append(UInt8((v >> 8) & 0xff))
        append(UInt8(v & 0xff))
    }
}
