/// The JSON objects of the REST API (`/v1/...`), shared by server and CLI.
/// Field names are camelCase and part of the API contract (Docs/openapi.yaml).

public struct PoolInfo: Codable, Sendable, Equatable {
    public var name: String
    public var path: String
    public var capacityBytes: UInt64
    /// Whether capacity was given explicitly (else it follows the filesystem).
    public var capacityExplicit: Bool
    public var usedBytes: UInt64
    public var provisionedBytes: UInt64
    public var freeBytes: UInt64
    public var overcommitRatio: Double
    public var usedPercent: Double
    public var state: CapacityState
    public var overprovisioned: Bool
    public var maxOvercommit: Double
    public var warnPercent: Double
    public var criticalPercent: Double
    public var reservedPercent: Double
    public var volumeCount: Int
    /// The filesystem under the pool, beside Depot's own accounting: its size
    /// and what it still has (statvfs), so the two can be compared.
    public var filesystemBytes: UInt64
    public var filesystemFreeBytes: UInt64
    /// The capacity is more than the filesystem can give (used + its free space).
    public var exceedsFilesystem: Bool
    /// Other pools on the same filesystem: their free space is this pool's too.
    public var sharesFilesystemWith: [String]
    /// Said once, in the answer to a create or update (e.g. a capacity beyond the filesystem).
    public var warnings: [String]?

    public init(
        name: String, path: String, capacityExplicit: Bool, figures: CapacityFigures, volumeCount: Int,
        filesystemBytes: UInt64 = 0,
        filesystemFreeBytes: UInt64 = 0, sharesFilesystemWith: [String] = []
    ) {
        self.filesystemBytes = filesystemBytes
        self.filesystemFreeBytes = filesystemFreeBytes
        let (canGive, overflow) = figures.usedBytes.addingReportingOverflow(filesystemFreeBytes)
        self.exceedsFilesystem = !overflow && figures.capacityBytes > canGive
        self.sharesFilesystemWith = sharesFilesystemWith
        self.name = name
        self.path = path
        self.capacityBytes = figures.capacityBytes
        self.capacityExplicit = capacityExplicit
        self.usedBytes = figures.usedBytes
        self.provisionedBytes = figures.provisionedBytes
        self.freeBytes = figures.freeBytes
        self.overcommitRatio = figures.overcommitRatio
        self.usedPercent = figures.usedPercent
        self.state = figures.state
        self.overprovisioned = figures.overprovisioned
        self.maxOvercommit = figures.thresholds.maxOvercommit
        self.warnPercent = figures.thresholds.warnPercent
        self.criticalPercent = figures.thresholds.criticalPercent
        self.reservedPercent = figures.thresholds.reservedPercent
        self.volumeCount = volumeCount
    }
}

public enum VolumeState: String, Codable, Sendable {
    /// Row written, file being made; never served. Rolled back on restart.
    case creating
    case ready
    /// The catalog knows it but its file is gone (found at reconcile).
    case missing
    /// Being removed; finished on restart.
    case deleting
    /// A flush failed: SYNCHRONIZE CACHE and FUA writes fail until an
    /// operator has checked the volume and cleared it (`error` says why).
    case error
}

public struct VolumeInfo: Codable, Sendable, Equatable {
    public var pool: String
    public var name: String
    public var sizeBytes: UInt64
    public var allocatedBytes: UInt64
    public var provisioning: Provisioning
    public var blockSize: UInt32
    public var state: VolumeState
    public var uuid: String
    public var path: String
    public var createdAt: String
    /// How the data is stored in the file (raw or qcow2).
    public var format: VolumeFormat = .raw
    /// Fraction of eager zeroing done while `state` is `creating`.
    public var progress: Double?
    /// Where the volume is served (one volume's GET only): its LUNs, and
    /// whether its pool is NFS-exported.
    public var luns: [VolumeLUN]?
    public var exported: Bool?
    /// The snapshot the volume's active layer is an overlay on
    /// (`POOL/VOLUME@SNAP`; another volume's for a linked clone).
    public var base: String?
    /// Allocated bytes of the volume's own snapshots (every layer counts in the pool's used bytes).
    public var snapshotBytes: UInt64?
    public var snapshotCount: Int?
    /// Why the volume is in `error`: the flush that failed.
    public var error: String?

    public init(
        pool: String, name: String, sizeBytes: UInt64, allocatedBytes: UInt64, provisioning: Provisioning,
        blockSize: UInt32, state: VolumeState, uuid: String, path: String, createdAt: String
    ) {
        self.pool = pool
        self.name = name
        self.sizeBytes = sizeBytes
        self.allocatedBytes = allocatedBytes
        self.provisioning = provisioning
        self.blockSize = blockSize
        self.state = state
        self.uuid = uuid
        self.path = path
        self.createdAt = createdAt
    }

    /// `format` came with qcow2 volumes: a daemon from before says nothing,
    /// and every volume it has is raw.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pool = try c.decode(String.self, forKey: .pool)
        name = try c.decode(String.self, forKey: .name)
        sizeBytes = try c.decode(UInt64.self, forKey: .sizeBytes)
        allocatedBytes = try c.decode(UInt64.self, forKey: .allocatedBytes)
        provisioning = try c.decode(Provisioning.self, forKey: .provisioning)
        blockSize = try c.decode(UInt32.self, forKey: .blockSize)
        state = try c.decode(VolumeState.self, forKey: .state)
        uuid = try c.decode(String.self, forKey: .uuid)
        path = try c.decode(String.self, forKey: .path)
        createdAt = try c.decode(String.self, forKey: .createdAt)
        format = try c.decodeIfPresent(VolumeFormat.self, forKey: .format) ?? .raw
        progress = try c.decodeIfPresent(Double.self, forKey: .progress)
        luns = try c.decodeIfPresent([VolumeLUN].self, forKey: .luns)
        exported = try c.decodeIfPresent(Bool.self, forKey: .exported)
        base = try c.decodeIfPresent(String.self, forKey: .base)
        snapshotBytes = try c.decodeIfPresent(UInt64.self, forKey: .snapshotBytes)
        snapshotCount = try c.decodeIfPresent(Int.self, forKey: .snapshotCount)
        error = try c.decodeIfPresent(String.self, forKey: .error)
    }
}

/// One LUN a volume is mapped as.
public struct VolumeLUN: Codable, Sendable, Equatable {
    public var target: String
    public var lun: Int
    public var readOnly: Bool
    public init(target: String, lun: Int, readOnly: Bool) {
        self.target = target
        self.lun = lun
        self.readOnly = readOnly
    }
}

public struct CapacityReport: Codable, Sendable, Equatable {
    public var pools: [PoolInfo]
    /// Seconds since the volume files were last re-read: used and allocated
    /// bytes written over iSCSI show from the next rescan on.
    public var rescannedSecondsAgo: Int?
    public init(pools: [PoolInfo], rescannedSecondsAgo: Int? = nil) {
        self.pools = pools
        self.rescannedSecondsAgo = rescannedSecondsAgo
    }
}

public struct PoolList: Codable, Sendable {
    public var pools: [PoolInfo]
    public init(pools: [PoolInfo]) { self.pools = pools }
}
public struct VolumeList: Codable, Sendable {
    public var volumes: [VolumeInfo]
    public init(volumes: [VolumeInfo]) { self.volumes = volumes }
}

public struct CreatePoolRequest: Codable, Sendable {
    public var name: String
    public var path: String?
    public var capacityBytes: UInt64?
    public var maxOvercommit: Double?
    public var warnPercent: Double?
    public var criticalPercent: Double?
    public var reservedPercent: Double?
    /// Create missing parent directories of `path` (refused otherwise, so a
    /// mistyped path does not become a new directory tree).
    public var createParents: Bool?

    public init(
        name: String, path: String? = nil, capacityBytes: UInt64? = nil, maxOvercommit: Double? = nil,
        warnPercent: Double? = nil, criticalPercent: Double? = nil, reservedPercent: Double? = nil,
        createParents: Bool? = nil
    ) {
        self.createParents = createParents
        self.name = name
        self.path = path
        self.capacityBytes = capacityBytes
        self.maxOvercommit = maxOvercommit
        self.warnPercent = warnPercent
        self.criticalPercent = criticalPercent
        self.reservedPercent = reservedPercent
    }
}

/// PATCH /v1/pools/{pool}: only the fields present change.
public struct UpdatePoolRequest: Codable, Sendable {
    public var capacityBytes: UInt64?
    public var maxOvercommit: Double?
    public var warnPercent: Double?
    public var criticalPercent: Double?
    public var reservedPercent: Double?
    /// Allows a capacity below the bytes the pool's volumes already use.
    public var force: Bool?

    public init(
        capacityBytes: UInt64? = nil, maxOvercommit: Double? = nil, warnPercent: Double? = nil,
        criticalPercent: Double? = nil, reservedPercent: Double? = nil, force: Bool? = nil
    ) {
        self.force = force
        self.capacityBytes = capacityBytes
        self.maxOvercommit = maxOvercommit
        self.warnPercent = warnPercent
        self.criticalPercent = criticalPercent
        self.reservedPercent = reservedPercent
    }

    public var isEmpty: Bool {
        capacityBytes == nil && maxOvercommit == nil && warnPercent == nil && criticalPercent == nil
            && reservedPercent == nil
    }
}

public struct CreateVolumeRequest: Codable, Sendable {
    public var name: String
    public var sizeBytes: UInt64
    public var provisioning: Provisioning?
    public var blockSize: UInt32?
    /// raw (the default) or qcow2.
    public var format: VolumeFormat?

    public init(
        name: String, sizeBytes: UInt64, provisioning: Provisioning? = nil, blockSize: UInt32? = nil,
        format: VolumeFormat? = nil
    ) {
        self.name = name
        self.sizeBytes = sizeBytes
        self.provisioning = provisioning
        self.blockSize = blockSize
        self.format = format
    }
}

/// PATCH /v1/pools/{pool}/volumes/{name}: resize and/or rename.
public struct UpdateVolumeRequest: Codable, Sendable {
    public var sizeBytes: UInt64?
    public var force: Bool?
    public var name: String?

    public init(sizeBytes: UInt64? = nil, force: Bool? = nil, name: String? = nil) {
        self.sizeBytes = sizeBytes
        self.force = force
        self.name = name
    }
}

/// `{"error": {"code": "...", "message": "..."}}`
public struct ErrorBody: Codable, Sendable {
    public struct Detail: Codable, Sendable {
        public var code: String
        public var message: String
    }
    public var error: Detail

    public init(code: String, message: String) { self.error = Detail(code: code, message: message) }
}

/// A disk image in a pool's directory that Depot does not manage (one a
/// hypervisor made on an NFS datastore): `GET /v1/pools/{pool}/files`.
public struct ForeignDiskInfo: Codable, Sendable, Equatable {
    /// Relative to the pool's directory.
    public var path: String
    /// raw, qcow2, vmdk, vhd or vhdx (by content).
    public var format: String
    /// What the guest sees; nil when the file could not be read.
    public var virtualSizeBytes: UInt64?
    /// Blocks the file holds (a VMDK descriptor's extents are listed on their own).
    public var allocatedBytes: UInt64
    /// The file it reads through (a qcow2 backing file, a VMDK parent), as named.
    public var backing: String?
    /// Part of another disk's chain: its size is counted once, with the top's.
    public var backs: Bool
    public var modifiedAt: String
    /// Why its size is not counted (unreadable, half-written…).
    public var problem: String?

    public init(
        path: String, format: String, virtualSizeBytes: UInt64?, allocatedBytes: UInt64, backing: String?,
        backs: Bool, modifiedAt: String, problem: String?
    ) {
        self.path = path
        self.format = format
        self.virtualSizeBytes = virtualSizeBytes
        self.allocatedBytes = allocatedBytes
        self.backing = backing
        self.backs = backs
        self.modifiedAt = modifiedAt
        self.problem = problem
    }
}

public struct ForeignDiskList: Codable, Sendable {
    public var files: [ForeignDiskInfo]
    public init(files: [ForeignDiskInfo]) { self.files = files }
}
