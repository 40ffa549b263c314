import DepotCore
import GRDB

/// The few columns capacity math needs, fetched without decoding whole
/// records: `depot capacity` over thousands of volumes stays cheap.
public struct VolumeUsage: Sendable {
    public var id: Int64
    public var poolId: Int64
    /// The larger of the size and a pending resize: space is promised to both.
    public var provisionedBytes: Int64
    public var deleting: Bool
}

extension Catalog {
    public func volumeUsage(poolId: Int64? = nil) async throws(DepotError) -> [VolumeUsage] {
        try await reading { db in
            var sql = "SELECT id, poolId, MAX(sizeBytes, COALESCE(pendingSizeBytes, 0)), state FROM volume"
            var arguments: StatementArguments = []
            if let poolId {
                sql += " WHERE poolId = ?"
                arguments = [poolId]
            }
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                VolumeUsage(
                    id: row[0], poolId: row[1], provisionedBytes: row[2], deleting: (row[3] as String) == "deleting")
            }
        }
    }
}
