import KafkaProtocol

extension MetadataImage {
    /// The records that rebuild this image from nothing (a metadata snapshot's content): applied
    /// in order to an empty image they give back an equal image (`offset` aside).
    func snapshotRecords() -> [MetadataRecord] {
        var records: [MetadataRecord] = []
        for broker in brokers.values.sorted(by: { $0.id < $1.id }) {
            var r = RegisterBrokerRecord()
            r.brokerId = broker.id
            r.incarnationId = broker.incarnationId
            r.brokerEpoch = broker.epoch
            let endpoints = broker.endpoints.isEmpty
                ? [ListenerEndpoint(name: "PLAINTEXT", host: broker.host, port: broker.port)] : broker.endpoints
            r.endPoints = endpoints.map { .init(name: $0.name, host: $0.host, port: UInt16(clamping: $0.port), securityProtocol: 0) }
            r.rack = broker.rack
            r.fenced = broker.fenced
            records.append(.registerBroker(r))
        }
        for (resource, configs) in brokerConfigs.sorted(by: { $0.key < $1.key }) {
            for (name, value) in configs.sorted(by: { $0.key < $1.key }) {
                records.append(.config(ConfigRecord(resourceType: ConfigResourceType.broker.rawValue, resourceName: resource, name: name, value: value)))
            }
        }
        for topic in topics.values.sorted(by: { $0.name < $1.name }) {
            records.append(.topic(TopicRecord(name: topic.name, topicId: topic.id)))
            for (name, value) in topic.configs.sorted(by: { $0.key < $1.key }) {
                records.append(.config(ConfigRecord(resourceType: ConfigResourceType.topic.rawValue, resourceName: topic.name, name: name, value: value)))
            }
            for p in topic.partitions {
                records.append(.partition(PartitionRecord(
                    partitionId: p.partition, topicId: topic.id, replicas: p.replicas, isr: p.isr,
                    leader: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch)))
            }
        }
        if nextProducerId > 0 {
            var r = ProducerIdsRecord()
            r.brokerId = -1
            r.nextProducerId = nextProducerId
            records.append(.producerIds(r))
        }
        return records
    }

    /// An image rebuilt from a snapshot's records, at `offset` (the snapshot's end offset - 1).
    static func fromSnapshot(_ records: [MetadataRecord], offset: Int64) -> MetadataImage {
        var image = MetadataImage()
        for record in records { image.apply(record) }
        image.offset = offset
        return image
    }
}

extension MetadataImage: Equatable {
    static func == (a: MetadataImage, b: MetadataImage) -> Bool {
        a.offset == b.offset && a.topics == b.topics && a.topicNames == b.topicNames && a.brokers == b.brokers
            && a.brokerConfigs == b.brokerConfigs && a.nextProducerId == b.nextProducerId
    }
}
