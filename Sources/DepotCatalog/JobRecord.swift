import DepotCore
import GRDB

/// One row of table `job`: long work and how far it got. Written at each
/// state change and every few seconds of progress, so a restart finds every
/// job that was running and resumes or rolls it back.
public struct JobRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "job"

    public var id: String
    public var kind: String
    /// What it works on, as the user names it (`pool/volume`, `pool/volume@snap`).
    public var object: String
    public var state: String
    public var bytesDone: Int64
    public var bytesTotal: Int64
    /// Throttle in bytes per second (0: none).
    public var rateBytes: Int64
    /// The job's own parameters (JSON), enough to resume it.
    public var parameters: String
    public var error: String?
    public var createdAt: String
    public var updatedAt: String
    public var finishedAt: String?

    public init(
        id: String, kind: String, object: String, state: String, bytesTotal: Int64, rateBytes: Int64,
        parameters: String, createdAt: String
    ) {
        self.id = id
        self.kind = kind
        self.object = object
        self.state = state
        self.bytesDone = 0
        self.bytesTotal = bytesTotal
        self.rateBytes = rateBytes
        self.parameters = parameters
        self.createdAt = createdAt
        self.updatedAt = createdAt
    }
}

extension Catalog {
    public func jobs() async throws(DepotError) -> [JobRecord] {
        try await reading { db in try JobRecord.order(Column("createdAt"), Column("id")).fetchAll(db) }
    }

    public func job(id: String) async throws(DepotError) -> JobRecord? {
        try await reading { db in try JobRecord.fetchOne(db, key: id) }
    }

    public func saveJob(_ record: JobRecord) async throws(DepotError) {
        try await writing { db in try record.save(db) }
    }

    public func deleteJob(id: String) async throws(DepotError) {
        try await writing { db in _ = try JobRecord.deleteOne(db, key: id) }
    }
}
