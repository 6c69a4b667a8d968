import KafkaProtocol

extension ClientCore {
    /// Adds a broker learned from FindCoordinator when the metadata does not list it yet.
    func learnBroker(_ info: BrokerInfo) {
        if metadataBrokerMissing(info.nodeId) { addBroker(info) }
    }
}

extension KafkaClient {
    /// The node coordinating `group` (FindCoordinator, retried while the coordinator loads).
    func findCoordinator(group: String) async throws(KafkaClientError) -> Int32 {
        try await retrying("FindCoordinator \(group)") { () async throws(KafkaClientError) -> Int32 in
            let connection = try await core.connection(to: .any)
            let version = try connection.version(for: .findCoordinator)
            var request = FindCoordinatorRequest(keyType: 0)
            if version >= 4 { request.coordinatorKeys = [group] } else { request.key = group }
            let response = try await connection.send(request, version: version)
            let info: BrokerInfo
            if version >= 4 {
                guard let c = response.coordinators.first else {
                    throw .protocolViolation("FindCoordinator answer without coordinators")
                }
                try KafkaClientError.check(c.errorCode, c.errorMessage)
                info = BrokerInfo(nodeId: c.nodeId, host: c.host, port: Int(c.port), rack: nil)
            } else {
                try KafkaClientError.check(response.errorCode, response.errorMessage)
                info = BrokerInfo(nodeId: response.nodeId, host: response.host, port: Int(response.port), rack: nil)
            }
            guard info.nodeId >= 0, (1...65535).contains(info.port) else {
                throw .protocolViolation("FindCoordinator gave node \(info.nodeId) at \(info.host):\(info.port)")
            }
            await core.learnBroker(info)
            return info.nodeId
        }
    }
}
