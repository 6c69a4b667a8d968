// Java `.properties` syntax, as `java.util.Properties.load` reads it (and so as Kafka reads
// server.properties): `#`/`!` comment lines, `key=value`, `key: value` or `key value`,
// backslash line continuation, `\t \n \r \f` escapes, `\u` with four hex digits, and a backslash before any
// other character standing for that character.

import Foundation

public enum PropertiesFile {
    /// One `key=value` pair and the (1-based) line on which it starts.
    public struct Entry: Sendable, Hashable {
        public var key: String
        public var value: String
        public var line: Int

        public init(key: String, value: String, line: Int) {
            self.key = key
            self.value = value
            self.line = line
        }
    }

    /// Reads and parses a properties file. The file is UTF-8; bytes that are not valid UTF-8
    /// are read as ISO-8859-1, the encoding Java's `Properties.load(InputStream)` assumes.
    public static func load(path: String) throws(ConfigError) -> [Entry] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigError(kind: .malformedSource, key: nil, value: nil, origin: nil,
                              message: "cannot read properties file \(path): \(error.localizedDescription)")
        }
        let text = String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1) ?? ""
        return try parse(text, path: path)
    }

    /// Parses properties text; `path` only names the source in errors.
    public static func parse(_ text: String, path: String = "<properties>") throws(ConfigError) -> [Entry] {
        var scalars = Array(text.unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        var entries: [Entry] = []
        var i = 0
        var line = 1
        let n = scalars.count

        func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\u{0C}" }
        func isEOL(_ c: Unicode.Scalar) -> Bool { c == "\n" || c == "\r" }
        /// Consumes one line terminator (\n, \r or \r\n) at `i`, counting the line.
        func consumeEOL() {
            guard i < n else { return }
            if scalars[i] == "\r", i + 1 < n, scalars[i + 1] == "\n" { i += 2 } else { i += 1 }
            line += 1
        }

        while i < n {
            while i < n, isBlank(scalars[i]) { i += 1 }
            guard i < n else { break }
            if isEOL(scalars[i]) { consumeEOL(); continue }
            if scalars[i] == "#" || scalars[i] == "!" {
                while i < n, !isEOL(scalars[i]) { i += 1 }
                consumeEOL()
                continue
            }
            // A logical line: natural lines joined while they end in an odd number of backslashes.
            let startLine = line
            var logical: [Unicode.Scalar] = []
            while true {
                while i < n, !isEOL(scalars[i]) { logical.append(scalars[i]); i += 1 }
                var trailing = 0
                while trailing < logical.count, logical[logical.count - 1 - trailing] == "\\" { trailing += 1 }
                guard trailing % 2 == 1 else { consumeEOL(); break }
                logical.removeLast()
                guard i < n else { break }
                consumeEOL()
                while i < n, isBlank(scalars[i]) { i += 1 }
            }
            // Split into key and value the way Properties.load does.
            var keyEnd = 0
            var valueStart = logical.count
            var hasSeparator = false
            var precedingBackslash = false
            while keyEnd < logical.count {
                let c = logical[keyEnd]
                if (c == "=" || c == ":") && !precedingBackslash {
                    valueStart = keyEnd + 1
                    hasSeparator = true
                    break
                } else if isBlank(c) && !precedingBackslash {
                    valueStart = keyEnd + 1
                    break
                }
                precedingBackslash = c == "\\" ? !precedingBackslash : false
                keyEnd += 1
            }
            while valueStart < logical.count {
                let c = logical[valueStart]
                if !isBlank(c) {
                    if !hasSeparator && (c == "=" || c == ":") { hasSeparator = true } else { break }
                }
                valueStart += 1
            }
            let key = try unescape(logical[0..<keyEnd], path: path, line: startLine)
            let value = try unescape(logical[min(valueStart, logical.count)...], path: path, line: startLine)
            entries.append(Entry(key: key, value: value.trimmingConfigWhitespace(), line: startLine))
        }
        return entries
    }

    private static func unescape(_ chars: ArraySlice<Unicode.Scalar>, path: String, line: Int) throws(ConfigError) -> String {
        var out = String.UnicodeScalarView()
        var pendingHighSurrogate: UInt32?
        var idx = chars.startIndex
        func flushSurrogate() {
            if pendingHighSurrogate != nil { out.append("\u{FFFD}"); pendingHighSurrogate = nil }
        }
        while idx < chars.endIndex {
            let c = chars[idx]
            idx += 1
            guard c == "\\", idx < chars.endIndex else { flushSurrogate(); out.append(c); continue }
            let e = chars[idx]
            idx += 1
            switch e {
            case "u":
                guard idx + 4 <= chars.endIndex,
                      let code = UInt32(String(String.UnicodeScalarView(chars[idx..<(idx + 4)])), radix: 16)
                else {
                    throw ConfigError(kind: .malformedSource, key: nil, value: nil, origin: .file(path: path, line: line),
                                      message: "malformed \\uxxxx escape")
                }
                idx += 4
                if (0xD800...0xDBFF).contains(code) {
                    flushSurrogate()
                    pendingHighSurrogate = code
                } else if (0xDC00...0xDFFF).contains(code), let high = pendingHighSurrogate {
                    pendingHighSurrogate = nil
                    let combined = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)
                    out.append(Unicode.Scalar(combined) ?? "\u{FFFD}")
                } else {
                    flushSurrogate()
                    out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                }
            case "t": flushSurrogate(); out.append("\t")
            case "n": flushSurrogate(); out.append("\n")
            case "r": flushSurrogate(); out.append("\r")
            case "f": flushSurrogate(); out.append("\u{0C}")
            default: flushSurrogate(); out.append(e)
            }
        }
        flushSurrogate()
        return String(out)
    }
}
