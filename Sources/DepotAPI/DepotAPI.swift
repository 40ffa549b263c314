import DepotCore
import DepotExports
import DepotStorage
import DepotTargets
import Hummingbird
import HummingbirdTLS
import Logging
import Prometheus

/// Builds the REST API: `/health` open, everything else behind a bearer
/// token whose role allows the call (reads: any token; volumes, snapshots,
/// clones, LUN maps, exports, jobs: operator; the rest: admin).
public enum DepotAPI {
    /// Where the daemon runs, for `GET /v1/status` (set by the server as its listeners bind).
    public typealias Whereabouts = @Sendable () -> (dataDirectory: String, api: String, portals: [String])

    public static func router(
        storage: StorageManager, exports: ExportManager, targets: TargetManager, tokens: TokenStore,
        audit: AuditLog, registry: PrometheusCollectorRegistry, throttle: AuthThrottle = AuthThrottle(),
        whereabouts: @escaping Whereabouts = { ("", "", []) }
    ) -> Router<DepotRequestContext> {
        let started = ContinuousClock.now
        let startedAt = Timestamp.now()
        let router = Router(context: DepotRequestContext.self)
        let routes = RouteTable()
        router.add(middleware: ErrorMiddleware(routes: routes))
        router.get("health") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(
                status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        let secured = router.group()
            .add(middleware: BearerAuthMiddleware(tokens: tokens, throttle: throttle, audit: audit))
            .add(middleware: AuditMiddleware(log: audit))
        MetricsRoute(storage: storage, metrics: PoolMetrics(registry: registry)).register(on: secured)
        // The same /v1 prefix in three groups, one rule each.
        let operated = secured.group("v1").add(middleware: RoleMiddleware(reads: .readonly, changes: .operator))
        let v1 = secured.group("v1").add(middleware: RoleMiddleware(reads: .readonly, changes: .admin))
        let adminOnly = secured.group("v1").add(middleware: RoleMiddleware(reads: .admin, changes: .admin))
        PoolRoutes(storage: storage, exports: exports).register(on: v1)
        ExportRoutes(exports: exports).register(on: operated)
        TargetRoutes(targets: targets).register(on: v1, luns: operated)
        VolumeRoutes(storage: storage, targets: targets, exports: exports).register(on: operated)
        let exporting = secured.group("v1").add(middleware: RoleMiddleware(reads: .operator, changes: .operator))
        VolumeRoutes(storage: storage, targets: targets, exports: exports).registerStreamedExport(on: exporting)
        SnapshotRoutes(storage: storage, targets: targets).register(on: operated)
        JobRoutes(storage: storage).register(on: operated)
        TokenRoutes(tokens: tokens).register(on: adminOnly)
        AuditRoutes(log: audit).register(on: adminOnly)
        v1.get("reconcile") { _, _ -> ReconcileReportResponse in
            ReconcileReportResponse(report: await storage.lastReconcile)
        }
        v1.get("status") { _, _ -> DaemonStatus in
            let place = whereabouts()
            let findings = await storage.lastReconcile.findingCount
            let pools = try await storage.listPools().map {
                DaemonStatus.PoolState(name: $0.name, state: $0.state, usedPercent: $0.usedPercent)
            }
            return DaemonStatus(
                version: DepotVersion.current, startedAt: startedAt,
                uptimeSeconds: Int((ContinuousClock.now - started).components.seconds),
                dataDirectory: place.dataDirectory, api: place.api, portals: place.portals, pools: pools,
                sessions: targets.sessions().count,
                reconcileFindings: findings)
        }
        routes.fill(from: router)
        return router
    }

    /// The HTTP server as a `Service`; `onRunning` gets the bound address
    /// (the real port when 0 was asked for).
    public static func application(
        router: Router<DepotRequestContext>, host: String, port: Int, logger: Logger,
        tls: TLSConfiguration? = nil,
        onRunning: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) throws -> some ApplicationProtocol {
        // With TLS the listener speaks only TLS: a plain HTTP request fails its handshake.
        Application(
            router: router,
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: .init(address: .hostname(host, port: port), serverName: "depotd"),
            onServerRunning: { channel in
                await onRunning(channel.localAddress?.ipAddress ?? host, channel.localAddress?.port ?? port)
            },
            logger: logger)
    }
}

struct ReconcileReportResponse: ResponseEncodable {
    let report: ReconcileReport

    func encode(to encoder: any Encoder) throws { try report.encode(to: encoder) }
}
