// A libFuzzer target for the request decoder, and a replayer for its findings.
//
//   scripts/fuzz [seconds]            build with -sanitize=fuzzer and fuzz (see scripts/fuzz)
//   swift run petrel-fuzz DIR|FILE... replay inputs through the decoder (plain build)
//
// The property: any byte string either decodes to a request that encodes again, or throws a
// KafkaProtocolError. A trap, a hang or an out-of-memory is a finding.

import Foundation
import KafkaProtocol
import NIOCore

enum RequestDecoderFuzzer {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        var frame = ByteBuffer(bytes: bytes)
        guard let request = try? KafkaFrames.decodeRequest(&frame) else { return }
        var out = ByteBuffer()
        _ = try? request.header.encode(into: &out, version: request.apiKey.requestHeaderVersion(for: request.apiVersion))
        _ = try? request.body.encode(into: &out, version: request.apiVersion)
    }
}

#if PETREL_LIBFUZZER
@_cdecl("LLVMFuzzerTestOneInput")
public func petrelFuzzRequestDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    RequestDecoderFuzzer.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

typealias FuzzTarget = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ target: FuzzTarget) -> CInt

// SwiftPM links an executable target's entry point as `<Module>_main`; hand it to libFuzzer's driver.
@_cdecl("PetrelFuzz_main")
public func petrelFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in petrelFuzzRequestDecoder(data, size) }
}
#else
@main
struct PetrelFuzzReplay {
    static func main() throws {
        var paths = Array(CommandLine.arguments.dropFirst())
        if paths.isEmpty || paths.contains("--help") {
            print("usage: petrel-fuzz DIR|FILE...  (replays inputs through the request decoder; scripts/fuzz fuzzes)")
            return
        }
        var count = 0
        while let path = paths.popLast() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                let entries = try FileManager.default.contentsOfDirectory(atPath: path)
                paths += entries.map { path + "/" + $0 }
                continue
            }
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            data.withUnsafeBytes { RequestDecoderFuzzer.run($0) }
            count += 1
        }
        print("petrel-fuzz: replayed \(count) inputs without a crash")
    }
}
#endif
