import Foundation

/// Emits, for the test target, a random-instance builder for every message: values are drawn
/// only for fields present at the requested version (and null only where nullable), so that
/// `decode(encode(m)) == m` must hold exactly.
struct ArbitraryEmitter {
    let spec: MessageSpec

    static func generator(_ t: FieldType, scope: String) -> String {
        switch t {
        case .bool: return "random.bool()"
        case .int8, .int16, .int32, .int64, .uint16, .uint32:
            return "random.integer(\(MessageEmitter.baseType(t)).self)"
        case .float64: return "random.double()"
        case .uuid: return "random.uuid()"
        case .string: return "random.string()"
        case .bytes, .records: return "random.bytes()"
        case .structure(let n): return "\(scope).\(n).arbitrary(version: version, using: &random)"
        case .array(let e): return "random.array { random in \(generator(e, scope: scope)) }"
        }
    }

    func emit(into w: CodeWriter) throws {
        let m = MessageEmitter(spec: spec)
        try emitBody(w, typeName: spec.name, fields: spec.fields, context: spec.validVersions, emitter: m, topLevel: true)
        for s in try m.collectStructs() {
            try emitBody(w, typeName: "\(spec.name).\(s.name)", fields: s.fields, context: s.context, emitter: m, topLevel: false)
        }
    }

    func emitBody(_ w: CodeWriter, typeName: String, fields: [FieldSpec], context: VersionRange, emitter m: MessageEmitter, topLevel: Bool) throws {
        let infos = try fields.map { try m.info($0, owner: typeName, context: context) }
        w.open("extension \(typeName)\(topLevel ? ": ArbitraryMessage" : "")")
        w.open("static func arbitrary(version: Int16, using random: inout SplitMix64) -> Self")
        w.line("var value = Self()")
        let tags = infos.compactMap { $0.spec.tag }
        for i in infos {
            var cond = i.presentCondition
            if i.isTagged {
                cond = MessageEmitter.condition(i.spec.taggedVersions.intersection(i.present), in: context)
                let flex = m.hasFlexibleVersions ? MessageEmitter.condition(spec.flexibleVersions, in: context) : "false"
                cond = [cond, flex].compactMap { $0 }.joined(separator: " && ")
                if cond == "" { cond = nil }
            }
            if cond == "false" || (cond?.contains("false") ?? false) { continue }
            var assign = "value.\(i.property) = \(Self.generator(i.spec.type, scope: spec.name))"
            switch i.nullMode {
            case .never: break
            case .always: assign = "value.\(i.property) = random.oneIn(5) ? nil : \(Self.generator(i.spec.type, scope: spec.name))"
            case .some(let nc): assign = "value.\(i.property) = (\(nc)) && random.oneIn(5) ? nil : \(Self.generator(i.spec.type, scope: spec.name))"
            }
            if let cond { w.line("if \(cond) { \(assign) }") } else { w.line(assign) }
        }
        if m.hasFlexibleVersions {
            let flex = MessageEmitter.condition(spec.flexibleVersions, in: context) ?? "true"
            if flex != "false" {
                w.line("if \(flex) { value.unknownTaggedFields = random.unknownTaggedFields(above: \(tags.max() ?? -1)) }")
            }
        }
        w.line("return value")
        w.close()
        w.close()
        w.line()
    }
}
