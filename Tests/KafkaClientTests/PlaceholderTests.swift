import Testing
@testable import KafkaClient

@Suite struct KafkaClientPlaceholderTests {
    @Test func placeholder() {}
}
