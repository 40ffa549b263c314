import DepotCore
import GRDB

/// One row of table `volume`.
///
/// `pendingSizeBytes` and `pendingName` are intents written before a file
/// operation and cleared after it, so that reconcile can finish or roll back
/// a resize or rename that a crash interrupted.
public struct VolumeRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "volume"

    public var id: Int64?
    public var poolId: Int64
    public var name: String
    /// Stable identity for the life of the volume (SCSI designators derive from it).
    public var uuid: String
    public var fileName: String
    public var sizeBytes: Int64
    public var provisioning: String
    public var blockSize: Int64
    public var state: String
    public var pendingSizeBytes: Int64?
    public var pendingName: String?
    public var createdAt: String
    /// `VolumeFormat` raw value ("raw" for rows made before formats existed).
    public var format: String = VolumeFormat.raw.rawValue
    /// The snapshot whose layer the active file is an overlay on, if any.
    public var baseSnapshotId: Int64?
    /// The failed flush the volume is latched on (SYNCHRONIZE CACHE and FUA
    /// writes fail until `depot volume clear-error`); nil: none.
    public var flushError: String?

    public init(
        id: Int64? = nil, poolId: Int64, name: String, uuid: String, fileName: String, sizeBytes: Int64,
        provisioning: Provisioning, blockSize: UInt32, state: VolumeState, createdAt: String,
        format: VolumeFormat = .raw
    ) {
        self.format = format.rawValue
        self.id = id
        self.poolId = poolId
        self.name = name
        self.uuid = uuid
        self.fileName = fileName
        self.sizeBytes = sizeBytes
        self.provisioning = provisioning.rawValue
        self.blockSize = Int64(blockSize)
        self.state = state.rawValue
        self.createdAt = createdAt
    }

    public var volumeState: VolumeState { VolumeState(rawValue: state) ?? .missing }
    public var provisioningKind: Provisioning { Provisioning(rawValue: provisioning) ?? .thin }
    public var volumeFormat: VolumeFormat { VolumeFormat(rawValue: format) ?? .raw }

    /// The file name a volume called `name` is stored under in its pool directory.
    public static func fileName(for name: String, format: VolumeFormat = .raw) -> String {
        "\(name).\(format.fileExtension)"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
