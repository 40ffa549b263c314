import DepotCatalog
import DepotCore
import Foundation
import Logging

/// NFS exports of pools: stored in the catalog, published as files for
/// kernel nfsd and NFS-Ganesha. Every change republishes everything, so the
/// files always mirror the catalog.
public actor ExportManager {
    let catalog: Catalog
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

    public func list() throws(DepotError) -> [ExportInfo] {
        var result: [ExportInfo] = []
        for (pool, record) in try read({ try catalog.exports() }) { result.append(try info(pool, record)) }
        return result
    }

    public func show(_ pool: String) throws(DepotError) -> ExportInfo {
        let record = try requirePool(pool)
        guard let export = try read({ try catalog.export(poolId: record.id!) }) else {
            throw .notFound("pool '\(pool)' is not exported")
        }
        return try info(record, export)
    }

    /// Replaces an export's rules (`depot export set`): validated as a create
    /// is, published at once; if publishing fails the old rules come back.
    public func update(_ request: CreateExportRequest) throws(DepotError) -> ExportInfo {
        let pool = try requirePool(request.pool)
        guard let before = try read({ try catalog.export(poolId: pool.id!) }) else {
            throw .notFound("pool '\(pool.name)' is not exported")
        }
        let rules = try ExportRules.validate(request.rules, force: request.force ?? false)
        var warnings = try Self.warnings(pool, rules, catalog: catalog)
        let json: String
        do { json = String(decoding: try JSONEncoder().encode(rules), as: UTF8.self) } catch {
            throw .internalError("cannot encode rules: \(error)")
        }
        _ = try catalog.updateExport(poolId: pool.id!, rulesJSON: json)
        do {
            warnings += try publishAll().warnings
        } catch {
            _ = try? catalog.updateExport(poolId: pool.id!, rulesJSON: before.rules)
            throw error
        }
        var result = try show(pool.name)
        result.warnings = warnings
        logger.info("export changed", metadata: ["pool": "\(pool.name)", "rules": "\(rules.count)"])
        return result
    }

    /// What an operator should hear about rules before they are published.
    static func warnings(_ pool: PoolRecord, _ rules: [ExportRule], catalog: Catalog) throws(DepotError) -> [String] {
        var warnings: [String] = []
        if rules.contains(where: { $0.client == "*" && $0.access == .rw }) {
            warnings.append("every host may write to pool '\(pool.name)' ('*' rw)")
        }
        // File and block access to the same images corrupts them unless one side is idle.
        for volume in try DepotError.fromCatalog({ try catalog.volumes(poolId: pool.id!) }) {
            for (iqn, lun) in try DepotError.fromCatalog({ try catalog.mappings(volumeId: volume.id!) }) {
                warnings.append(
                    "volume \(pool.name)/\(volume.name) is also LUN \(lun) of \(iqn): NFS clients and iSCSI initiators would share its image"
                )
            }
        }
        return warnings
    }

    public func create(_ request: CreateExportRequest) throws(DepotError) -> ExportInfo {
        let pool = try requirePool(request.pool)
        let rules = try ExportRules.validate(request.rules, force: request.force ?? false)
        var warnings = try Self.warnings(pool, rules, catalog: catalog)
        let record: ExportRecord
        do {
            record = try ExportRecord(
                poolId: pool.id!, fsid: Self.fsid(poolId: pool.id!), rules: rules, createdAt: Timestamp.now())
        } catch {
            throw .internalError("cannot encode rules: \(error)")
        }
        let inserted = try catalog.insertExport(record, poolName: pool.name)
        do {
            let report = try publishAll()
            warnings += report.warnings
        } catch {
            // The stored export could not be published: take it back, keep the old files.
            _ = try? catalog.deleteExport(poolId: pool.id!)
            throw error
        }
        var result = try info(pool, inserted)
        result.warnings = warnings
        logger.info("export created", metadata: ["pool": "\(pool.name)", "rules": "\(rules.count)"])
        return result
    }

    public func delete(_ pool: String) throws(DepotError) {
        let record = try requirePool(pool)
        guard try catalog.deleteExport(poolId: record.id!) else { throw .notFound("pool '\(pool)' is not exported") }
        _ = try publishAll()
        logger.info("export deleted", metadata: ["pool": "\(pool)"])
    }

    public enum Format: String, Sendable { case exports, ganesha }

    public func render(_ pool: String, format: Format) throws(DepotError) -> String {
        let export = try show(pool)
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
        let exported = (try? show(pool)) != nil
        if exported && !force {
            throw .conflict("pool '\(pool)' is exported over NFS; delete the export first or use --force")
        }
        try await delete()
        if exported { try publishAll() }
    }

    /// Writes every export's files and tells the servers (also run at start).
    @discardableResult
    public func publishAll() throws(DepotError) -> PublishReport {
        let report = try publisher.publish(try list())
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

    func requirePool(_ name: String) throws(DepotError) -> PoolRecord {
        try ObjectName.validate(name, kind: "pool")
        guard let pool = try read({ try catalog.pool(named: name) }) else {
            throw .notFound("pool '\(name)' not found")
        }
        return pool
    }

    func read<T>(_ body: () throws -> T) throws(DepotError) -> T { try DepotError.fromCatalog(body) }

}
