import Foundation

/// A tiny indentation-aware line builder for generated Swift.
final class CodeWriter {
    private(set) var lines: [String] = []
    private var depth = 0

    func line(_ text: String = "") {
        if text.isEmpty {
            lines.append("")
        } else {
            lines.append(String(repeating: "    ", count: depth) + text)
        }
    }

    /// `header {` body `}` (the header may be empty for a bare `do`).
    func block(_ header: String, _ body: () throws -> Void) rethrows {
        line(header + " {")
        depth += 1
        try body()
        depth -= 1
        line("}")
    }

    /// Opens `header {` without closing it; pair with `close(_:)`.
    func open(_ header: String) {
        line(header + " {")
        depth += 1
    }

    func close(_ trailer: String = "}") {
        depth -= 1
        line(trailer)
    }

    func indent() { depth += 1 }
    func dedent() { depth -= 1 }

    var text: String { lines.joined(separator: "\n") + "\n" }
}

enum SwiftNames {
    static let keywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
        "inout", "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public",
        "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue",
        "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return",
        "throw", "switch", "where", "while", "as", "Any", "false", "is", "nil", "self", "Self", "super",
        "throws", "true", "try", "await",
    ]

    /// Kafka's field names are PascalCase; Swift properties are lowerCamelCase.
    static func property(_ name: String) -> String {
        guard let first = name.first else { return name }
        return first.lowercased() + name.dropFirst()
    }

    /// A property or parameter name safe to declare (`protocol` → `` `protocol` ``).
    static func escaped(_ name: String) -> String {
        return keywords.contains(name) ? "`\(name)`" : name
    }

    static func stringLiteral(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A doc comment line from a spec's `about` text.
    static func doc(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
        return "/// " + flat
    }
}
