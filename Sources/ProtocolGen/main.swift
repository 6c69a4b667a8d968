import Foundation
import ProtocolGenKit

// Usage: protocol-gen [SPEC_ROOT] [PACKAGE_ROOT]
// SPEC_ROOT defaults to ../shared/kafka-protocol, PACKAGE_ROOT to the current directory.
let arguments = CommandLine.arguments.dropFirst()
if arguments.contains("--help") || arguments.contains("-h") {
    print("""
    usage: protocol-gen [SPEC_ROOT] [PACKAGE_ROOT]
      Reads Kafka's JSON specs (messages/, records/) under SPEC_ROOT (default ../shared/kafka-protocol)
      and writes Sources/KafkaProtocol/Generated and Tests/KafkaProtocolTests/Generated under
      PACKAGE_ROOT (default: the current directory).
    """)
    exit(0)
}
let specRoot = URL(fileURLWithPath: arguments.first ?? "../shared/kafka-protocol")
let packageRoot = URL(fileURLWithPath: arguments.dropFirst().first ?? FileManager.default.currentDirectoryPath)
do {
    let files = try Generator.generate(specRoot: specRoot)
    try Generator.write(files, packageRoot: packageRoot)
    print("protocol-gen: wrote \(files.count) files from \(specRoot.path)")
} catch {
    FileHandle.standardError.write(Data("protocol-gen: \(error)\n".utf8))
    exit(1)
}
