import Foundation

/// How a field may be null at the versions where it is present.
enum NullMode {
    case never
    case always
    /// Nullable only when this Swift condition on `version` holds.
    case some(String)
}

/// Everything the emitters need to know about one field within one struct.
struct FieldInfo {
    let spec: FieldSpec
    let owner: String
    let property: String  // escaped for declarations
    let present: VersionRange
    let nullable: VersionRange
    let isOptional: Bool
    let isTagged: Bool
    let nullMode: NullMode
    let presentCondition: String?  // nil: every version in context; "false": none
    let swiftType: String
    let defaultLiteral: String
    /// The compact-encoding expression for this field (`flexible`, or `false` when overridden).
    let compact: String

    var path: String { "\(owner).\(SwiftNames.property(spec.name))" }
    var tag: Int { spec.tag ?? -1 }
}

/// Emits one Swift file for one spec: the message struct, its nested structs, and their codecs.
struct MessageEmitter {
    let spec: MessageSpec

    /// Every struct the message defines (inline and common), flattened, in definition order.
    func collectStructs() throws -> [StructSpec] {
        var ordered = [String]()
        var byName = [String: StructSpec]()
        func add(_ s: StructSpec) {
            if var existing = byName[s.name] {
                existing.context = VersionRange(
                    low: min(existing.context.low, s.context.low), high: max(existing.context.high, s.context.high))
                byName[s.name] = existing
            } else {
                ordered.append(s.name)
                byName[s.name] = s
            }
        }
        func walk(_ fields: [FieldSpec], context: VersionRange) {
            for f in fields {
                guard let nested = f.fields else { continue }
                let name: String
                switch f.type {
                case .structure(let n): name = n
                case .array(.structure(let n)): name = n
                default: continue
                }
                let ctx = context.intersection(f.versions)
                add(StructSpec(name: name, fields: nested, context: ctx.isEmpty ? spec.validVersions : ctx))
                walk(nested, context: ctx.isEmpty ? spec.validVersions : ctx)
            }
        }
        walk(spec.fields, context: spec.validVersions)
        for common in spec.commonStructs {
            add(StructSpec(name: common.name, fields: common.fields, context: spec.validVersions))
            walk(common.fields, context: spec.validVersions)
        }
        return ordered.map { byName[$0]! }
    }

    // MARK: version conditions

    static func condition(_ range: VersionRange, in context: VersionRange) -> String? {
        let r = range.intersection(context)
        if r.isEmpty { return "false" }
        if r.covers(context) { return nil }
        var parts = [String]()
        if r.low > context.low { parts.append("version >= \(r.low)") }
        if r.high < context.high { parts.append("version <= \(r.high)") }
        return parts.joined(separator: " && ")
    }

    var flexibleDeclaration: String {
        let f = spec.flexibleVersions.intersection(spec.validVersions)
        if f.isEmpty { return "let flexible = false" }
        if f.covers(spec.validVersions) { return "let flexible = true" }
        return "let flexible = version >= \(f.low)"
    }

    var hasFlexibleVersions: Bool { !spec.flexibleVersions.intersection(spec.validVersions).isEmpty }

    // MARK: field analysis

    static func baseType(_ t: FieldType) -> String {
        switch t {
        case .bool: return "Bool"
        case .int8: return "Int8"
        case .int16: return "Int16"
        case .int32: return "Int32"
        case .int64: return "Int64"
        case .uint16: return "UInt16"
        case .uint32: return "UInt32"
        case .float64: return "Double"
        case .string: return "String"
        case .bytes, .records: return "ByteBuffer"
        case .uuid: return "KafkaUUID"
        case .array(let e): return "[\(baseType(e))]"
        case .structure(let n): return n
        }
    }

    static func parseInteger(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.lowercased().hasPrefix("0x") { return Int64(t.dropFirst(2), radix: 16) }
        if t.lowercased().hasPrefix("-0x") { return Int64(t.dropFirst(3), radix: 16).map { -$0 } }
        return Int64(t)
    }

    func info(_ f: FieldSpec, owner: String, context: VersionRange) throws -> FieldInfo {
        let present = f.versions.intersection(context)
        let nullable = f.nullableVersions.intersection(present)
        let isOptional = !f.nullableVersions.intersection(f.versions).isEmpty
        let nullMode: NullMode
        if nullable.isEmpty {
            nullMode = .never
        } else if nullable.covers(present) {
            nullMode = .always
        } else {
            nullMode = .some(Self.condition(nullable, in: present) ?? "true")
        }
        let base = Self.baseType(f.type)
        let swiftType = isOptional ? base + "?" : base
        let d = f.defaultValue
        var literal: String
        if isOptional && (d == "null" || (f.type == .records && d == nil)) {
            literal = "nil"
        } else {
            switch f.type {
            case .bool:
                literal = (d == "true" || d == "1") ? "true" : "false"
            case .int8, .int16, .int32, .int64, .uint16, .uint32:
                if let d, d != "null" {
                    guard let v = Self.parseInteger(d) else {
                        throw SpecError.badSpec(file: spec.sourcePath, reason: "bad default \(d) for \(f.name)")
                    }
                    literal = String(v)
                } else {
                    literal = "0"
                }
            case .float64:
                literal = d.flatMap(Double.init).map { String($0) } ?? "0.0"
            case .string:
                literal = (d == nil || d == "null") ? "\"\"" : SwiftNames.stringLiteral(d!)
            case .uuid:
                literal = "KafkaUUID.zero"
            case .bytes, .records:
                literal = "ByteBuffer()"
            case .array:
                literal = "[]"
            case .structure(let n):
                literal = "\(n)()"
            }
        }
        let compact: String
        if let override = f.flexibleVersions {
            let o = override.intersection(present)
            if o.isEmpty {
                compact = "false"
            } else if let c = Self.condition(o, in: present) {
                compact = "(\(c))"
            } else {
                compact = "true"
            }
        } else {
            compact = "flexible"
        }
        return FieldInfo(
            spec: f, owner: owner, property: SwiftNames.escaped(SwiftNames.property(f.name)),
            present: present, nullable: nullable, isOptional: isOptional,
            isTagged: f.tag != nil, nullMode: nullMode,
            presentCondition: Self.condition(present, in: context),
            swiftType: swiftType, defaultLiteral: literal, compact: compact)
    }

    /// A Swift expression that is true when the field holds something other than its default.
    static func nonDefault(_ i: FieldInfo) -> String {
        let expr = "self.\(i.property)"
        if i.defaultLiteral == "nil" { return "\(expr) != nil" }
        if i.spec.type.isArray && !i.isOptional { return "!\(expr).isEmpty" }
        if (i.spec.type == .bytes || i.spec.type == .records) && !i.isOptional { return "\(expr).readableBytes != 0" }
        return "\(expr) != \(i.defaultLiteral)"
    }

    // MARK: emission

    func emitFile() throws -> String {
        let w = CodeWriter()
        w.line("// Generated by ProtocolGen from \(spec.sourcePath). Do not edit.")
        w.line("// Regenerate: swift run protocol-gen ../shared/kafka-protocol")
        w.line()
        w.line("import NIOCore")
        w.line()
        let structs = try collectStructs()
        var conformance = "KafkaMessage"
        if spec.kind == "request" { conformance = "KafkaRequestMessage" }
        if spec.kind == "response" { conformance = "KafkaResponseMessage" }
        w.open("public struct \(spec.name): \(conformance)")
        w.line("public static let messageName = \(SwiftNames.stringLiteral(spec.name))")
        w.line("public static let validVersions: ClosedRange<Int16> = \(spec.validVersions.low)...\(spec.validVersions.high)")
        let flex = spec.flexibleVersions.intersection(spec.validVersions)
        w.line("public static let firstFlexibleVersion: Int16? = \(flex.isEmpty ? "nil" : String(flex.low))")
        if let key = spec.apiKey {
            if spec.kind == "request" || spec.kind == "response" {
                w.line("public static let apiKey: ApiKey = .\(ApiTableEmitter.caseName(forMessage: spec.name))")
            } else {
                w.line("/// The record type id (`apiKey` in the spec).")
                w.line("public static let recordType: Int16 = \(key)")
            }
        }
        if spec.kind == "request" {
            w.line("public typealias Response = \(spec.name.dropLast("Request".count))Response")
        }
        w.line()
        try emitBody(w, name: spec.name, fields: spec.fields, context: spec.validVersions, topLevel: true)
        for s in structs {
            w.line()
            w.open("public struct \(s.name): Hashable, Sendable")
            try emitBody(w, name: "\(spec.name).\(s.name)", fields: s.fields, context: s.context, topLevel: false)
            w.close()
        }
        w.close()
        return w.text
    }

    func emitBody(_ w: CodeWriter, name: String, fields: [FieldSpec], context: VersionRange, topLevel: Bool) throws {
        let infos = try fields.map { try info($0, owner: name, context: context) }
        for i in infos {
            if !i.spec.about.isEmpty { w.line(SwiftNames.doc(i.spec.about)) }
            w.line("public var \(i.property): \(i.swiftType) = \(i.defaultLiteral)")
        }
        w.line("/// Tagged fields this codec does not know, kept so they are written back unchanged.")
        w.line("public var unknownTaggedFields: [TaggedField] = []")
        w.line()
        w.line("public init() {}")
        w.line()
        if !infos.isEmpty {
            w.line("public init(")
            w.indent()
            for i in infos {
                w.line("\(i.property): \(i.swiftType) = \(i.defaultLiteral),")
            }
            w.line("unknownTaggedFields: [TaggedField] = []")
            w.dedent()
            w.open(")")
            for i in infos { w.line("self.\(i.property) = \(i.property)") }
            w.line("self.unknownTaggedFields = unknownTaggedFields")
            w.close()
            w.line()
        }
        emitDecoder(w, infos: infos, topLevel: topLevel, context: context)
        w.line()
        emitEncoder(w, infos: infos, topLevel: topLevel, context: context)
    }

    // MARK: decoding

    static func readExpression(_ t: FieldType, compact: String, buffer: String, path: String) -> String {
        switch t {
        case .bool: return "try \(buffer).readKafkaBool()"
        case .int8, .int16, .int32, .int64, .uint16, .uint32:
            return "try \(buffer).readKafkaInteger(\(baseType(t)).self)"
        case .float64: return "try \(buffer).readKafkaFloat64()"
        case .uuid: return "try \(buffer).readKafkaUUID()"
        case .string: return "try \(buffer).readKafkaString(compact: \(compact), field: \(SwiftNames.stringLiteral(path)))"
        case .bytes, .records:
            return "try \(buffer).readKafkaBytes(compact: \(compact), field: \(SwiftNames.stringLiteral(path)))"
        case .structure(let n): return "try \(n)(from: &\(buffer), version: version)"
        case .array: fatalError("nested arrays do not occur in Kafka specs")
        }
    }

    func emitRead(_ w: CodeWriter, _ i: FieldInfo, buffer: String, compact: String) {
        let target = "self.\(i.property)"
        let path = SwiftNames.stringLiteral(i.path)
        switch i.spec.type {
        case .array(let element):
            let elementType = Self.baseType(element)
            let elementRead = Self.readExpression(element, compact: compact, buffer: buffer, path: i.path + "[]")
            w.block("do") {
                switch i.nullMode {
                case .never:
                    w.line("let count = try \(buffer).readKafkaNonNullArrayCount(compact: \(compact), field: \(path))")
                    w.line("var items = [\(elementType)]()")
                    w.line("items.reserveCapacity(Swift.min(count, 4096))")
                    w.line("for _ in 0..<count { items.append(\(elementRead)) }")
                    w.line("\(target) = items")
                case .always, .some:
                    w.line("let count = try \(buffer).readKafkaArrayCount(compact: \(compact))")
                    w.open("if count < 0")
                    if case .some(let cond) = i.nullMode {
                        w.line("guard \(cond) else { throw .unexpectedNull(field: \(path)) }")
                    }
                    w.line("\(target) = nil")
                    w.close("} else {")
                    w.indent()
                    w.line("var items = [\(elementType)]()")
                    w.line("items.reserveCapacity(Swift.min(count, 4096))")
                    w.line("for _ in 0..<count { items.append(\(elementRead)) }")
                    w.line("\(target) = items")
                    w.close()
                }
            }
        case .structure(let n):
            let read = "try \(n)(from: &\(buffer), version: version)"
            let nullable = "if try \(buffer).readKafkaInteger(Int8.self) < 0 { \(target) = nil } else { \(target) = \(read) }"
            switch i.nullMode {
            case .never: w.line("\(target) = \(read)")
            case .always: w.line(nullable)
            case .some(let cond):
                w.block("if \(cond)") { w.line(nullable) }
                w.line("else { \(target) = \(read) }")
            }
        case .string, .bytes, .records:
            let isString = i.spec.type == .string
            let nullableRead = isString
                ? "try \(buffer).readKafkaNullableString(compact: \(compact))"
                : "try \(buffer).readKafkaNullableBytes(compact: \(compact))"
            let plainRead = Self.readExpression(i.spec.type, compact: compact, buffer: buffer, path: i.path)
            switch i.nullMode {
            case .never: w.line("\(target) = \(plainRead)")
            case .always: w.line("\(target) = \(nullableRead)")
            case .some(let cond):
                w.line("if \(cond) { \(target) = \(nullableRead) } else { \(target) = \(plainRead) }")
            }
        default:
            w.line("\(target) = \(Self.readExpression(i.spec.type, compact: compact, buffer: buffer, path: i.path))")
        }
    }

    func emitDecoder(_ w: CodeWriter, infos: [FieldInfo], topLevel: Bool, context: VersionRange) {
        w.open("public init(from buffer: inout ByteBuffer, version: Int16) throws(KafkaProtocolError)")
        if topLevel {
            w.line("guard Self.validVersions.contains(version) else { throw .unsupportedVersion(api: Self.messageName, version: version) }")
        }
        w.line("self.init()")
        let usesFlexible = hasFlexibleVersions
        if usesFlexible { w.line(flexibleDeclaration) }
        for i in infos where !i.isTagged {
            guard i.presentCondition != "false" else { continue }
            let compact = usesFlexible ? i.compact : "false"
            if let cond = i.presentCondition {
                w.block("if \(cond)") { emitRead(w, i, buffer: "buffer", compact: compact) }
            } else {
                emitRead(w, i, buffer: "buffer", compact: compact)
            }
        }
        if usesFlexible {
            let tagged = infos.filter { $0.isTagged && $0.presentCondition != "false" }.sorted { $0.tag < $1.tag }
            w.block("if flexible") {
                if tagged.isEmpty {
                    w.line("self.unknownTaggedFields = try buffer.readKafkaUnknownTaggedFields()")
                } else {
                    w.line("let taggedCount = try buffer.readUnsignedVarint()")
                    w.line("var taggedIndex: UInt32 = 0")
                    w.block("while taggedIndex < taggedCount") {
                        w.line("let tag = try buffer.readUnsignedVarint()")
                        w.line("var payload = try buffer.readKafkaTaggedFieldPayload()")
                        w.line("switch tag {")
                        for i in tagged {
                            let tagCond = Self.condition(i.spec.taggedVersions.intersection(i.present), in: context)
                            w.line("case \(i.tag)\(tagCond.map { " where \($0)" } ?? ""):")
                            w.indent()
                            emitRead(w, i, buffer: "payload", compact: "true")
                            w.dedent()
                        }
                        w.line("default:")
                        w.line("    self.unknownTaggedFields.append(TaggedField(tag: tag, data: payload))")
                        w.line("}")
                        w.line("taggedIndex += 1")
                    }
                }
            }
        }
        w.close()
    }

    // MARK: encoding

    static func scalarWrite(_ t: FieldType, _ expr: String, buffer: String) -> String {
        switch t {
        case .bool: return "\(buffer).writeKafkaBool(\(expr))"
        case .int8, .int16, .int32, .int64, .uint16, .uint32:
            return "\(buffer).writeInteger(\(expr), endianness: .big)"
        case .float64: return "\(buffer).writeKafkaFloat64(\(expr))"
        case .uuid: return "\(buffer).writeKafkaUUID(\(expr))"
        case .string: return "try \(buffer).writeKafkaString(\(expr), compact: COMPACT)"
        case .bytes, .records: return "try \(buffer).writeKafkaBytes(\(expr), compact: COMPACT)"
        case .structure: return "try \(expr).encode(into: &\(buffer), version: version)"
        case .array: fatalError("nested arrays do not occur in Kafka specs")
        }
    }

    func emitWrite(_ w: CodeWriter, _ i: FieldInfo, buffer: String, compact: String) {
        let expr = "self.\(i.property)"
        let path = SwiftNames.stringLiteral(i.path)
        func plain(_ e: String, _ t: FieldType) -> String {
            return Self.scalarWrite(t, e, buffer: buffer).replacingOccurrences(of: "COMPACT", with: compact)
        }
        let nullThrow = "throw .unexpectedNull(field: \(path))"
        switch i.spec.type {
        case .array(let element):
            func body(_ items: String) {
                w.line("try \(buffer).writeKafkaArrayCount(\(items).count, compact: \(compact))")
                w.line("for element in \(items) { \(plain("element", element)) }")
            }
            switch i.nullMode {
            case .never: body(expr)
            case .always:
                w.block("if let items = \(expr)") { body("items") }
                w.line("else { \(buffer).writeKafkaNullArray(compact: \(compact)) }")
            case .some(let cond):
                w.block("if let items = \(expr)") { body("items") }
                w.line("else if \(cond) { \(buffer).writeKafkaNullArray(compact: \(compact)) }")
                w.line("else { \(nullThrow) }")
            }
        case .structure:
            switch i.nullMode {
            case .never: w.line(plain(expr, i.spec.type))
            case .always, .some:
                w.block("if let value = \(expr)") {
                    if case .some(let cond) = i.nullMode {
                        w.line("if \(cond) { \(buffer).writeInteger(Int8(1)) }")
                    } else {
                        w.line("\(buffer).writeInteger(Int8(1))")
                    }
                    w.line(plain("value", i.spec.type))
                }
                if case .some(let cond) = i.nullMode {
                    w.line("else if \(cond) { \(buffer).writeInteger(Int8(-1)) }")
                    w.line("else { \(nullThrow) }")
                } else {
                    w.line("else { \(buffer).writeInteger(Int8(-1)) }")
                }
            }
        case .string, .bytes, .records:
            let nullableWrite = i.spec.type == .string
                ? "try \(buffer).writeKafkaNullableString(\(expr), compact: \(compact))"
                : "try \(buffer).writeKafkaNullableBytes(\(expr), compact: \(compact))"
            switch i.nullMode {
            case .never: w.line(plain(expr, i.spec.type))
            case .always: w.line(nullableWrite)
            case .some(let cond):
                w.line("if \(cond) { \(nullableWrite) }")
                w.line("else if let value = \(expr) { \(plain("value", i.spec.type)) }")
                w.line("else { \(nullThrow) }")
            }
        default:
            if i.isOptional {
                w.line("guard let value = \(expr) else { \(nullThrow) }")
                w.line(plain("value", i.spec.type))
            } else {
                w.line(plain(expr, i.spec.type))
            }
        }
    }

    func emitEncoder(_ w: CodeWriter, infos: [FieldInfo], topLevel: Bool, context: VersionRange) {
        w.open("public func encode(into buffer: inout ByteBuffer, version: Int16) throws(KafkaProtocolError)")
        if topLevel {
            w.line("guard Self.validVersions.contains(version) else { throw .unsupportedVersion(api: Self.messageName, version: version) }")
        }
        let usesFlexible = hasFlexibleVersions
        if usesFlexible { w.line(flexibleDeclaration) }
        func unsupportedCheck(_ i: FieldInfo, prefix: String) {
            guard !i.spec.ignorable else { return }
            w.line("\(prefix)if \(Self.nonDefault(i)) { throw .fieldNotSupportedAtVersion(field: \(SwiftNames.stringLiteral(i.path)), version: version) }")
        }
        for i in infos where !i.isTagged {
            let compact = usesFlexible ? i.compact : "false"
            switch i.presentCondition {
            case nil:
                emitWrite(w, i, buffer: "buffer", compact: compact)
            case "false"?:
                unsupportedCheck(i, prefix: "")
            case let cond?:
                w.block("if \(cond)") { emitWrite(w, i, buffer: "buffer", compact: compact) }
                unsupportedCheck(i, prefix: "else ")
            }
        }
        let tagged = infos.filter { $0.isTagged }.sorted { $0.tag < $1.tag }
        if usesFlexible {
            w.block("if flexible") {
                if tagged.isEmpty {
                    w.line("buffer.writeUnsignedVarint(UInt32(self.unknownTaggedFields.count))")
                    w.line("_ = buffer.writeUnknownTaggedFields(self.unknownTaggedFields, from: 0, below: UInt64.max)")
                    return
                }
                w.line("var taggedCount = self.unknownTaggedFields.count")
                for i in tagged {
                    let tagCond = Self.condition(i.spec.taggedVersions.intersection(i.present), in: context)
                    let has = [tagCond, Self.nonDefault(i)].compactMap { $0 }.joined(separator: " && ")
                    w.line("let write\(i.spec.name) = \(tagCond == "false" ? "false" : has)")
                    w.line("if write\(i.spec.name) { taggedCount += 1 }")
                    if let tagCond, tagCond != "false", !i.spec.ignorable {
                        w.line("else if !(\(tagCond)) && \(Self.nonDefault(i)) { throw .fieldNotSupportedAtVersion(field: \(SwiftNames.stringLiteral(i.path)), version: version) }")
                    }
                }
                w.line("buffer.writeUnsignedVarint(UInt32(taggedCount))")
                w.line("var rawIndex = 0")
                for i in tagged {
                    w.block("if write\(i.spec.name)") {
                        w.line("rawIndex = buffer.writeUnknownTaggedFields(self.unknownTaggedFields, from: rawIndex, below: \(i.tag))")
                        w.line("var payload = ByteBuffer()")
                        emitWrite(w, i, buffer: "payload", compact: "true")
                        w.line("buffer.writeKafkaTaggedField(tag: \(i.tag), payload: payload)")
                    }
                }
                w.line("_ = buffer.writeUnknownTaggedFields(self.unknownTaggedFields, from: rawIndex, below: UInt64.max)")
            }
            let checks = tagged.filter { !$0.spec.ignorable }
            if !checks.isEmpty && flexibleDeclaration != "let flexible = true" {
                w.block("else") {
                    for i in checks { unsupportedCheck(i, prefix: "") }
                }
            }
        } else {
            for i in tagged { unsupportedCheck(i, prefix: "") }
        }
        w.close()
    }
}
