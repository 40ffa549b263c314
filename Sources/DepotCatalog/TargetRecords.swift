import DepotCore
import GRDB

public struct TargetRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "target"
    public var id: Int64?
    public var iqn: String
    public var alias: String?
    public var allowAny: Bool
    public var createdAt: String
    /// CHAP secrets live only here (the catalog file is mode 0600) and are never returned by the API.
    public var chapUser: String?
    public var chapSecret: String?
    public var mutualUser: String?
    public var mutualSecret: String?

    public init(iqn: String, alias: String?, allowAny: Bool, createdAt: String) {
        self.iqn = iqn
        self.alias = alias
        self.allowAny = allowAny
        self.createdAt = createdAt
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

public struct TargetLUNRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "target_lun"
    public var id: Int64?
    public var targetId: Int64
    public var lun: Int64
    public var volumeId: Int64
    public var readOnly: Bool

    public init(targetId: Int64, lun: Int64, volumeId: Int64, readOnly: Bool) {
        self.targetId = targetId
        self.lun = lun
        self.volumeId = volumeId
        self.readOnly = readOnly
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

public struct TargetACLRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "target_acl"
    public var id: Int64?
    public var targetId: Int64
    public var initiator: String

    public init(targetId: Int64, initiator: String) {
        self.targetId = targetId
        self.initiator = initiator
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Catalog {
    public func targets() throws -> [TargetRecord] {
        try reader.read { db in try TargetRecord.order(Column("iqn")).fetchAll(db) }
    }

    public func target(iqn: String) throws -> TargetRecord? {
        try reader.read { db in try TargetRecord.filter(Column("iqn") == iqn).fetchOne(db) }
    }

    public func luns(targetId: Int64? = nil) throws -> [TargetLUNRecord] {
        try reader.read { db in
            var request = TargetLUNRecord.order(Column("targetId"), Column("lun"))
            if let targetId { request = request.filter(Column("targetId") == targetId) }
            return try request.fetchAll(db)
        }
    }

    public func acls(targetId: Int64? = nil) throws -> [TargetACLRecord] {
        try reader.read { db in
            var request = TargetACLRecord.order(Column("initiator"))
            if let targetId { request = request.filter(Column("targetId") == targetId) }
            return try request.fetchAll(db)
        }
    }

    /// Targets and LUNs that map a volume (a mapped volume is not deleted).
    public func mappings(volumeId: Int64) throws -> [(String, Int64)] {
        try lunMaps(volumeId: volumeId).map { ($0.iqn, $0.lun) }
    }

    /// The same with each map's read-only flag (`volume show`).
    public func lunMaps(volumeId: Int64) throws -> [(iqn: String, lun: Int64, readOnly: Bool)] {
        try reader.read { db in
            try Row.fetchAll(db, sql: """
                SELECT target.iqn, target_lun.lun, target_lun.readOnly FROM target_lun JOIN target ON target.id = target_lun.targetId
                WHERE target_lun.volumeId = ? ORDER BY target.iqn, target_lun.lun
                """, arguments: [volumeId]).map { (iqn: $0[0], lun: $0[1], readOnly: $0[2]) }
        }
    }

    /// Inserts, updates or deletes one target-side record in one transaction.
    public func write<T>(_ body: @Sendable (Database) throws -> T) throws(DepotError) -> T {
        do {
            return try writer.write(body)
        } catch let error as DepotError {
            throw error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw .conflict("catalog constraint: \(error.message ?? "\(error)")")
        } catch {
            throw .internalError("catalog error: \(error)")
        }
    }
}
