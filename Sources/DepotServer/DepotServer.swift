import DepotBackstores
import DepotAPI
import DepotCatalog
import DepotCore
import DepotExports
import DepotISCSI
import DepotSCSI
import DepotStorage
import DepotTargets
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// Wires depotd: data directory, catalog, storage, API and background
/// services, run as one `ServiceGroup` that SIGTERM and SIGINT stop gracefully.
public enum DepotServer {
    /// The bootstrap admin token, `DATA/api-token` (0600): on the first start
    /// with named tokens, the file's token (kept from an earlier version, or
    /// made now) becomes the admin token `bootstrap`, stored as a salted
    /// hash. After that the file is read no more, except that a start which
    /// finds no admin token that still works (all expired) makes a new one
    /// and rewrites the file, so the daemon never becomes unmanageable.
    static func bootstrapAdmin(_ tokens: TokenStore, catalog: Catalog, data: DataDirectory, logger: Logger)
        async throws
    {
        let key = "api-tokens-initialised"
        if try await catalog.setting(key) == nil {
            let secret = try data.loadOrCreateToken()
            try await tokens.install(name: "bootstrap", role: .admin, secret: secret, replacing: true)
            try await catalog.setSetting(key, Timestamp.now())
            logger.info("bootstrap admin token installed", metadata: ["file": "\(data.tokenPath)"])
        } else if !tokens.hasActiveAdmin() {
            let secret = TokenStore.newSecret()
            try data.writeToken(secret)
            try await tokens.install(name: "bootstrap", role: .admin, secret: secret, replacing: true)
            logger.warning(
                "no admin token was valid: a new bootstrap admin token is in the token file",
                metadata: ["file": "\(data.tokenPath)"])
        }
    }

    public static func run(_ config: DepotConfiguration, logger: Logger) async throws {
        // A taken address is named by its option before anything opens or listens.
        try ListenerProbe.check(config.api, option: "--api")
        for portal in config.portals { try ListenerProbe.check(portal, option: "--portal") }
        let data = try DataDirectory(root: config.dataDirectory)
        try data.create()
        let lockFD = try data.lock()
        defer { close(lockFD) }
        let catalog = try Catalog.open(path: data.catalogPath)
        let journal = try await catalog.journalMode
        let migrations = try await catalog.appliedMigrations
        logger.info(
            "catalog open",
            metadata: [
                "path": "\(data.catalogPath)", "journal": "\(journal)", "migrations": "\(migrations)",
            ])

        let tokens = try await TokenStore.open(catalog: catalog)
        try await bootstrapAdmin(tokens, catalog: catalog, data: data, logger: logger)

        let storage = StorageManager(
            catalog: catalog, poolsDirectory: data.poolsPath, logger: logger,
            openVolumes: OpenVolumes(l2CacheBytes: config.l2CacheMiB << 20),
            jobRateLimit: UInt64(config.jobRateMiB) << 20,
            imageDirectories: config.imageDirectories.isEmpty ? [data.imagesPath] : config.imageDirectories)
        try await storage.reconcile()
        try await storage.ensureDefaultPool()

        let publisher = ExportPublisher(
            configuration: ExportPublisherConfiguration(
                exportsDirectory: config.exportsDirectory.map(absolute) ?? data.exportsPath,
                ganeshaConfig: config.ganeshaConfig.map(absolute) ?? data.ganeshaConfigPath,
                ganeshaPidFile: config.ganeshaPidFile.map(absolute)),
            logger: logger)
        let exports = ExportManager(catalog: catalog, publisher: publisher, logger: logger)
        // Exports survive a restart: republish what the catalog holds.
        do {
            try await exports.publishAll()
        } catch {
            logger.error(
                "exports could not be published at start; previous files left in place", metadata: ["error": "\(error)"]
            )
        }

        Sanitize.bytesPerSecond.store(config.sanitizeBytesPerSecond, ordering: .relaxed)
        InlineWrites.limit.store(config.inlineWriteBytes, ordering: .relaxed)
        let directory = TargetDirectory(
            logins: LoginThrottle(
                limit: config.authFailures, lockout: TimeInterval(config.authLockoutSeconds)))
        let audit = AuditLog(path: data.auditPath)
        directory.onLoginFailure { failure in
            Task {
                await audit.append(
                    .init(
                        time: Timestamp.now(), client: failure.address, action: "iscsi.login",
                        object: "target \(failure.target) initiator \(failure.initiator)",
                        outcome: "\(failure.reason): \(failure.detail)", status: 0))
            }
        }
        let targets = TargetManager(catalog: catalog, storage: storage, directory: directory, logger: logger)
        try await targets.rebuild()
        // After the LUs exist, so a merge or flatten resumes on the live image.
        await storage.resumeJobs()
        targets.directory.onSetPortalGroups { iqn, states in try await targets.setPortalGroupStates(iqn, states) }
        let iscsi = ISCSITargetService(
            directory: targets.directory, portals: config.portals.map { .init(host: $0.host, port: $0.port) },
            logger: logger,
            keepalive: Keepalive(interval: config.nopInterval, timeout: config.nopTimeout)
        ) { bound in
            data.writePortals(bound)
        }

        // swift-metrics goes to the same registry /metrics renders, so later
        // data-path counters appear beside the pool gauges.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let root = data.root
        let router = DepotAPI.router(
            storage: storage, exports: exports, targets: targets, tokens: tokens,
            audit: audit,
            registry: registry, throttle: AuthThrottle(limit: config.apiAuthFailures),
            whereabouts: { (root, data.apiURL ?? "", targets.directory.portals) })
        // TLS by default off loopback (an API token must not cross a network in clear).
        let loopback = ["127.0.0.1", "::1", "localhost"].contains(config.api.host) || config.api.host.hasPrefix("127.")
        var tls: APITLS.Material?
        if config.apiTLS ?? !loopback {
            let material = try APITLS.material(
                certificate: config.tlsCertificate, key: config.tlsKey, directory: data.root + "/tls",
                hosts: [config.api.host, ProcessInfo.processInfo.hostName])
            logger.notice(
                "API TLS certificate",
                metadata: ["certificate": "\(material.certificatePath)", "sha256": "\(material.fingerprint)"])
            tls = material
        }
        let scheme = tls == nil ? "http" : "https"
        let api = try DepotAPI.application(
            router: router, host: config.api.host, port: config.api.port, logger: logger, tls: tls?.configuration
        ) { host, port in
            let url = "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)"
            data.writeAPIURL(url)
            logger.info("API listening", metadata: ["url": "\(url)"])
        }
        let monitor = CapacityMonitor(storage: storage, interval: config.rescanInterval, logger: logger) {
            await targets.refreshSpace()
        }
        logger.info(
            "depotd starting",
            metadata: [
                "data": "\(data.root)", "api": "\(config.api)", "portals": "\(config.portals.map(\.description))",
            ])
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: api), .init(service: iscsi), .init(service: monitor)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        // Jobs stop at a piece boundary and stay `running`, to resume at the next start.
        await storage.jobs.shutdown()
        // qcow2 images keep their tables in memory until a flush: write them now.
        await targets.closeImages()
        try? FileManager.default.removeItem(atPath: data.apiURLPath)
        try? FileManager.default.removeItem(atPath: data.portalsPath)
        logger.info("depotd stopped")
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
