import KafkaProtocol

extension RequestRouter {
    /// DescribeConfigs for TOPIC and BROKER resources, with sources, synonyms, read-only flags,
    /// types and documentation as Kafka reports them.
    func handleDescribeConfigs(_ request: DescribeConfigsRequest, _ context: RequestContext) -> DescribeConfigsResponse {
        let image = broker.metadata.current()
        let version = context.apiVersion
        var response = DescribeConfigsResponse()
        for resource in request.resources {
            var result = DescribeConfigsResponse.DescribeConfigsResult(resourceType: resource.resourceType, resourceName: resource.resourceName)
            let synonyms = version >= 1 && request.includeSynonyms
            let docs = version >= 3 && request.includeDocumentation
            var described: [DescribedConfig] = []
            switch ConfigResourceType(rawValue: resource.resourceType) {
            case .topic:
                if let topic = image.topics[resource.resourceName] {
                    described = TopicConfigDefinitions.effectiveTopicConfig(
                        overrides: topic.configs, broker: broker.config, keys: resource.configurationKeys,
                        includeSynonyms: synonyms, includeDocumentation: docs)
                } else {
                    result.errorCode = KafkaErrorCode.unknownTopicOrPartition.code
                    result.errorMessage = "Topic \(resource.resourceName) does not exist."
                }
            case .broker:
                if resource.resourceName.isEmpty || resource.resourceName == String(broker.nodeId) {
                    described = broker.effectiveConfig(image).describe(
                        keys: resource.configurationKeys, includeSynonyms: synonyms, includeDocumentation: docs,
                        perBroker: !resource.resourceName.isEmpty)
                } else {
                    result.errorCode = KafkaErrorCode.invalidRequest.code
                    result.errorMessage = "broker \(resource.resourceName) is not this broker (\(broker.nodeId)); ask it directly"
                }
            case .brokerLogger:
                described = []
            default:
                result.errorCode = KafkaErrorCode.invalidRequest.code
                result.errorMessage = "unsupported resource type \(resource.resourceType)"
            }
            result.configs = described.map { d in
                var entry = d.describeConfigsEntry
                if version >= 1 { entry.isDefault = false } else { entry.configSource = -1; entry.synonyms = [] }
                if version < 3 { entry.configType = 0; entry.documentation = nil }
                return entry
            }
            response.results.append(result)
        }
        return response
    }

    /// AlterConfigs (legacy): replaces every dynamic config of each resource.
    func handleAlterConfigs(_ request: AlterConfigsRequest, _ context: RequestContext) -> AlterConfigsResponse {
        var response = AlterConfigsResponse()
        for resource in request.resources {
            let current = currentOverrides(resource.resourceType, resource.resourceName)
            var target = [String: String]()
            for c in resource.configs { if let v = c.value { target[c.name] = v } }
            var changes: [(String, String?)] = target.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            for key in (current ?? [:]).keys.sorted() where target[key] == nil { changes.append((key, nil)) }
            let (code, message) = applyConfigChanges(resource.resourceType, resource.resourceName, changes, validateOnly: request.validateOnly, context)
            response.responses.append(.init(errorCode: code.code, errorMessage: message, resourceType: resource.resourceType, resourceName: resource.resourceName))
        }
        return response
    }

    /// IncrementalAlterConfigs: SET (0), DELETE (1), APPEND (2) and SUBTRACT (3) per key.
    func handleIncrementalAlterConfigs(_ request: IncrementalAlterConfigsRequest, _ context: RequestContext) -> IncrementalAlterConfigsResponse {
        var response = IncrementalAlterConfigsResponse()
        for resource in request.resources {
            let current = currentOverrides(resource.resourceType, resource.resourceName) ?? [:]
            var changes: [(String, String?)] = []
            var failure: (KafkaErrorCode, String)?
            for c in resource.configs {
                switch c.configOperation {
                case 0: changes.append((c.name, c.value))
                case 1: changes.append((c.name, nil))
                case 2, 3:
                    let existing = (current[c.name] ?? effectiveValue(resource.resourceType, resource.resourceName, c.name) ?? "")
                        .split(separator: ",").map(String.init).filter { !$0.isEmpty }
                    let items = (c.value ?? "").split(separator: ",").map(String.init)
                    let merged = c.configOperation == 2 ? existing + items.filter { !existing.contains($0) } : existing.filter { !items.contains($0) }
                    changes.append((c.name, merged.joined(separator: ",")))
                default:
                    failure = (.invalidRequest, "unknown config operation \(c.configOperation) for \(c.name)")
                }
            }
            let (code, message) = failure ?? applyConfigChanges(resource.resourceType, resource.resourceName, changes, validateOnly: request.validateOnly, context)
            response.responses.append(.init(errorCode: code.code, errorMessage: message, resourceType: resource.resourceType, resourceName: resource.resourceName))
        }
        return response
    }

    private func currentOverrides(_ type: Int8, _ name: String) -> [String: String]? {
        let image = broker.metadata.current()
        switch ConfigResourceType(rawValue: type) {
        case .topic: return image.topics[name]?.configs
        case .broker: return image.brokerConfigs[name] ?? [:]
        default: return nil
        }
    }

    private func effectiveValue(_ type: Int8, _ name: String, _ key: String) -> String? {
        let image = broker.metadata.current()
        switch ConfigResourceType(rawValue: type) {
        case .topic:
            return TopicConfigDefinitions.effectiveTopicConfig(overrides: image.topics[name]?.configs ?? [:], broker: broker.config, keys: [key]).first?.value
        case .broker:
            return broker.effectiveConfig(image).value(of: key)
        default:
            return nil
        }
    }

    /// Validates and commits config changes (a value sets, nil removes) through the metadata log.
    private func applyConfigChanges(_ type: Int8, _ name: String, _ changes: [(String, String?)], validateOnly: Bool,
                                    _ context: RequestContext) -> (KafkaErrorCode, String?) {
        let image = broker.metadata.current()
        switch ConfigResourceType(rawValue: type) {
        case .topic:
            guard image.topics[name] != nil else { return (.unknownTopicOrPartition, "Topic \(name) does not exist.") }
            var normalized: [(String, String?)] = []
            for (key, value) in changes {
                if let value {
                    do {
                        normalized.append((key, try TopicConfigDefinitions.validate(key: key, value: value)))
                    } catch {
                        return (.invalidConfig, error.message)
                    }
                } else {
                    guard TopicConfigDefinitions.byName[key] != nil else { return (.invalidConfig, "Unknown topic config name: \(key)") }
                    normalized.append((key, nil))
                }
            }
            if validateOnly { return (.none, nil) }
            do {
                try broker.metadata.alterConfigs(type: .topic, name: name, changes: normalized, logger: context.logger)
            } catch {
                return (.kafkaStorageError, "could not write the metadata log: \(error)")
            }
            return (.none, nil)
        case .broker:
            guard name.isEmpty || name == String(broker.nodeId) else {
                return (.invalidRequest, "broker \(name) is not this broker (\(broker.nodeId))")
            }
            var dynamic = image.brokerConfigs[name] ?? [:]
            for (key, value) in changes { dynamic[key] = value }
            do {
                _ = try broker.config.applyingDynamic(
                    broker: name.isEmpty ? image.brokerConfigs[String(broker.nodeId)] ?? [:] : dynamic,
                    clusterDefault: name.isEmpty ? dynamic : image.brokerConfigs[""] ?? [:])
            } catch {
                return (error.errorCode, error.description)
            }
            if validateOnly { return (.none, nil) }
            do {
                try broker.metadata.alterConfigs(type: .broker, name: name, changes: changes, logger: context.logger)
            } catch {
                return (.kafkaStorageError, "could not write the metadata log: \(error)")
            }
            return (.none, nil)
        default:
            return (.invalidRequest, "unsupported resource type \(type)")
        }
    }
}
