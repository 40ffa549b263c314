import DepotCore
import GRDB

/// One row of table `snapshot`: a frozen layer of a volume's chain.
///
/// `state` is `creating` from before the files move until the switch is
/// committed (reconcile finishes or rolls back a snapshot a crash cut),
/// `merging` while a delete streams it into the layer above, then gone.
public struct SnapshotRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "snapshot"

    public var id: Int64?
    public var uuid: String
    /// The volume it was taken of (clones of it are other volumes).
    public var volumeId: Int64
    public var poolId: Int64
    public var name: String
    /// The layer's file in the pool directory (`.layer-UUID.qcow2` or `.img`).
    public var fileName: String
    public var format: String
    /// The snapshot whose layer lies below this one, if any.
    public var parentId: Int64?
    public var sizeBytes: Int64
    public var state: String
    public var createdAt: String

    public init(
        id: Int64? = nil, uuid: String, volumeId: Int64, poolId: Int64, name: String, fileName: String,
        format: VolumeFormat, parentId: Int64?, sizeBytes: Int64, state: String, createdAt: String
    ) {
        self.id = id
        self.uuid = uuid
        self.volumeId = volumeId
        self.poolId = poolId
        self.name = name
        self.fileName = fileName
        self.format = format.rawValue
        self.parentId = parentId
        self.sizeBytes = sizeBytes
        self.state = state
        self.createdAt = createdAt
    }

    public var layerFormat: VolumeFormat { VolumeFormat(rawValue: format) ?? .qcow2 }

    /// The file a frozen layer with this uuid is kept in.
    public static func fileName(uuid: String, format: VolumeFormat) -> String {
        ".layer-\(uuid).\(format.fileExtension)"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Catalog {
    public func snapshots(volumeId: Int64? = nil, poolId: Int64? = nil) async throws(DepotError) -> [SnapshotRecord] {
        try await reading { db in
            var request = SnapshotRecord.order(Column("createdAt"), Column("id"))
            if let volumeId { request = request.filter(Column("volumeId") == volumeId) }
            if let poolId { request = request.filter(Column("poolId") == poolId) }
            return try request.fetchAll(db)
        }
    }

    public func snapshot(id: Int64) async throws(DepotError) -> SnapshotRecord? {
        try await reading { db in try SnapshotRecord.fetchOne(db, key: id) }
    }

    public func snapshot(volumeId: Int64, name: String) async throws(DepotError) -> SnapshotRecord? {
        try await reading { db in
            try SnapshotRecord.filter(Column("volumeId") == volumeId && Column("name") == name).fetchOne(db)
        }
    }

    public func insertSnapshot(_ record: SnapshotRecord) async throws(DepotError) -> SnapshotRecord {
        try await writing { db in
            if try SnapshotRecord.filter(Column("volumeId") == record.volumeId && Column("name") == record.name)
                .fetchCount(db) > 0
            {
                throw DepotError.conflict("snapshot '\(record.name)' already exists")
            }
            var copy = record
            try copy.insert(db)
            return copy
        }
    }

    public func updateSnapshot(_ record: SnapshotRecord) async throws(DepotError) {
        try await writing { db in try record.update(db) }
    }

    public func deleteSnapshot(id: Int64) async throws(DepotError) {
        try await writing { db in _ = try SnapshotRecord.deleteOne(db, key: id) }
    }

    /// Several rows changed in one transaction (a snapshot's switch, a merge's end).
    public func commit(
        volumes: [VolumeRecord] = [], snapshots: [SnapshotRecord] = [], deletingSnapshots: [Int64] = []
    ) async throws(DepotError) {
        try await writing { db in
            for record in snapshots { try record.update(db) }
            for record in volumes { try record.update(db) }
            for id in deletingSnapshots { _ = try SnapshotRecord.deleteOne(db, key: id) }
        }
    }
}
