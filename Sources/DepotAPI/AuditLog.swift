import DepotCore
import Foundation
import Hummingbird

/// Appends one JSON line per mutating call, refused authentication and
/// refused iSCSI login to `DATA/audit.log` (mode 0600). Past `maxBytes` the
/// file is renamed `audit.log.1` (older ones shift to `.2` … `.N`, the oldest
/// dropped) before the next line is written: appends are serialized by the
/// actor, so a rotation never loses or splits a line.
public actor AuditLog {
    public typealias Entry = AuditEntry

    private let path: String?
    private let maxBytes: UInt64
    private let keep: Int
    private var handle: FileHandle?
    private var size: UInt64 = 0

    /// `path` nil keeps no log (tests that do not look at it).
    public init(path: String?, maxBytes: UInt64 = 16 << 20, keep: Int = 4) {
        self.path = path
        self.maxBytes = maxBytes
        self.keep = max(1, keep)
    }

    public func append(_ entry: Entry) {
        guard let path else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var data = try? encoder.encode(entry) else { return }
        data.append(0x0A)
        if handle == nil { open(path) }
        if size > 0, size + UInt64(data.count) > maxBytes { rotate(path) }
        do {
            try handle?.write(contentsOf: data)
            size += UInt64(data.count)
        } catch {
            // A failed write (disk full) is retried on a fresh handle next time.
            try? handle?.close()
            handle = nil
        }
    }

    private func open(_ path: String) {
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        handle = FileHandle(forWritingAtPath: path)
        size = (try? handle?.seekToEnd()) ?? 0
    }

    private func rotate(_ path: String) {
        try? handle?.synchronize()
        try? handle?.close()
        handle = nil
        let fm = FileManager.default
        try? fm.removeItem(atPath: "\(path).\(keep)")
        for n in stride(from: keep - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(n)") {
            try? fm.moveItem(atPath: "\(path).\(n)", toPath: "\(path).\(n + 1)")
        }
        try? fm.moveItem(atPath: path, toPath: "\(path).1")
        open(path)
    }

    /// The entries of every kept file, oldest first, that match: written at
    /// or after `since`, an action containing `action`, an outcome that is
    /// (`failures` true) or is not (false) a failure; the last `limit`.
    public func read(since: Date?, action: String?, failures: Bool?, limit: Int) -> [Entry] {
        guard let path else { return [] }
        try? handle?.synchronize()
        let decoder = JSONDecoder()
        var found: [Entry] = []
        let files = stride(from: keep, through: 1, by: -1).map { "\(path).\($0)" } + [path]
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            for line in data.split(separator: 0x0A) {
                guard let entry = try? decoder.decode(Entry.self, from: line) else { continue }
                if let since, let time = Timestamp.date(entry.time), time < since { continue }
                if let action, !entry.action.contains(action) { continue }
                if let failures, entry.succeeded == failures { continue }
                found.append(entry)
            }
        }
        return Array(found.suffix(max(0, limit)))
    }
}

/// Records every authenticated POST, PUT, PATCH and DELETE with its outcome
/// and the token's name, and every read a token's role refused (403).
/// Failed authentications are written by `BearerAuthMiddleware`.
struct AuditMiddleware: RouterMiddleware {
    typealias Context = DepotRequestContext
    let log: AuditLog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let mutating = [.post, .put, .patch, .delete].contains(request.method)
        let action = "\(request.method.rawValue) \(request.uri.path)"
        var object = Self.object(from: request.uri.path)
        var request = request
        if mutating, request.method == .post, object.hasSuffix("*") {
            // A create names its object in the body: the entry says `pool silver`,
            // not `pool *`. The body is small JSON, read once and kept for the route.
            if let body = try? await request.collectBody(upTo: 1 << 20) { object = Self.created(object, body: body) }
        }
        let time = Timestamp.now()
        let token = context.token?.name
        do {
            let response = try await next(request, context)
            if mutating {
                await log.append(
                    .init(
                        time: time, client: context.client, action: action, object: object, outcome: "ok",
                        status: Int(response.status.code), token: token))
            }
            return response
        } catch {
            // Reads are not recorded, except one a token's role refused.
            let answer = ErrorMiddleware.apiError(for: error)
            if mutating || answer.status == .forbidden {
                await log.append(
                    .init(
                        time: time, client: context.client, action: action, object: object,
                        outcome: "\(answer.code): \(answer.message)", status: Int(answer.status.code), token: token))
            }
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
