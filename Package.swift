// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Petrel",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "petrel", targets: ["petrel"]),
        .executable(name: "petrel-bench", targets: ["PetrelBench"]),
        .executable(name: "protocol-gen", targets: ["ProtocolGen"]),
        .executable(name: "petrel-fuzz", targets: ["PetrelFuzz"]),
        .library(name: "KafkaProtocol", targets: ["KafkaProtocol"]),
        .library(name: "KafkaClient", targets: ["KafkaClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // CRC-32C (Castagnoli): SSE4.2 hardware path with a slicing-by-8 fallback.
        .target(name: "CCRC32C"),
        // zlib, the one system library the package links (Debian: zlib1g-dev).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Sans-IO Kafka wire codec: primitives, generated messages, record batches v2.
        .target(
            name: "KafkaProtocol",
            dependencies: [
                "CCRC32C", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Kafka's on-disk log: segments, offset/time indexes, checkpoints, recovery, retention.
        .target(
            name: "LogStorage",
            dependencies: [
                "KafkaProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The Raft metadata quorum as a pure, deterministic state machine (issue 4).
        .target(name: "MetadataQuorum"),
        // Kafka-style partition replication (ISR, high watermark, leader epochs) as a pure state machine.
        .target(name: "PartitionReplication"),
        // The broker: NIO server, request handlers, partitions, configuration, metrics.
        .target(
            name: "Broker",
            dependencies: [
                "KafkaProtocol", "LogStorage", "MetadataQuorum",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Pure-Swift async Kafka client on SwiftNIO: connections, Producer, Consumer (groups), Admin.
        .target(
            name: "KafkaClient",
            dependencies: [
                "KafkaProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The Collatz workload: chain generator, producer worker, ClickHouse sink, answers store.
        .target(
            name: "Collatz",
            dependencies: [
                "KafkaClient", "KafkaProtocol",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The answers REST API (Hummingbird): the four questions, plots, OpenAPI.
        .target(
            name: "AnswersAPI",
            dependencies: [
                "Collatz",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Reads ../shared/kafka-protocol specs and writes Sources/KafkaProtocol/Generated.
        .target(name: "ProtocolGenKit"),
        .executableTarget(name: "ProtocolGen", dependencies: ["ProtocolGenKit"]),
        .executableTarget(
            name: "petrel",
            dependencies: [
                "KafkaProtocol", "Broker", "KafkaClient", "Collatz", "AnswersAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "PetrelBench",
            dependencies: [
                "KafkaProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // libFuzzer target for the request decoder (scripts/fuzz); a plain build replays inputs.
        .executableTarget(
            name: "PetrelFuzz",
            dependencies: ["KafkaProtocol", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "KafkaProtocolTests",
            dependencies: [
                "KafkaProtocol", "ProtocolGenKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "LogStorageTests",
            dependencies: [
                "LogStorage", "KafkaProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BrokerTests",
            dependencies: [
                "Broker", "KafkaProtocol", "LogStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Real Kafka clients (kcat with librdkafka 2.0.2 and 2.16, confluent-kafka, kafka-python,
        // aiokafka) against `petrel broker`, and the kill -9 crash test: scripts/interop/.
        .testTarget(name: "InteropTests"),
        .testTarget(name: "MetadataQuorumTests", dependencies: ["MetadataQuorum"]),
        .testTarget(name: "PartitionReplicationTests", dependencies: ["PartitionReplication"]),
        .testTarget(
            name: "KafkaClientTests",
            dependencies: [
                "KafkaClient", "KafkaProtocol", "Broker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "CollatzTests",
            dependencies: [
                "Collatz", "AnswersAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ]
)
