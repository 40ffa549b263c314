import DepotCore
import GRDB

/// ALUA access states per target and portal group; groups without a row are
/// active/optimized.
extension Catalog {
    /// Every stored state: target id → group id → state name.
    public func portalGroupStates() async throws(DepotError) -> [Int64: [Int: String]] {
        try await reading { db in
            var states: [Int64: [Int: String]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT targetId, groupId, state FROM target_portal_group") {
                states[row[0], default: [:]][row[1]] = row[2]
            }
            return states
        }
    }

    public func setPortalGroupState(targetId: Int64, groupId: Int, state: String) async throws(DepotError) {
        try await writing { db in
            try db.execute(
                sql: """
                    INSERT INTO target_portal_group (targetId, groupId, state) VALUES (?, ?, ?)
                    ON CONFLICT(targetId, groupId) DO UPDATE SET state = excluded.state
                    """, arguments: [targetId, groupId, state])
        }
    }
}
