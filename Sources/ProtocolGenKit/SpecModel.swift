import Foundation

/// A version range from a spec: "0+", "3-7", "5", or "none".
public struct VersionRange: Equatable, Sendable {
    public var low: Int
    public var high: Int  // Int16.max for an open range

    public static let none = VersionRange(low: 1, high: 0)
    public static let openHigh = Int(Int16.max)

    public init(low: Int, high: Int) {
        self.low = low
        self.high = high
    }

    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "none" {
            self = .none
        } else if t.hasSuffix("+") {
            guard let low = Int(t.dropLast()) else { throw SpecError.badVersions(text) }
            self.init(low: low, high: VersionRange.openHigh)
        } else if let dash = t.firstIndex(of: "-") {
            guard let low = Int(t[..<dash]), let high = Int(t[t.index(after: dash)...]) else {
                throw SpecError.badVersions(text)
            }
            self.init(low: low, high: high)
        } else if let v = Int(t) {
            self.init(low: v, high: v)
        } else {
            throw SpecError.badVersions(text)
        }
    }

    public var isEmpty: Bool { low > high }

    public func intersection(_ other: VersionRange) -> VersionRange {
        let r = VersionRange(low: max(low, other.low), high: min(high, other.high))
        return r.isEmpty ? .none : r
    }

    public func contains(_ version: Int) -> Bool { version >= low && version <= high }

    /// True when this range covers every version of `context`.
    public func covers(_ context: VersionRange) -> Bool {
        return context.isEmpty || (low <= context.low && high >= context.high)
    }
}

public enum SpecError: Error, CustomStringConvertible {
    case badVersions(String)
    case badSpec(file: String, reason: String)

    public var description: String {
        switch self {
        case let .badVersions(text): return "bad version range '\(text)'"
        case let .badSpec(file, reason): return "\(file): \(reason)"
        }
    }
}

public indirect enum FieldType: Equatable, Sendable {
    case bool, int8, int16, int32, int64, uint16, uint32, float64
    case string, bytes, records, uuid
    case array(FieldType)
    case structure(String)

    public init(parsing text: String) throws {
        if text.hasPrefix("[]") {
            self = .array(try FieldType(parsing: String(text.dropFirst(2))))
            return
        }
        switch text {
        case "bool": self = .bool
        case "int8": self = .int8
        case "int16": self = .int16
        case "int32": self = .int32
        case "int64": self = .int64
        case "uint16": self = .uint16
        case "uint32": self = .uint32
        case "float64": self = .float64
        case "string": self = .string
        case "bytes": self = .bytes
        case "records": self = .records
        case "uuid": self = .uuid
        default:
            guard let first = text.first, first.isUppercase else {
                throw SpecError.badSpec(file: "?", reason: "unknown field type \(text)")
            }
            self = .structure(text)
        }
    }

    public var isArray: Bool {
        if case .array = self { return true }
        return false
    }

    public var isStruct: Bool {
        if case .structure = self { return true }
        return false
    }
}

public struct FieldSpec: Sendable {
    public var name: String
    public var type: FieldType
    public var versions: VersionRange
    public var nullableVersions: VersionRange
    public var taggedVersions: VersionRange
    public var tag: Int?
    public var defaultValue: String?
    public var ignorable: Bool
    /// A field-level override of the message's flexible versions (RequestHeader.ClientId).
    public var flexibleVersions: VersionRange?
    public var about: String
    /// Inline struct definition, when the type is a struct (or array of structs) defined here.
    public var fields: [FieldSpec]?
}

public struct StructSpec: Sendable {
    public var name: String
    public var fields: [FieldSpec]
    /// The versions in which this struct can appear (used to simplify version conditions).
    public var context: VersionRange
}

public struct MessageSpec: Sendable {
    public var name: String
    public var kind: String  // request, response, header, data, metadata, ...
    public var apiKey: Int?
    public var validVersions: VersionRange
    public var flexibleVersions: VersionRange
    public var deprecatedVersions: VersionRange
    public var latestVersionUnstable: Bool
    public var listeners: [String]
    public var fields: [FieldSpec]
    public var commonStructs: [StructSpec]
    /// Where it came from, relative to the spec root (`messages/ProduceRequest.json`).
    public var sourcePath: String
}
