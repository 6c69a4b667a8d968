import Testing
@testable import Collatz

@Suite struct CollatzPlaceholderTests {
    @Test func placeholder() {}
}
