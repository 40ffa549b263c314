import DepotCore
import Foundation
import GRDB

/// The single source of truth for configuration: one SQLite file through GRDB.
///
/// One owner type holding a private `DatabaseWriter` (after GRDB's
/// `AppDatabase`). Production uses a `DatabasePool` in WAL mode; tests use an
/// in-memory `DatabaseQueue`. Every state change is one transaction.
public final class Catalog: Sendable {
    let writer: any DatabaseWriter

    var reader: any DatabaseReader { writer }

    public init(writer: any DatabaseWriter) throws {
        self.writer = writer
        try CatalogMigrations.migrator.migrate(writer)
    }

    /// Opens (creating if needed) the catalog file in WAL mode, mode 0600.
    public static func open(path: String) throws -> Catalog {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // WAL + FULL: a committed transaction survives a crash of the daemon or the host.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        config.busyMode = .timeout(5)
        let previous = umask(0o077)
        defer { umask(previous) }
        let pool = try DatabasePool(path: path, configuration: config)
        for suffix in ["", "-wal", "-shm"] {
            chmod(path + suffix, 0o600)
        }
        return try Catalog(writer: pool)
    }

    /// An empty in-memory catalog for tests.
    public static func inMemory() throws -> Catalog {
        var config = Configuration()
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA foreign_keys = ON") }
        return try Catalog(writer: try DatabaseQueue(configuration: config))
    }

    public var journalMode: String {
        get async throws(DepotError) {
            try await reading { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
        }
    }

    public var appliedMigrations: [String] {
        get async throws(DepotError) {
            try await reading { db in try CatalogMigrations.migrator.appliedMigrations(db) }
        }
    }

    // MARK: Pools

    public func pools() async throws(DepotError) -> [PoolRecord] {
        try await reading { db in try PoolRecord.order(Column("name")).fetchAll(db) }
    }

    public func pool(named name: String) async throws(DepotError) -> PoolRecord? {
        try await reading { db in try PoolRecord.filter(Column("name") == name).fetchOne(db) }
    }

    public func insertPool(_ record: PoolRecord) async throws(DepotError) -> PoolRecord {
        try await writing { db in
            if try PoolRecord.filter(Column("name") == record.name).fetchCount(db) > 0 {
                throw DepotError.conflict("pool '\(record.name)' already exists")
            }
            if let other = try PoolRecord.filter(Column("path") == record.path).fetchOne(db) {
                throw DepotError.conflict("path '\(record.path)' is already pool '\(other.name)'")
            }
            var copy = record
            try copy.insert(db)
            return copy
        }
    }

    public func updatePool(_ record: PoolRecord) async throws(DepotError) {
        try await writing { db in try record.update(db) }
    }

    public func deletePool(id: Int64) async throws(DepotError) {
        try await writing { db in
            let count = try VolumeRecord.filter(Column("poolId") == id).fetchCount(db)
            if count > 0 { throw DepotError.conflict("pool still holds \(count) volume(s)") }
            _ = try PoolRecord.deleteOne(db, key: id)
        }
    }

    // MARK: Volumes

    public func volumes(poolId: Int64? = nil) async throws(DepotError) -> [VolumeRecord] {
        try await reading { db in
            var request = VolumeRecord.order(Column("poolId"), Column("name"))
            if let poolId { request = request.filter(Column("poolId") == poolId) }
            return try request.fetchAll(db)
        }
    }

    public func volume(poolId: Int64, name: String) async throws(DepotError) -> VolumeRecord? {
        try await reading { db in
            try VolumeRecord.filter(Column("poolId") == poolId && Column("name") == name).fetchOne(db)
        }
    }

    /// Inserts a volume row (normally in state `creating`); a name or file
    /// name already taken in the pool is a conflict.
    ///
    /// `durable: false` commits with `synchronous=NORMAL`: the row survives a
    /// crash of the daemon but may be lost with the host's power. That is
    /// enough for the `creating` intent, which protects nothing acknowledged;
    /// the `ready` commit that follows is FULL and makes both durable.
    public func insertVolume(_ record: VolumeRecord, poolName: String, durable: Bool = true) async throws(DepotError)
        -> VolumeRecord
    {
        try await writingWithoutTransaction { db in
            if !durable { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            defer { if !durable { try? db.execute(sql: "PRAGMA synchronous = FULL") } }
            var inserted: VolumeRecord?
            try db.inTransaction(.immediate) {
                let taken = try VolumeRecord.filter(
                    Column("poolId") == record.poolId
                        && (Column("name") == record.name || Column("fileName") == record.fileName
                            || Column("pendingName") == record.name)
                ).fetchCount(db)
                if taken > 0 { throw DepotError.conflict("volume '\(poolName)/\(record.name)' already exists") }
                var copy = record
                try copy.insert(db)
                inserted = copy
                return .commit
            }
            return inserted!
        }
    }

    public func updateVolume(_ record: VolumeRecord) async throws(DepotError) {
        try await writing { db in try record.update(db) }
    }

    /// Records (or, with nil, clears) the flush failure a volume is latched on.
    public func setVolumeFlushError(id: Int64, _ reason: String?) async throws(DepotError) {
        try await writing { db in
            try db.execute(sql: "UPDATE volume SET flushError = ? WHERE id = ?", arguments: [reason, id])
        }
    }

    /// Writes a rename intent; refused when the new name is taken in the pool.
    public func beginRename(volumeId: Int64, poolId: Int64, poolName: String, newName: String) async throws(DepotError)
        -> VolumeRecord
    {
        try await writing { db in
            guard var record = try VolumeRecord.fetchOne(db, key: volumeId) else {
                throw DepotError.notFound("volume vanished during rename")
            }
            let newFile = VolumeRecord.fileName(for: newName, format: record.volumeFormat)
            let taken = try VolumeRecord.filter(
                Column("poolId") == poolId
                    && (Column("name") == newName || Column("fileName") == newFile || Column("pendingName") == newName)
            ).fetchCount(db)
            if taken > 0 { throw DepotError.conflict("volume '\(poolName)/\(newName)' already exists") }
            record.pendingName = newName
            try record.update(db)
            return record
        }
    }

    public func deleteVolume(id: Int64) async throws(DepotError) {
        try await writing { db in _ = try VolumeRecord.deleteOne(db, key: id) }
    }

    // MARK: Settings

    public func setting(_ key: String) async throws(DepotError) -> String? {
        try await reading { db in
            try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [key])
        }
    }

    public func setSetting(_ key: String, _ value: String) async throws(DepotError) {
        try await writing { db in
            try db.execute(
                sql:
                    "INSERT INTO setting(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
        }
    }

    // MARK: Transactions

    /// A read through GRDB's async API (off the caller's thread), failures
    /// translated by the one translator, `DepotError.fromCatalog`.
    func reading<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(DepotError) -> T {
        do { return try await writer.read(body) } catch { throw DepotError.fromCatalog(error) }
    }

    /// One write transaction through GRDB's async API, failures translated.
    func writing<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(DepotError) -> T {
        do { return try await writer.write(body) } catch { throw DepotError.fromCatalog(error) }
    }

    /// A write that runs its own transactions (to set their durability).
    func writingWithoutTransaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T)
        async throws(DepotError) -> T
    {
        do { return try await writer.writeWithoutTransaction(body) } catch { throw DepotError.fromCatalog(error) }
    }
}
