import AsyncHTTPClient
import DepotCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// The CLI's side of the REST API. Subcommands call it; tests can drive it.
public struct DepotClient: Sendable {
    public let baseURL: URL
    public let token: String?
    /// Where the token came from and where else the CLI looked, for the
    /// message when depotd refuses it.
    public var tokenOrigin: String?
    /// A PEM file of certificates to trust for an https API (`--ca`,
    /// `$DEPOT_CA`): depotd's self-signed `DATA/tls/cert.pem`, or a private CA.
    public var caFile: String?

    public init(baseURL: URL, token: String?, tokenOrigin: String? = nil, caFile: String? = nil) {
        self.baseURL = baseURL
        self.token = token
        self.tokenOrigin = tokenOrigin
        self.caFile = caFile
    }

    public struct Failure: Error, CustomStringConvertible {
        public let status: Int?
        public let code: String
        public let message: String
        public var description: String { message }
    }

    /// One HTTP client (AsyncHTTPClient over swift-nio-ssl) per trust
    /// setting, for the life of the process.
    private static let clients = Mutex<[String: HTTPClient]>([:])

    static func client(trusting caFile: String?) -> HTTPClient {
        clients.withLock { clients in
            if let known = clients[caFile ?? ""] { return known }
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caFile { tls.additionalTrustRoots = [.file(caFile)] }
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
            configuration.timeout = .init(connect: .seconds(10), read: .hours(1))
            // A refused connection is answered at once: by default the pool retries
            // with back-off for the whole connect timeout (10 s for each command
            // run while depotd is down).
            configuration.connectionPool.retryConnectionEstablishment = false
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[caFile ?? ""] = client
            return client
        }
    }

    /// Sends one request; any non-2xx answer becomes a `Failure` carrying the
    /// API's error code and message.
    public func send(_ method: String, _ path: String, body: (some Encodable)? = Optional<String>.none) async throws
        -> Data
    {
        guard let body else { return try await send(method, path, raw: nil, contentType: nil) }
        return try await send(
            method, path, raw: .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body))),
            contentType: "application/json")
    }

    /// `send` with a body of any kind (an upload's stream).
    public func send(_ method: String, _ path: String, raw body: HTTPClientRequest.Body?, contentType: String?)
        async throws -> Data
    {
        guard let url = URL(string: path, relativeTo: baseURL) else {
            throw Failure(status: nil, code: "invalid_argument", message: "bad API path \(path)")
        }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw Failure(status: nil, code: "invalid_argument", message: "cannot read the CA file \(caFile)")
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = HTTPMethod(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.body = body
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        }
        let data: Data
        let status: Int
        do {
            let response = try await Self.client(trusting: caFile).execute(request, timeout: .hours(1))
            status = Int(response.status.code)
            data = Data(try await response.body.collect(upTo: 1 << 30).readableBytesView)
        } catch {
            let hint =
                url.scheme == "https" && caFile == nil
                ? " (a self-signed depotd certificate needs --ca DATA/tls/cert.pem or $DEPOT_CA)" : ""
            throw Failure(
                status: nil, code: "unreachable",
                message: "cannot reach depotd at \(baseURL.absoluteString): \(Self.reason(error))\(hint)")
        }
        guard (200..<300).contains(status) else { throw failure(status: status, body: data) }
        return data
    }

    /// A non-2xx answer as a `Failure`: the API's error code and message.
    func failure(status: Int, body data: Data) -> Failure {
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: data) {
            let hint = status == 401 ? tokenOrigin.map { "; \($0)" } ?? "" : ""
            return Failure(status: status, code: body.error.code, message: body.error.message + hint)
        }
        return Failure(
            status: status, code: "http_\(status)",
            message: "depotd answered HTTP \(status): \(String(decoding: data, as: UTF8.self))")
    }

    /// A GET whose 2xx answer body is handed to `each` as it arrives (an
    /// export's stream), never collected whole; other answers as `send`'s.
    public func receive(_ path: String, each: (ByteBuffer) throws -> Void) async throws {
        guard let url = URL(string: path, relativeTo: baseURL) else {
            throw Failure(status: nil, code: "invalid_argument", message: "bad API path \(path)")
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response: HTTPClientResponse
        do { response = try await Self.client(trusting: caFile).execute(request, timeout: .hours(24)) } catch {
            throw Failure(
                status: nil, code: "unreachable",
                message: "cannot reach depotd at \(baseURL.absoluteString): \(Self.reason(error))")
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            throw failure(status: status, body: Data(try await response.body.collect(upTo: 1 << 20).readableBytesView))
        }
        let expected = response.headers.first(name: "content-length").flatMap { UInt64($0) }
        var received: UInt64 = 0
        for try await chunk in response.body {
            received += UInt64(chunk.readableBytes)
            try each(chunk)
        }
        if let expected, received != expected {
            throw Failure(
                status: status, code: "truncated",
                message: "the stream ended after \(received) of \(expected) bytes; the output is incomplete")
        }
    }

    /// Why a connection failed, in an operator's words where the cause is plain.
    static func reason(_ error: any Error) -> String {
        if let io = error as? IOError, io.errnoCode == ECONNREFUSED {
            return "connection refused: is depotd running and listening there? (--api or $DEPOT_API names it)"
        }
        return "\(error)"
    }

    public func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        try decode(type, try await send("GET", path))
    }

    public func post<T: Decodable>(_ path: String, _ body: some Encodable, as type: T.Type) async throws -> T {
        try decode(type, try await send("POST", path, body: body))
    }

    public func patch<T: Decodable>(_ path: String, _ body: some Encodable, as type: T.Type) async throws -> T {
        try decode(type, try await send("PATCH", path, body: body))
    }

    public func delete(_ path: String) async throws {
        _ = try await send("DELETE", path)
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw Failure(status: nil, code: "bad_response", message: "unexpected answer from depotd: \(error)")
        }
    }

    // MARK: Typed calls

    public func pools() async throws -> [PoolInfo] { try await get("/v1/pools", as: PoolList.self).pools }
    public func pool(_ name: String) async throws -> PoolInfo { try await get("/v1/pools/\(name)", as: PoolInfo.self) }
    public func createPool(_ body: CreatePoolRequest) async throws -> PoolInfo {
        try await post("/v1/pools", body, as: PoolInfo.self)
    }
    public func updatePool(_ name: String, _ body: UpdatePoolRequest) async throws -> PoolInfo {
        try await patch("/v1/pools/\(name)", body, as: PoolInfo.self)
    }
    public func deletePool(_ name: String, force: Bool) async throws {
        try await delete("/v1/pools/\(name)\(force ? "?force=true" : "")")
    }
    public func volumes(pool: String?) async throws -> [VolumeInfo] {
        try await get(pool.map { "/v1/pools/\($0)/volumes" } ?? "/v1/volumes", as: VolumeList.self).volumes
    }
    public func volume(_ ref: VolumeRef) async throws -> VolumeInfo {
        try await get("/v1/pools/\(ref.pool)/volumes/\(ref.name)", as: VolumeInfo.self)
    }
    public func createVolume(pool: String, _ body: CreateVolumeRequest) async throws -> VolumeInfo {
        try await post("/v1/pools/\(pool)/volumes", body, as: VolumeInfo.self)
    }
    public func updateVolume(_ ref: VolumeRef, _ body: UpdateVolumeRequest) async throws -> VolumeInfo {
        try await patch("/v1/pools/\(ref.pool)/volumes/\(ref.name)", body, as: VolumeInfo.self)
    }
    public func deleteVolume(_ ref: VolumeRef, force: Bool = false) async throws {
        try await delete("/v1/pools/\(ref.pool)/volumes/\(ref.name)\(force ? "?force=true" : "")")
    }
    public func exports() async throws -> [ExportInfo] { try await get("/v1/exports", as: ExportList.self).exports }
    public func export(_ pool: String) async throws -> ExportInfo {
        try await get("/v1/exports/\(pool)", as: ExportInfo.self)
    }
    public func createExport(_ body: CreateExportRequest) async throws -> ExportInfo {
        try await post("/v1/exports", body, as: ExportInfo.self)
    }
    public func deleteExport(_ pool: String) async throws { try await delete("/v1/exports/\(pool)") }
    public func updateExport(_ body: CreateExportRequest) async throws -> ExportInfo {
        try decode(ExportInfo.self, try await send("PUT", "/v1/exports/\(body.pool)", body: body))
    }
    public func renderExport(_ pool: String, format: String) async throws -> String {
        String(decoding: try await send("GET", "/v1/exports/\(pool)/render?format=\(format)"), as: UTF8.self)
    }
    public func publishExports() async throws -> PublishReport {
        try decode(PublishReport.self, try await send("POST", "/v1/exports/publish"))
    }
    public func targets() async throws -> [TargetInfo] { try await get("/v1/targets", as: TargetList.self).targets }
    public func target(_ iqn: String) async throws -> TargetInfo {
        try await get("/v1/targets/\(iqn)", as: TargetInfo.self)
    }
    public func createTarget(_ body: CreateTargetRequest) async throws -> TargetInfo {
        try await post("/v1/targets", body, as: TargetInfo.self)
    }
    public func deleteTarget(_ iqn: String, force: Bool = false) async throws {
        try await delete("/v1/targets/\(iqn)\(force ? "?force=true" : "")")
    }
    public func sessions() async throws -> [SessionInfo] {
        try await get("/v1/sessions", as: SessionList.self).sessions
    }
    public func mapLUN(_ iqn: String, _ body: MapLUNRequest) async throws -> TargetInfo {
        try await post("/v1/targets/\(iqn)/luns", body, as: TargetInfo.self)
    }
    public func unmapLUN(_ iqn: String, lun: Int) async throws -> TargetInfo {
        try decode(TargetInfo.self, try await send("DELETE", "/v1/targets/\(iqn)/luns/\(lun)"))
    }
    public func addACL(_ iqn: String, initiator: String, networks: [String] = []) async throws -> TargetInfo {
        try await post(
            "/v1/targets/\(iqn)/acls", ACLRequest(initiator: initiator, networks: networks.isEmpty ? nil : networks),
            as: TargetInfo.self)
    }
    /// The portals the target is served on; nil: all of the daemon's.
    public func setPortals(_ iqn: String, _ portals: [String]?) async throws -> TargetInfo {
        try decode(
            TargetInfo.self,
            try await send("PUT", "/v1/targets/\(iqn)/portals", body: SetPortalsRequest(portals: portals)))
    }
    public func removeACL(_ iqn: String, initiator: String) async throws -> TargetInfo {
        try decode(TargetInfo.self, try await send("DELETE", "/v1/targets/\(iqn)/acls/\(initiator)"))
    }
    public func setCHAP(_ iqn: String, _ body: CHAPRequest) async throws -> TargetInfo {
        try decode(TargetInfo.self, try await send("PUT", "/v1/targets/\(iqn)/chap", body: body))
    }
    public func clearCHAP(_ iqn: String) async throws -> TargetInfo {
        try decode(TargetInfo.self, try await send("DELETE", "/v1/targets/\(iqn)/chap"))
    }
    public func portalGroups(_ iqn: String) async throws -> [PortalGroupInfo] {
        try await get("/v1/targets/\(iqn)/portal-groups", as: PortalGroupList.self).portalGroups
    }
    public func setPortalGroupState(_ iqn: String, group: Int, state: PortalGroupState, force: Bool = false)
        async throws -> [PortalGroupInfo]
    {
        try decode(
            PortalGroupList.self,
            try await send(
                "PUT", "/v1/targets/\(iqn)/portal-groups/\(group)",
                body: SetPortalGroupStateRequest(state: state, force: force ? true : nil))
        ).portalGroups
    }
    public func capacity() async throws -> CapacityReport { try await get("/v1/capacity", as: CapacityReport.self) }
    public func status() async throws -> DaemonStatus { try await get("/v1/status", as: DaemonStatus.self) }
}
