import DepotCore
import DepotExports
import DepotStorage
import DepotTargets
import Hummingbird
import Logging
import Prometheus

/// Builds the REST API: `/health` open, everything else behind the bearer token.
public enum DepotAPI {
    public static func router(
        storage: StorageManager, exports: ExportManager, targets: TargetManager, token: String, audit: AuditLog, registry: PrometheusCollectorRegistry
    ) -> Router<DepotRequestContext> {
        let router = Router(context: DepotRequestContext.self)
        router.add(middleware: AuditMiddleware(log: audit))
        router.add(middleware: ErrorMiddleware())
        router.get("health") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        let secured = router.group().add(middleware: BearerAuthMiddleware(token: token))
        MetricsRoute(storage: storage, metrics: PoolMetrics(registry: registry)).register(on: secured)
        let v1 = secured.group("v1")
        PoolRoutes(storage: storage, exports: exports).register(on: v1)
        ExportRoutes(exports: exports).register(on: v1)
        TargetRoutes(targets: targets).register(on: v1)
        VolumeRoutes(storage: storage, targets: targets).register(on: v1)
        v1.get("reconcile") { _, _ -> ReconcileReportResponse in
            ReconcileReportResponse(report: await storage.lastReconcile)
        }
        return router
    }

    /// The HTTP server as a `Service`; `onRunning` gets the bound address
    /// (the real port when 0 was asked for).
    public static func application(
        router: Router<DepotRequestContext>, host: String, port: Int, logger: Logger,
        onRunning: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router,
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
