import ArgumentParser
import Foundation
import KafkaProtocol
import NIOCore

/// `petrel protocol ...`: inspect what the codec speaks and decode captured frames.
struct Protocol: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protocol",
        abstract: "Inspect the Kafka protocol codec.",
        subcommands: [ListApis.self, DecodeFrame.self])

    struct ListApis: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apis", abstract: "List every Kafka API with its versions and first flexible version.")

        func run() {
            print("key  name                                versions  flexible")
            for api in ApiKey.allCases {
                let name = api.name.padding(toLength: 34, withPad: " ", startingAt: 0)
                let versions = "\(api.validVersions.lowerBound)-\(api.validVersions.upperBound)"
                let flexible = api.firstFlexibleVersion.map { "\($0)+" } ?? "none"
                print(String(format: "%3d  ", Int(api.rawValue)) + name + "  "
                    + versions.padding(toLength: 8, withPad: " ", startingAt: 0) + "  " + flexible)
            }
        }
    }

    struct DecodeFrame: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "decode",
            abstract: "Decode a captured size-prefixed frame (a request, or a response with --api/--version).")

        @Argument(help: "A file holding one frame, size prefix included.")
        var file: String

        @Option(help: "For a response: the API name or key of the request it answers.")
        var api: String?

        @Option(help: "For a response: the API version of the request it answers.")
        var version: Int16?

        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            var buffer = ByteBuffer(bytes: data)
            guard var frame = try KafkaFrames.readFrame(from: &buffer) else {
                throw ValidationError("\(file) holds an incomplete frame (\(data.count) bytes)")
            }
            if let api {
                guard let version else { throw ValidationError("--version is required with --api") }
                guard let key = ApiKey.allCases.first(where: { $0.name == api || String($0.rawValue) == api }) else {
                    throw ValidationError("unknown API \(api); see `petrel protocol apis`")
                }
                let (header, body) = try KafkaFrames.decodeResponse(&frame, apiKey: key, version: version)
                print("response \(key) v\(version) correlationId=\(header.correlationId)")
                print(body)
            } else {
                let request = try KafkaFrames.decodeRequest(&frame)
                print("request \(request.apiKey) v\(request.apiVersion) correlationId=\(request.header.correlationId) clientId=\(request.header.clientId ?? "null")")
                print(request.body)
            }
            if frame.readableBytes > 0 { print("warning: \(frame.readableBytes) bytes left undecoded") }
        }
    }
}
