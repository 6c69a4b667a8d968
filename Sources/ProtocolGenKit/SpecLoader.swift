import Foundation

/// Loads Kafka's JSON message specs (JSON with `//` comments).
public enum SpecLoader {
    /// Removes `//` comments that are outside string literals.
    public static func stripComments(_ text: String) -> String {
        var out = [UInt8]()
        let bytes = Array(text.utf8)
        out.reserveCapacity(bytes.count)
        var i = 0
        var inString = false
        while i < bytes.count {
            let c = bytes[i]
            if inString {
                out.append(c)
                if c == UInt8(ascii: "\\"), i + 1 < bytes.count {
                    out.append(bytes[i + 1])
                    i += 2
                    continue
                }
                if c == UInt8(ascii: "\"") { inString = false }
            } else if c == UInt8(ascii: "\"") {
                inString = true
                out.append(c)
            } else if c == UInt8(ascii: "/"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "/") {
                while i < bytes.count && bytes[i] != UInt8(ascii: "\n") { i += 1 }
                continue
            } else {
                out.append(c)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func load(file: URL, relativePath: String) throws -> MessageSpec {
        let text = try String(contentsOf: file, encoding: .utf8)
        let json = try JSONSerialization.jsonObject(with: Data(stripComments(text).utf8))
        guard let dict = json as? [String: Any] else {
            throw SpecError.badSpec(file: relativePath, reason: "top level is not an object")
        }
        func string(_ key: String) throws -> String {
            guard let v = dict[key] as? String else {
                throw SpecError.badSpec(file: relativePath, reason: "missing \(key)")
            }
            return v
        }
        let valid = try VersionRange(parsing: try string("validVersions"))
        let flexible = try VersionRange(parsing: (dict["flexibleVersions"] as? String) ?? "none")
        let deprecated = try VersionRange(parsing: (dict["deprecatedVersions"] as? String) ?? "none")
        let fields = try parseFields(dict["fields"] as? [[String: Any]] ?? [], file: relativePath)
        var common = [StructSpec]()
        for cs in dict["commonStructs"] as? [[String: Any]] ?? [] {
            guard let name = cs["name"] as? String else {
                throw SpecError.badSpec(file: relativePath, reason: "common struct without name")
            }
            let versions = try VersionRange(parsing: (cs["versions"] as? String) ?? "0+")
            common.append(StructSpec(
                name: name,
                fields: try parseFields(cs["fields"] as? [[String: Any]] ?? [], file: relativePath),
                context: versions.intersection(valid)))
        }
        return MessageSpec(
            name: try string("name"),
            kind: try string("type"),
            apiKey: (dict["apiKey"] as? NSNumber)?.intValue,
            validVersions: valid,
            flexibleVersions: flexible,
            deprecatedVersions: deprecated,
            latestVersionUnstable: (dict["latestVersionUnstable"] as? Bool) ?? false,
            listeners: dict["listeners"] as? [String] ?? [],
            fields: fields,
            commonStructs: common,
            sourcePath: relativePath)
    }

    static func parseFields(_ list: [[String: Any]], file: String) throws -> [FieldSpec] {
        return try list.map { f in
            guard let name = f["name"] as? String, let typeText = f["type"] as? String else {
                throw SpecError.badSpec(file: file, reason: "field without name or type")
            }
            let versionsText = (f["versions"] as? String) ?? "0+"
            let nullable = try VersionRange(parsing: (f["nullableVersions"] as? String) ?? "none")
            let tagged = try VersionRange(parsing: (f["taggedVersions"] as? String) ?? "none")
            var defaultValue: String?
            if let d = f["default"] {
                if let s = d as? String {
                    defaultValue = s
                } else if let n = d as? NSNumber {
                    defaultValue = n.stringValue
                } else if d is NSNull {
                    defaultValue = "null"
                }
            }
            let flexibleOverride = try (f["flexibleVersions"] as? String).map(VersionRange.init(parsing:))
            let nested = try (f["fields"] as? [[String: Any]]).map { try parseFields($0, file: file) }
            return FieldSpec(
                name: name,
                type: try FieldType(parsing: typeText),
                versions: try VersionRange(parsing: versionsText),
                nullableVersions: nullable,
                taggedVersions: tagged,
                tag: (f["tag"] as? NSNumber)?.intValue,
                defaultValue: defaultValue,
                ignorable: (f["ignorable"] as? Bool) ?? false,
                flexibleVersions: flexibleOverride,
                about: (f["about"] as? String) ?? "",
                fields: nested)
        }
    }
}
