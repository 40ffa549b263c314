import DepotCore
import Foundation
import GRDB

/// One row of table `export`: a pool's NFS export and its client rules.
public struct ExportRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "export"

    public var id: Int64?
    public var poolId: Int64
    /// Stable for the life of the pool (fsid=, Export_Id, Filesystem_Id).
    public var fsid: Int64
    /// `[ExportRule]` as JSON.
    public var rules: String
    public var createdAt: String

    public init(poolId: Int64, fsid: Int64, rules: [ExportRule], createdAt: String) throws {
        self.poolId = poolId
        self.fsid = fsid
        self.rules = String(decoding: try JSONEncoder().encode(rules), as: UTF8.self)
        self.createdAt = createdAt
    }

    public func decodedRules() throws -> [ExportRule] {
        try JSONDecoder().decode([ExportRule].self, from: Data(rules.utf8))
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Catalog {
    public func exports() async throws(DepotError) -> [(PoolRecord, ExportRecord)] {
        let pools = Dictionary(uniqueKeysWithValues: try await pools().map { ($0.id!, $0) })
        return try await reading { db in try ExportRecord.order(Column("fsid")).fetchAll(db) }.compactMap { e in
            pools[e.poolId].map { ($0, e) }
        }
    }

    public func export(poolId: Int64) async throws(DepotError) -> ExportRecord? {
        try await reading { db in try ExportRecord.filter(Column("poolId") == poolId).fetchOne(db) }
    }

    public func insertExport(_ record: ExportRecord, poolName: String) async throws(DepotError) -> ExportRecord {
        try await writing { db in
            if try ExportRecord.filter(Column("poolId") == record.poolId).fetchCount(db) > 0 {
                throw DepotError.conflict(
                    "pool '\(poolName)' is already exported; change it with depot export set (PUT /v1/exports/\(poolName))"
                )
            }
            var copy = record
            try copy.insert(db)
            return copy
        }
    }

    /// Replaces an export's rules; false when the pool is not exported.
    public func updateExport(poolId: Int64, rulesJSON: String) async throws(DepotError) -> Bool {
        try await writing { db in
            guard var record = try ExportRecord.filter(Column("poolId") == poolId).fetchOne(db) else {
                return false
            }
            record.rules = rulesJSON
            try record.update(db)
            return true
        }
    }

    public func deleteExport(poolId: Int64) async throws(DepotError) -> Bool {
        try await writing { db in try ExportRecord.filter(Column("poolId") == poolId).deleteAll(db) > 0 }
    }
}
