import Collatz
import Foundation

/// Draws one chain as a line chart, SVG (`svg()`) or PNG (`png()`, PNGRenderer.swift): title,
/// labelled axes, ticks, grid, the polyline of every step and a marker on the peak. Values past
/// 2^53 are placed with Double precision (invisible at chart scale) but labelled exactly in the
/// title.
struct ChainPlot {
    var number: UInt64
    var steps: [ChainStep]
    var logScale: Bool = false

    let width = 960.0
    let height = 540.0
    let left = 110.0, right = 30.0, top = 60.0, bottom = 70.0

    /// Where everything goes: shared by `svg()` and `png()` so that both draw the same chart.
    struct Geometry {
        var plotW: Double, plotH: Double
        var yValues: [Double]
        var xTicks: [Double], yTicks: [Double]
        var xMax: Double, yMax: Double
        var peak: ChainStep
        var peakY: Double
    }

    var title: String {
        let peak = steps.max { $0.value < $1.value } ?? ChainStep(step: 0, value: 1)
        return "Collatz chain of \(number): \(steps.last?.step ?? 0) steps, peak \(peak.value) at step \(peak.step)"
    }

    var valueAxisLabel: String { "value\(logScale ? " (log scale)" : "")" }

    func yTickLabel(_ t: Double) -> String { logScale ? "10^\(Int(t))" : Self.label(t) }

    func geometry() -> Geometry {
        let lastStep = Double(steps.last?.step ?? 0)
        let peak = steps.max { $0.value < $1.value } ?? ChainStep(step: 0, value: 1)
        let yValues = steps.map { logScale ? log10(max(Double($0.value), 1)) : Double($0.value) }
        let yMaxRaw = yValues.max() ?? 1
        let yTicks = logScale
            ? Array(stride(from: 0.0, through: max(1, ceil(yMaxRaw)), by: max(1, ceil(yMaxRaw / 8))))
            : Self.niceTicks(max: max(yMaxRaw, 1))
        let xTicks = Self.niceTicks(max: max(lastStep, 1))
        return Geometry(
            plotW: width - left - right, plotH: height - top - bottom, yValues: yValues,
            xTicks: xTicks, yTicks: yTicks,
            xMax: max(xTicks.last ?? 1, lastStep, 1), yMax: max(yTicks.last ?? 1, yMaxRaw),
            peak: peak, peakY: logScale ? log10(max(Double(peak.value), 1)) : Double(peak.value))
    }

    func px(_ step: Double, _ g: Geometry) -> Double { left + step / g.xMax * g.plotW }
    func py(_ v: Double, _ g: Geometry) -> Double { top + g.plotH - v / g.yMax * g.plotH }

    func svg() -> String {
        let g = geometry()
        let peak = g.peak, plotW = g.plotW, plotH = g.plotH, yValues = g.yValues
        let xTicks = g.xTicks, yTicks = g.yTicks
        func px(_ step: Double) -> Double { self.px(step, g) }
        func py(_ v: Double) -> Double { self.py(v, g) }

        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(width / 2)" y="28" text-anchor="middle" font-size="18" font-weight="bold">\(title)</text>

        """
        // Grid and ticks.
        for t in xTicks {
            let x = px(t)
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH))\" stroke=\"#e5e5e5\"/>\n"
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top + plotH))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH + 6))\" stroke=\"black\"/>\n"
            s += "<text x=\"\(f(x))\" y=\"\(f(top + plotH + 22))\" text-anchor=\"middle\" font-size=\"12\">\(Self.label(t))</text>\n"
        }
        for t in yTicks {
            let yy = py(t)
            s += "<line x1=\"\(f(left))\" y1=\"\(f(yy))\" x2=\"\(f(left + plotW))\" y2=\"\(f(yy))\" stroke=\"#e5e5e5\"/>\n"
            s += "<line x1=\"\(f(left - 6))\" y1=\"\(f(yy))\" x2=\"\(f(left))\" y2=\"\(f(yy))\" stroke=\"black\"/>\n"
            let text = yTickLabel(t)
            s += "<text x=\"\(f(left - 10))\" y=\"\(f(yy + 4))\" text-anchor=\"end\" font-size=\"12\">\(text)</text>\n"
        }
        // Axes and their labels.
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top + plotH))\" x2=\"\(f(left + plotW))\" y2=\"\(f(top + plotH))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotH))\" stroke=\"black\"/>\n"
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 20))\" text-anchor=\"middle\" font-size=\"14\">step</text>\n"
        s += "<text x=\"24\" y=\"\(f(top + plotH / 2))\" text-anchor=\"middle\" font-size=\"14\" transform=\"rotate(-90 24 \(f(top + plotH / 2)))\">\(valueAxisLabel)</text>\n"
        // The chain.
        var points = ""
        points.reserveCapacity(steps.count * 16)
        for (i, step) in steps.enumerated() {
            points += "\(f(px(Double(step.step)))),\(f(py(yValues[i]))) "
        }
        s += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(points)\"/>\n"
        if steps.count <= 200 {
            for (i, step) in steps.enumerated() {
                s += "<circle cx=\"\(f(px(Double(step.step))))\" cy=\"\(f(py(yValues[i])))\" r=\"2\" fill=\"#1f77b4\"/>\n"
            }
        }
        s += "<circle cx=\"\(f(px(Double(peak.step))))\" cy=\"\(f(py(g.peakY)))\" r=\"4\" fill=\"#d62728\"><title>peak \(peak.value) at step \(peak.step)</title></circle>\n"
        s += "</svg>\n"
        return s
    }

    func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// 0 and 4–10 round ticks up to at least `max` (1, 2 or 5 × 10^k apart).
    static func niceTicks(max: Double) -> [Double] {
        guard max > 0, max.isFinite else { return [0, 1] }
        let rough = max / 6
        let magnitude = pow(10, floor(log10(rough)))
        let residual = rough / magnitude
        let spacing = (residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1) * magnitude
        var ticks = [Double]()
        var t = 0.0
        while t < max + spacing * 0.999 && ticks.count < 20 {
            ticks.append(t)
            t += spacing
        }
        return ticks
    }

    /// 0, 250, 1.5k, 3.2M, 4.1e19: short tick labels.
    static func label(_ v: Double) -> String {
        let a = abs(v)
        if a < 10_000 { return v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v) }
        if a < 1e6 { return trim(String(format: "%.1f", v / 1e3)) + "k" }
        if a < 1e9 { return trim(String(format: "%.1f", v / 1e6)) + "M" }
        if a < 1e12 { return trim(String(format: "%.1f", v / 1e9)) + "G" }
        return String(format: "%.2g", v).replacingOccurrences(of: "e+", with: "e")
    }

    static func trim(_ s: String) -> String { s.hasSuffix(".0") ? String(s.dropLast(2)) : s }
}
