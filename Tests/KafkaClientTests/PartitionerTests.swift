import NIOCore
import Testing
@testable import KafkaClient

/// Expected partitions computed once with confluent-kafka 2.16.1 (librdkafka 2.16.0),
/// `partitioner=murmur2_random`, against Tansu 0.6.0, topics of 7 and 100 partitions.
@Suite struct PartitionerTests {
    static let vectors: [(key: String, p7: Int32, p100: Int32)] = [
        ("", 2, 81), ("a", 5, 24), ("ab", 0, 34), ("abc", 4, 7), ("abcd", 5, 0), ("abcde", 4, 41),
        ("hello", 4, 29), ("key-0", 0, 41), ("key-1", 5, 40), ("key-42", 3, 27), ("collatz-27", 3, 3),
        ("été", 4, 73), ("The quick brown fox jumps over the lazy dog", 3, 18), ("0123456789abcdef0123", 5, 8),
    ]

    @Test("murmur2 places keys where librdkafka's murmur2_random does", arguments: vectors.indices)
    func matchesLibrdkafka(_ i: Int) {
        let v = Self.vectors[i]
        #expect(Murmur2.partition(forKey: ByteBuffer(string: v.key), partitionCount: 7) == v.p7)
        #expect(Murmur2.partition(forKey: ByteBuffer(string: v.key), partitionCount: 100) == v.p100)
    }

    @Test func hashOfEmptyInputIsKafkasSeedMix() {
        // Kafka's murmur2 of no bytes (seed ^ 0, finalised).
        #expect(Murmur2.hash([]) == Murmur2.hash(ByteBuffer()))
        #expect(Murmur2.partition(forKey: ByteBuffer(), partitionCount: 100) == 81)
    }

    @Test func negativeHashesStayInRange() {
        for i in 0..<10_000 {
            let p = Murmur2.partition(forKey: ByteBuffer(string: "k\(i)"), partitionCount: 13)
            #expect((0..<13).contains(p))
        }
    }
}
