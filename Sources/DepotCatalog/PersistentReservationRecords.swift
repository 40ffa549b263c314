import DepotCore
import GRDB

/// Persistent reservations kept through power loss (APTPL), per volume: the
/// state is the SCSI layer's own JSON, stored and returned as it is.
extension Catalog {
    public func persistentReservations() async throws(DepotError) -> [Int64: String] {
        try await reading { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT volumeId, state FROM persistent_reservation")
                    .map { ($0[0], $0[1]) })
        }
    }

    /// Stores (or with nil removes) a volume's state in one transaction.
    ///
    /// The one synchronous write: PERSISTENT RESERVE OUT stores the new state
    /// from the blocking thread pool while it holds the LU's reservation lock,
    /// before the command completes, so the stored states follow each other
    /// in the order they were made (SPC-4 §5.12.2, APTPL). Never call it from
    /// an actor or an event loop.
    public func savePersistentReservation(volumeId: Int64, state: String?) throws(DepotError) {
        do {
            try writer.write { db in
                try Self.store(db, volumeId: volumeId, state: state)
            }
        } catch { throw DepotError.fromCatalog(error) }
    }

    private static func store(_ db: Database, volumeId: Int64, state: String?) throws {
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
