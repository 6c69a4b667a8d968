/// A topic name and a partition index: the unit of a log on disk and of leadership.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// Kafka's directory name for the partition's log: `<topic>-<partition>`.
    public var directoryName: String { "\(topic)-\(partition)" }

    public var description: String { directoryName }

    public static func < (lhs: TopicPartition, rhs: TopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }

    /// Parses `<topic>-<partition>` (the topic may itself contain dashes).
    public init?(directoryName: String) {
        guard let dash = directoryName.lastIndex(of: "-"),
              let partition = Int32(directoryName[directoryName.index(after: dash)...]),
              partition >= 0, dash > directoryName.startIndex
        else { return nil }
        self.init(topic: String(directoryName[..<dash]), partition: partition)
    }
}
