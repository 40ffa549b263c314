import DepotCatalog
import DepotCore
import Foundation
import Logging

/// NFS exports of pools: stored in the catalog, published as files for
/// kernel nfsd and NFS-Ganesha. Every change republishes everything, so the
/// files always mirror the catalog. Each change and its publication run
/// inside `changes`, one at a time (the actor is reentrant at each catalog
/// call, GRDB's async API).
public actor ExportManager {
    let catalog: Catalog
    let changes = ChangeQueue()
    let publisher: ExportPublisher
    let logger: Logger
    public private(set) var lastPublish: PublishReport?

    public init(catalog: Catalog, publisher: ExportPublisher, logger: Logger) {
        self.catalog = catalog
        self.publisher = publisher
        self.logger = logger
    }

    /// exports(5) `fsid=` must be unique per server; tie it to the pool's
    /// never-reused row id, so it is stable for the pool's life.
    static func fsid(poolId: Int64) -> Int64 { 100 + poolId }

    static func pseudo(_ pool: String) -> String { "/depot/\(pool)" }

    public func list() async throws(DepotError) -> [ExportInfo] {
        var result: [ExportInfo] = []
        for (pool, record) in try await catalog.exports() { result.append(try info(pool, record)) }
        return result
    }

    public func show(_ pool: String) async throws(DepotError) -> ExportInfo {
        let record = try await requirePool(pool)
        guard let export = try await catalog.export(poolId: record.id!) else {
            throw .notFound("pool '\(pool)' is not exported")
        }
        return try info(record, export)
    }

    /// Replaces an export's rules (`depot export set`): validated as a create
    /// is, published at once; if publishing fails the old rules come back.
    public func update(_ request: CreateExportRequest) async throws(DepotError) -> ExportInfo {
        try await changes.run { () async throws(DepotError) -> ExportInfo in
            let pool = try await requirePool(request.pool)
            guard let before = try await catalog.export(poolId: pool.id!) else {
                throw .notFound("pool '\(pool.name)' is not exported")
            }
            let rules = try ExportRules.validate(request.rules, force: request.force ?? false)
            var warnings = try await Self.warnings(pool, rules, catalog: catalog)
            let json: String
            do { json = String(decoding: try JSONEncoder().encode(rules), as: UTF8.self) } catch {
                throw .internalError("cannot encode rules: \(error)")
            }
            _ = try await catalog.updateExport(poolId: pool.id!, rulesJSON: json)
            do throws(DepotError) {
                warnings += try await publishNow().warnings
            } catch {
                _ = try? await catalog.updateExport(poolId: pool.id!, rulesJSON: before.rules)
                throw error
            }
            var result = try await show(pool.name)
            result.warnings = warnings
            logger.info("export changed", metadata: ["pool": "\(pool.name)", "rules": "\(rules.count)"])
            return result
        }
    }

    /// What an operator should hear about rules before they are published.
    static func warnings(_ pool: PoolRecord, _ rules: [ExportRule], catalog: Catalog) async throws(DepotError)
        -> [String]
    {
        var warnings: [String] = []
        if rules.contains(where: { $0.client == "*" && $0.access == .rw }) {
            warnings.append("every host may write to pool '\(pool.name)' ('*' rw)")
        }
        // File and block access to the same images corrupts them unless one side is idle.
        for volume in try await catalog.volumes(poolId: pool.id!) {
            for (iqn, lun) in try await catalog.mappings(volumeId: volume.id!) {
                warnings.append(
                    "volume \(pool.name)/\(volume.name) is also LUN \(lun) of \(iqn): NFS clients and iSCSI initiators would share its image"
                )
            }
        }
        return warnings
    }

    public func create(_ request: CreateExportRequest) async throws(DepotError) -> ExportInfo {
        try await changes.run { () async throws(DepotError) -> ExportInfo in
            let pool = try await requirePool(request.pool)
            let rules = try ExportRules.validate(request.rules, force: request.force ?? false)
            var warnings = try await Self.warnings(pool, rules, catalog: catalog)
            let record: ExportRecord
            do {
                record = try ExportRecord(
                    poolId: pool.id!, fsid: Self.fsid(poolId: pool.id!), rules: rules, createdAt: Timestamp.now())
            } catch {
                throw .internalError("cannot encode rules: \(error)")
            }
            let inserted = try await catalog.insertExport(record, poolName: pool.name)
            do throws(DepotError) {
                let report = try await publishNow()
                warnings += report.warnings
            } catch {
                // The stored export could not be published: take it back, keep the old files.
                _ = try? await catalog.deleteExport(poolId: pool.id!)
                throw error
            }
            var result = try info(pool, inserted)
            result.warnings = warnings
            logger.info("export created", metadata: ["pool": "\(pool.name)", "rules": "\(rules.count)"])
            return result
        }
    }

    public func delete(_ pool: String) async throws(DepotError) {
        try await changes.run { () async throws(DepotError) in
            let record = try await requirePool(pool)
            guard try await catalog.deleteExport(poolId: record.id!) else {
                throw .notFound("pool '\(pool)' is not exported")
            }
            _ = try await publishNow()
            logger.info("export deleted", metadata: ["pool": "\(pool)"])
        }
    }

    public enum Format: String, Sendable { case exports, ganesha }

    public func render(_ pool: String, format: Format) async throws(DepotError) -> String {
        let export = try await show(pool)
        switch format {
        case .exports: return try ExportRenderers.kernel(export)
        case .ganesha: return try ExportRenderers.ganesha([export])
        }
    }

    /// Deletes a pool with `delete` (the storage manager's), refusing an
    /// exported pool unless `force`; the catalog drops its export with it, and
    /// the servers are told. Pool and export change together here, not in a route.
    public func deletePool(_ pool: String, force: Bool, delete: @Sendable () async throws(DepotError) -> Void)
        async throws(DepotError)
    {
        let exported = (try? await show(pool)) != nil
        if exported && !force {
            throw .conflict("pool '\(pool)' is exported over NFS; delete the export first or use --force")
        }
        try await changes.run { () async throws(DepotError) in
            try await delete()
            if exported { try await publishNow() }
        }
    }

    /// Writes every export's files and tells the servers (also run at start).
    @discardableResult
    public func publishAll() async throws(DepotError) -> PublishReport {
        try await changes.run { () async throws(DepotError) -> PublishReport in try await publishNow() }
    }

    /// `publishAll` inside a change: the files are written from what the
    /// catalog holds after it, and no other change's files are written between.
    @discardableResult
    private func publishNow() async throws(DepotError) -> PublishReport {
        let report = try publisher.publish(try await list())
        lastPublish = report
        return report
    }

    func info(_ pool: PoolRecord, _ record: ExportRecord) throws(DepotError) -> ExportInfo {
        let rules: [ExportRule]
        do { rules = try record.decodedRules() } catch {
            throw .internalError("export rules of '\(pool.name)' unreadable: \(error)")
        }
        return ExportInfo(
            pool: pool.name, path: pool.path, fsid: Int(record.fsid), pseudo: Self.pseudo(pool.name), rules: rules,
            createdAt: record.createdAt)
    }

    func requirePool(_ name: String) async throws(DepotError) -> PoolRecord {
        try ObjectName.validate(name, kind: "pool")
        guard let pool = try await catalog.pool(named: name) else {
            throw .notFound("pool '\(name)' not found")
        }
        return pool
    }

}
