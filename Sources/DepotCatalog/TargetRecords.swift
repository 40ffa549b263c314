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
    /// The daemon portals (HOST:PORT, comma-separated) the target is served on; nil: every portal.
    public var portals: String?

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
    /// The networks (CIDR, comma-separated) the initiator is admitted from; nil: any address.
    public var networks: String?

    public init(targetId: Int64, initiator: String, networks: String? = nil) {
        self.targetId = targetId
        self.initiator = initiator
        self.networks = networks
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Catalog {
    public func targets() async throws(DepotError) -> [TargetRecord] {
        try await reading { db in try TargetRecord.order(Column("iqn")).fetchAll(db) }
    }

    public func target(iqn: String) async throws(DepotError) -> TargetRecord? {
        try await reading { db in try TargetRecord.filter(Column("iqn") == iqn).fetchOne(db) }
    }

    public func luns(targetId: Int64? = nil) async throws(DepotError) -> [TargetLUNRecord] {
        try await reading { db in
            var request = TargetLUNRecord.order(Column("targetId"), Column("lun"))
            if let targetId { request = request.filter(Column("targetId") == targetId) }
            return try request.fetchAll(db)
        }
    }

    public func acls(targetId: Int64? = nil) async throws(DepotError) -> [TargetACLRecord] {
        try await reading { db in
            var request = TargetACLRecord.order(Column("initiator"))
            if let targetId { request = request.filter(Column("targetId") == targetId) }
            return try request.fetchAll(db)
        }
    }

    /// Targets and LUNs that map a volume (a mapped volume is not deleted).
    public func mappings(volumeId: Int64) async throws(DepotError) -> [(String, Int64)] {
        try await lunMaps(volumeId: volumeId).map { ($0.iqn, $0.lun) }
    }

    /// The same with each map's read-only flag (`volume show`).
    public func lunMaps(volumeId: Int64) async throws(DepotError) -> [(iqn: String, lun: Int64, readOnly: Bool)] {
        try await reading { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT target.iqn, target_lun.lun, target_lun.readOnly FROM target_lun JOIN target ON target.id = target_lun.targetId
                    WHERE target_lun.volumeId = ? ORDER BY target.iqn, target_lun.lun
                    """, arguments: [volumeId]
            ).map { (iqn: $0[0], lun: $0[1], readOnly: $0[2]) }
        }
    }

    /// Adds a target; its IQN must be new.
    public func insertTarget(_ record: TargetRecord) async throws(DepotError) {
        try await writing { db in
            if try TargetRecord.filter(Column("iqn") == record.iqn).fetchCount(db) > 0 {
                throw DepotError.conflict("target \(record.iqn) already exists")
            }
            var copy = record
            try copy.insert(db)
        }
    }

    /// Stores a target's changed fields (alias, CHAP).
    public func updateTarget(_ record: TargetRecord) async throws(DepotError) {
        try await writing { db in try record.update(db) }
    }

    /// Deletes a target with its LUN maps and ACL (cascade).
    public func deleteTarget(id: Int64) async throws(DepotError) {
        _ = try await writing { db in try TargetRecord.deleteOne(db, key: id) }
    }

    /// Maps a volume as a LUN of a target, at `lun` or the first free one, and
    /// returns the LUN. One volume is one LU: a second LUN of it on the same
    /// target would show an initiator two disks with one identity (VPD 83h) —
    /// multipath software would merge them, anything else would mount one disk
    /// twice. Across targets it is how multipath over targets works, and allowed.
    /// `volumeName` and `targetIQN` are for the messages.
    public func mapLUN(
        targetId: Int64, volumeId: Int64, lun wanted: Int?, readOnly: Bool, volumeName: String, targetIQN: String
    ) async throws(DepotError) -> Int {
        try await writing { db in
            let rows = try TargetLUNRecord.filter(Column("targetId") == targetId).fetchAll(db)
            if let existing = rows.first(where: { $0.volumeId == volumeId }) {
                throw DepotError.conflict(
                    "volume \(volumeName) is already LUN \(existing.lun) of \(targetIQN); a volume is mapped once per target "
                        + "(map it on another target to reach it by more paths)")
            }
            let used = Set(rows.map { Int($0.lun) })
            let lun: Int
            if let wanted {
                if used.contains(wanted) {
                    throw DepotError.conflict("LUN \(wanted) of \(targetIQN) is already mapped")
                }
                lun = wanted
            } else {
                guard let free = (0...16383).first(where: { !used.contains($0) }) else {
                    throw DepotError.conflict("no free LUN on \(targetIQN)")
                }
                lun = free
            }
            var row = TargetLUNRecord(targetId: targetId, lun: Int64(lun), volumeId: volumeId, readOnly: readOnly)
            try row.insert(db)
            return lun
        }
    }

    /// Removes a LUN map; false when the LUN was not mapped.
    public func unmapLUN(targetId: Int64, lun: Int) async throws(DepotError) -> Bool {
        try await writing { db in
            try TargetLUNRecord.filter(Column("targetId") == targetId && Column("lun") == lun).deleteAll(db)
        } > 0
    }

    /// Allows an initiator on a target (from `networks` only, when given); it must not be there yet.
    public func addACL(targetId: Int64, initiator: String, networks: String? = nil, targetIQN: String)
        async throws(DepotError)
    {
        try await writing { db in
            if try TargetACLRecord.filter(Column("targetId") == targetId && Column("initiator") == initiator)
                .fetchCount(db) > 0
            {
                throw DepotError.conflict("\(initiator) is already allowed on \(targetIQN)")
            }
            var row = TargetACLRecord(targetId: targetId, initiator: initiator, networks: networks)
            try row.insert(db)
        }
    }

    /// Removes an initiator from a target's ACL; false when it was not there.
    public func removeACL(targetId: Int64, initiator: String) async throws(DepotError) -> Bool {
        try await writing { db in
            try TargetACLRecord.filter(Column("targetId") == targetId && Column("initiator") == initiator).deleteAll(db)
        } > 0
    }
}
