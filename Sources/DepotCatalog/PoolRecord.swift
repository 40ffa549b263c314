import DepotCore
import GRDB

/// One row of table `pool`.
public struct PoolRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "pool"

    public var id: Int64?
    public var name: String
    public var path: String
    /// Explicit capacity; nil means "the filesystem's size".
    public var capacityBytes: Int64?
    public var maxOvercommit: Double
    public var warnPercent: Double
    public var criticalPercent: Double
    public var reservedPercent: Double
    public var createdAt: String
    /// Depot made the pool's directory (it did not exist before), so deleting
    /// the pool may remove it; a directory the administrator gave is left.
    public var createdDirectory: Bool

    public init(
        id: Int64? = nil, name: String, path: String, capacityBytes: Int64?, thresholds: CapacityThresholds,
        createdAt: String,
        createdDirectory: Bool = true
    ) {
        self.createdDirectory = createdDirectory
        self.id = id
        self.name = name
        self.path = path
        self.capacityBytes = capacityBytes
        self.maxOvercommit = thresholds.maxOvercommit
        self.warnPercent = thresholds.warnPercent
        self.criticalPercent = thresholds.criticalPercent
        self.reservedPercent = thresholds.reservedPercent
        self.createdAt = createdAt
    }

    public var thresholds: CapacityThresholds {
        get {
            CapacityThresholds(
                maxOvercommit: maxOvercommit, warnPercent: warnPercent, criticalPercent: criticalPercent,
                reservedPercent: reservedPercent)
        }
        set {
            maxOvercommit = newValue.maxOvercommit
            warnPercent = newValue.warnPercent
            criticalPercent = newValue.criticalPercent
            reservedPercent = newValue.reservedPercent
        }
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
