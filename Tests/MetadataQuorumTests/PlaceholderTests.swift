import MetadataQuorum
import Testing

@Test func quorumModuleLinks() {
    _ = MetadataQuorum.self
}
