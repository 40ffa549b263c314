/// `POOL/VOLUME@SNAPSHOT`: a snapshot's full name.
public struct SnapshotRef: Hashable, Sendable, CustomStringConvertible {
    public let volume: VolumeRef
    public let name: String

    public init(volume: VolumeRef, name: String) {
        self.volume = volume
        self.name = name
    }

    public init(parsing text: String) throws(DepotError) {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw .invalidArgument("snapshot must be given as POOL/VOLUME@SNAPSHOT, got '\(text)'")
        }
        let volume = try VolumeRef(parsing: String(parts[0]))
        try ObjectName.validate(String(parts[1]), kind: "snapshot")
        self.init(volume: volume, name: String(parts[1]))
    }

    public var description: String { "\(volume)@\(name)" }
}

/// A snapshot as the API shows it.
public struct SnapshotInfo: Codable, Sendable, Equatable {
    public var pool: String
    public var volume: String
    public var name: String
    public var uuid: String
    /// `ready`, or `creating` / `merging` while that runs.
    public var state: String
    public var sizeBytes: UInt64
    /// The layer file's allocated bytes.
    public var allocatedBytes: UInt64
    /// What deleting it would give back: all of it with nothing depending on
    /// it; with one layer above, the clusters that layer already shadows.
    public var uniqueBytes: UInt64
    /// The snapshot below it in the chain (`POOL/VOLUME@SNAP`), if any.
    public var parent: String?
    /// Layers built on it: later snapshots, the volume itself, linked clones.
    public var dependents: [String]
    /// Volumes (other than its own) that are linked clones of it.
    public var clones: [String]
    public var format: VolumeFormat
    public var path: String
    public var createdAt: String

    public init(
        pool: String, volume: String, name: String, uuid: String, state: String, sizeBytes: UInt64,
        allocatedBytes: UInt64, uniqueBytes: UInt64, parent: String?, dependents: [String], clones: [String],
        format: VolumeFormat, path: String, createdAt: String
    ) {
        self.pool = pool
        self.volume = volume
        self.name = name
        self.uuid = uuid
        self.state = state
        self.sizeBytes = sizeBytes
        self.allocatedBytes = allocatedBytes
        self.uniqueBytes = uniqueBytes
        self.parent = parent
        self.dependents = dependents
        self.clones = clones
        self.format = format
        self.path = path
        self.createdAt = createdAt
    }
}

public struct SnapshotList: Codable, Sendable {
    public var snapshots: [SnapshotInfo]
    public init(snapshots: [SnapshotInfo]) { self.snapshots = snapshots }
}

public struct CreateSnapshotRequest: Codable, Sendable {
    public var name: String
    /// Take a snapshot of a thick volume without the free space its overwrites may need.
    public var allowOvercommit: Bool?

    public init(name: String, allowOvercommit: Bool? = nil) {
        self.name = name
        self.allowOvercommit = allowOvercommit
    }
}

public struct RollbackRequest: Codable, Sendable {
    public var snapshot: String
    public var force: Bool?

    public init(snapshot: String, force: Bool? = nil) {
        self.snapshot = snapshot
        self.force = force
    }
}

public struct CloneRequest: Codable, Sendable {
    /// The snapshot to clone, by name (of this volume).
    public var snapshot: String
    /// The new volume, `POOL/NAME` (a linked clone stays in the snapshot's pool).
    public var target: String
    /// An independent copy instead of an overlay (a job).
    public var full: Bool?
    /// Throttle of a full clone in MiB/s (0 or absent: the daemon's default).
    public var rateMiB: Int?

    public init(snapshot: String, target: String, full: Bool? = nil, rateMiB: Int? = nil) {
        self.snapshot = snapshot
        self.target = target
        self.full = full
        self.rateMiB = rateMiB
    }
}

public struct FlattenRequest: Codable, Sendable {
    public var rateMiB: Int?
    public init(rateMiB: Int? = nil) { self.rateMiB = rateMiB }
}

/// What an operation that may start a job answers: the job (when one
/// started), and the object as it stands.
public struct JobStarted: Codable, Sendable {
    public var job: JobInfo?
    public var volume: VolumeInfo?

    public init(job: JobInfo?, volume: VolumeInfo?) {
        self.job = job
        self.volume = volume
    }
}

/// POST /v1/pools/{pool}/volumes/{name}/import: a disk image on the daemon's
/// machine becomes a new volume, as a job.
public struct ImportVolumeRequest: Codable, Sendable {
    /// The image: an absolute path inside one of the daemon's import
    /// directories (`--image-dir`) or pool directories.
    public var from: String
    /// What the file must be: `auto` (the default: told by its content), `raw` or `qcow2`.
    public var format: String?
    /// The new volume's format: raw (the default) or qcow2.
    public var `as`: VolumeFormat?
    /// thin (the default) or thick (a raw volume's file fully allocated).
    public var provisioning: Provisioning?
    /// Throttle in MiB/s (0 or absent: the daemon's default).
    public var rateMiB: Int?

    public init(
        from: String, format: String? = nil, as: VolumeFormat? = nil, provisioning: Provisioning? = nil,
        rateMiB: Int? = nil
    ) {
        self.from = from
        self.format = format
        self.as = `as`
        self.provisioning = provisioning
        self.rateMiB = rateMiB
    }
}

/// POST /v1/pools/{pool}/volumes/{name}/export: the volume (or one of its
/// snapshots) written as a disk image file on the daemon's machine, as a job.
public struct ImageExportRequest: Codable, Sendable {
    /// The new file: an absolute path inside one of the daemon's image
    /// directories (`--image-dir`); it must not exist.
    public var to: String
    /// raw (the default) or qcow2.
    public var format: VolumeFormat?
    /// A snapshot of the volume, by name; absent: the volume as it is now
    /// (an implicit snapshot, removed afterwards).
    public var snapshot: String?
    /// Throttle in MiB/s (0 or absent: the daemon's default).
    public var rateMiB: Int?

    public init(to: String, format: VolumeFormat? = nil, snapshot: String? = nil, rateMiB: Int? = nil) {
        self.to = to
        self.format = format
        self.snapshot = snapshot
        self.rateMiB = rateMiB
    }
}
