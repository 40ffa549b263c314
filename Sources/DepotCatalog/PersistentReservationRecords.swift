import DepotCore
import GRDB

/// Persistent reservations kept through power loss (APTPL), per volume: the
/// state is the SCSI layer's own JSON, stored and returned as it is.
extension Catalog {
    public func persistentReservations() throws -> [Int64: String] {
        try reader.read { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT volumeId, state FROM persistent_reservation")
                    .map { ($0[0], $0[1]) })
        }
    }

    /// Stores (or with nil removes) a volume's state in one transaction.
    public func savePersistentReservation(volumeId: Int64, state: String?) throws {
        try writer.write { db in
            if let state {
                try db.execute(
                    sql: """
                        INSERT INTO persistent_reservation (volumeId, state, updatedAt) VALUES (?, ?, ?)
                        ON CONFLICT(volumeId) DO UPDATE SET state = excluded.state, updatedAt = excluded.updatedAt
                        """, arguments: [volumeId, state, Timestamp.now()])
            } else {
                try db.execute(sql: "DELETE FROM persistent_reservation WHERE volumeId = ?", arguments: [volumeId])
            }
        }
    }
}
