import KafkaProtocol

extension RequestRouter {
    /// ApiVersions: the versions of every API this broker serves. Tagged fields stay at their
    /// defaults and are therefore not written: librdkafka before 2.2 cannot skip them.
    func handleApiVersions(_ request: ApiVersionsRequest, _ context: RequestContext) -> ApiVersionsResponse {
        return apiVersionsResponse(listener: context.listenerName)
    }
}
