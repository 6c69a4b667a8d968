import Foundation
import Hummingbird

/// Swagger UI's files for `/docs`, served from a local directory (`petrel api --swagger-ui-dir`)
/// for machines without internet access. Any swagger-ui-dist folder works, e.g. the one the PyPI
/// package swagger-ui-bundle ships:
/// `python3 -c 'import swagger_ui_bundle; print(swagger_ui_bundle.swagger_ui_path)'`.
///
/// Only the fixed names below are served, each at `/docs/<name>`: the request never names a
/// path on disk, so there is nothing to traverse.
public enum SwaggerUIAssets {
    /// File name → Content-Type.
    static let files: [String: String] = [
        "swagger-ui.css": "text/css; charset=utf-8",
        "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
        "favicon-32x32.png": "image/png",
        "favicon-16x16.png": "image/png",
    ]

    /// What the page cannot work without.
    public static let required = ["swagger-ui.css", "swagger-ui-bundle.js"]

    /// Where `/docs` loads the assets from when no directory is given.
    static let cdnBase = "https://unpkg.com/swagger-ui-dist@5/"
    /// ... and when one is (relative to `/docs`, as `openapi.json` is).
    static let localBase = "docs/"

    /// The required files missing from `directory` (empty: it is usable).
    public static func missing(in directory: String) -> [String] {
        required.filter { !isReadableFile(directory + "/" + $0) }
    }

    static func isReadableFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
            && FileManager.default.isReadableFile(atPath: path)
    }

    /// `GET /docs/{file}`: a known name read from `directory`, else a JSON 404.
    static func response(file name: String?, directory: String, fileIO: FileIO,
                         context: some RequestContext) async throws -> Response {
        let name = name ?? ""
        guard let contentType = files[name] else {
            throw APIError(.notFound, "no such Swagger UI file: \(ParameterParser.preview(name))")
        }
        let path = directory + "/" + name
        guard isReadableFile(path) else {
            throw APIError(.notFound, "Swagger UI file \(name) is missing from the --swagger-ui-dir directory")
        }
        let body = try await fileIO.loadFile(path: path, context: context)
        return Response(status: .ok, headers: [.contentType: contentType, .cacheControl: "max-age=3600"], body: body)
    }
}
