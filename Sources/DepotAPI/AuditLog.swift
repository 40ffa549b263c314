import DepotCore
import Foundation
import Hummingbird

/// Appends one JSON line per mutating call to `DATA/audit.log`:
/// time, client, action, object, outcome.
public actor AuditLog {
    public struct Entry: Codable, Sendable {
        public var time: String
        public var client: String
        public var action: String
        public var object: String
        public var outcome: String
        public var status: Int
        /// The name of the token the call authenticated with (nil: it did not).
        public var token: String?
    }

    private let path: String?
    private var handle: FileHandle?

    /// `path` nil keeps no log (tests that do not look at it).
    public init(path: String?) {
        self.path = path
    }

    public func append(_ entry: Entry) {
        guard let path else { return }
        if handle == nil {
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            }
            handle = FileHandle(forWritingAtPath: path)
            _ = try? handle?.seekToEnd()
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var data = try? encoder.encode(entry) else { return }
        data.append(0x0A)
        try? handle?.write(contentsOf: data)
    }
}

/// Records every authenticated POST, PUT, PATCH and DELETE with its outcome
/// and the token's name (failed authentications are written by
/// `BearerAuthMiddleware`).
struct AuditMiddleware: RouterMiddleware {
    typealias Context = DepotRequestContext
    let log: AuditLog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let mutating: Set<HTTPRequest.Method> = [.post, .put, .patch, .delete]
        guard mutating.contains(request.method) else { return try await next(request, context) }
        let action = "\(request.method.rawValue) \(request.uri.path)"
        var object = Self.object(from: request.uri.path)
        var request = request
        if request.method == .post, object.hasSuffix("*") {
            // A create names its object in the body: the entry says `pool silver`,
            // not `pool *`. The body is small JSON, read once and kept for the route.
            if let body = try? await request.collectBody(upTo: 1 << 20) { object = Self.created(object, body: body) }
        }
        let time = Timestamp.now()
        let token = context.token?.name
        do {
            let response = try await next(request, context)
            await log.append(
                .init(
                    time: time, client: context.client, action: action, object: object, outcome: "ok",
                    status: Int(response.status.code), token: token))
            return response
        } catch {
            let answer = ErrorMiddleware.apiError(for: error)
            await log.append(
                .init(
                    time: time, client: context.client, action: action, object: object,
                    outcome: "\(answer.code): \(answer.message)", status: Int(answer.status.code), token: token))
            throw error
        }
    }

    /// `pool *` → `pool silver` from a create's body (`name`, `iqn` or `pool`);
    /// unchanged when the body names nothing.
    static func created(_ object: String, body: ByteBuffer) -> String {
        struct Names: Decodable {
            var name: String?
            var iqn: String?
            var pool: String?
        }
        guard let names = try? JSONDecoder().decode(Names.self, from: Data(body.readableBytesView)),
            let name = names.name ?? names.iqn ?? names.pool
        else { return object }
        return String(object.dropLast()) + name
    }

    /// `/v1/pools/p1/volumes/v1` → `volume p1/v1`; `/v1/pools/p1` → `pool p1`.
    static func object(from path: String) -> String {
        let parts = path.split(separator: "/").map(String.init)
        if parts.count >= 5, parts[1] == "pools", parts[3] == "volumes" { return "volume \(parts[2])/\(parts[4])" }
        if parts.count >= 4, parts[1] == "pools", parts[3] == "volumes" { return "volume \(parts[2])/*" }
        if parts.count >= 3, parts[1] == "pools" { return "pool \(parts[2])" }
        if parts.count >= 3, parts[1] == "exports" { return parts[2] == "publish" ? "exports" : "export \(parts[2])" }
        if parts.count >= 2, parts[1] == "exports" { return "export *" }
        if parts.count >= 3, parts[1] == "targets" {
            return "target \(parts[2])" + (parts.count >= 5 ? " \(parts[3]) \(parts[4])" : "")
        }
        if parts.count >= 2, parts[1] == "targets" { return "target *" }
        if parts.count >= 2, parts[1] == "pools" { return "pool *" }
        return path
    }
}
