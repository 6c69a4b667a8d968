/// Which request and response header version an API version uses.
///
/// Derived from each API's flexible versions, with Kafka's two exceptions:
/// - the request header's client id is never a compact string (the spec marks it
///   `flexibleVersions: none`, which the generated `RequestHeader` honours), and
/// - the ApiVersions response header is always version 0, so that a client that does not yet
///   know the broker's versions can always read the answer.
/// ControlledShutdown v0 also used request header v0 (no client id).
extension ApiKey {
    public func requestHeaderVersion(for apiVersion: Int16) -> Int16 {
        if self == .controlledShutdown && apiVersion == 0 { return 0 }
        if let first = firstFlexibleVersion, apiVersion >= first { return 2 }
        return 1
    }

    public func responseHeaderVersion(for apiVersion: Int16) -> Int16 {
        if self == .apiVersions { return 0 }
        if let first = firstFlexibleVersion, apiVersion >= first { return 1 }
        return 0
    }
}
