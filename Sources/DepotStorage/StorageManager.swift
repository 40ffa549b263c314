import DepotBackstores
import DepotCatalog
import DepotCore
import DepotJobs
import Foundation
import Logging

/// Owns pools and volumes: every state change goes through here, ordered
/// catalog-then-file-then-catalog so that a crash at any point leaves a state
/// `reconcile()` can finish or roll back.
///
/// An actor reaching the catalog through GRDB's async API, so it is
/// reentrant at every catalog call: each change's checks and the act they
/// allow (admission and the row that reserves its space, the busy mark)
/// run inside `changes`, one change at a time. The slow file work runs on
/// the `IOEngine` outside any change, so one eager-zeroed create does not
/// stall the API.
public actor StorageManager {
    let catalog: Catalog
    let io: IOEngine
    let logger: Logger
    /// Check-then-act sections, one at a time (see the type's comment).
    let changes = ChangeQueue()
    /// Where pools without an explicit path live: `DATA/pools/NAME`.
    public nonisolated let poolsDirectory: String

    /// Allocated bytes per volume id, refreshed on every write path the
    /// daemon owns and by `rescan()`.
    var allocated: [Int64: UInt64] = [:]
    /// Space promised to thick creates and grows still running, per pool id.
    var inflightReservations: [Int64: UInt64] = [:]
    /// Eager-zeroing progress per volume id, 0...1.
    var progress: [Int64: Double] = [:]
    /// When every volume file was last re-read (the figures' age).
    var lastRescan: ContinuousClock.Instant?
    /// Creates that a forced delete may cancel, by volume id.
    var cancels: [Int64: CancelFlag] = [:]
    /// Volumes with a mutation under way; a second one is refused (409).
    var busy: Set<Int64> = []
    public internal(set) var lastReconcile = ReconcileReport()
    /// The volumes LUs serve now (their devices swap under a snapshot, a
    /// rollback, a merge or a flatten).
    public nonisolated let openVolumes: OpenVolumes
    /// Full clones, flattens and merges.
    public nonisolated let jobs: JobManager
    /// Allocated bytes of each snapshot's layer file, by snapshot id.
    var layerAllocated: [Int64: UInt64] = [:]
    /// The deepest chain a snapshot or clone may make (layers, the active one included).
    public nonisolated let maxChainDepth: Int
    /// Directories `volume import` reads images from, besides the pools' own
    /// (`--image-dir`; StorageManager+Import).
    public nonisolated let imageDirectories: [String]

    public init(
        catalog: Catalog, poolsDirectory: String, io: IOEngine = IOEngine(), logger: Logger,
        openVolumes: OpenVolumes = OpenVolumes(), jobRateLimit: UInt64 = 0, maxChainDepth: Int = 64,
        imageDirectories: [String] = []
    ) {
        self.catalog = catalog
        self.io = io
        self.logger = logger
        self.poolsDirectory = poolsDirectory
        self.openVolumes = openVolumes
        self.jobs = JobManager(catalog: catalog, logger: logger, defaultLimit: jobRateLimit)
        self.maxChainDepth = maxChainDepth
        self.imageDirectories = imageDirectories
    }

    // MARK: Capacity

    /// Figures for one pool from the catalog, the allocation cache and statvfs.
    func figures(for pool: PoolRecord, usage: [VolumeUsage]) -> CapacityFigures {
        figures(for: pool, usage: usage, fs: try? FilesystemInfo.of(path: pool.path))
    }

    /// The same with the pool's filesystem already read by the caller (one statvfs, not two).
    func figures(for pool: PoolRecord, usage: [VolumeUsage], fs: FilesystemInfo?) -> CapacityFigures {
        let capacity = pool.capacityBytes.map { UInt64($0) } ?? fs?.totalBytes ?? 0
        var used: UInt64 = inflightReservations[pool.id!] ?? 0
        var provisioned: UInt64 = 0
        for volume in usage where !volume.deleting {
            used += allocated[volume.id] ?? 0
            provisioned += UInt64(volume.provisionedBytes)
        }
        // Every snapshot layer's allocation counts too, and the disks others put there.
        used += layerBytes[pool.id!] ?? 0
        if let foreign = foreign[pool.id!] {
            used += foreign.usedBytes
            provisioned += foreign.provisionedBytes
        }
        return CapacityFigures(
            capacityBytes: capacity, usedBytes: used, provisionedBytes: provisioned,
            filesystemAvailableBytes: fs?.availableBytes ?? 0, thresholds: pool.thresholds)
    }

    func figures(for pool: PoolRecord) async throws(DepotError) -> CapacityFigures {
        figures(for: pool, usage: try await catalog.volumeUsage(poolId: pool.id!))
    }

    func poolInfo(_ pool: PoolRecord, usage: [VolumeUsage], sharing: [String] = []) -> PoolInfo {
        let fs = try? FilesystemInfo.of(path: pool.path)
        return PoolInfo(
            name: pool.name, path: pool.path, capacityExplicit: pool.capacityBytes != nil,
            figures: figures(for: pool, usage: usage, fs: fs), volumeCount: usage.count,
            filesystemBytes: fs?.totalBytes ?? 0,
            filesystemFreeBytes: fs?.availableBytes ?? 0, sharesFilesystemWith: sharing)
    }

    func poolInfo(_ pool: PoolRecord) async throws(DepotError) -> PoolInfo {
        let all = try await catalog.pools()
        return poolInfo(
            pool, usage: try await catalog.volumeUsage(poolId: pool.id!),
            sharing: Self.sharing(all)[pool.name] ?? [])
    }

    /// For each pool, the other pools on the same filesystem (same st_dev).
    static func sharing(_ pools: [PoolRecord]) -> [String: [String]] {
        var byDevice: [UInt64: [String]] = [:]
        for pool in pools {
            var st = stat()
            guard stat(pool.path, &st) == 0 else { continue }
            byDevice[UInt64(st.st_dev), default: []].append(pool.name)
        }
        var result: [String: [String]] = [:]
        for names in byDevice.values where names.count > 1 {
            for name in names { result[name] = names.filter { $0 != name }.sorted() }
        }
        return result
    }

    /// Every pool with its figures and flags (`GET /v1/capacity`).
    public func capacity() async throws(DepotError) -> CapacityReport {
        var report = await CapacityReport(pools: try listPools())
        report.rescannedSecondsAgo = lastRescan.map { Int((ContinuousClock.now - $0).components.seconds) }
        return report
    }

    /// Re-reads st_blocks of every volume file; returns how many changed.
    @discardableResult
    public func rescan() async throws(DepotError) -> Int {
        let records = try await catalog.volumes()
        let pools = Dictionary(uniqueKeysWithValues: try await catalog.pools().map { ($0.id!, $0) })
        let targets: [(Int64, String)] = records.compactMap { v in
            guard let pool = pools[v.poolId] else { return nil }
            return (v.id!, pool.path + "/" + v.fileName)
        }
        let fresh: [(Int64, UInt64)] = try await runIO {
            targets.compactMap { id, path in VolumeFile.status(path: path).map { (id, $0.allocatedBytes) } }
        }
        var changed = 0
        let known = Set(records.map { $0.id! })
        for (id, bytes) in fresh where allocated[id] != bytes {
            allocated[id] = bytes
            changed += 1
        }
        for id in allocated.keys where !known.contains(id) { allocated[id] = nil }
        try await rescanLayers()
        try await rescanForeign(pools: Array(pools.values), volumes: records)
        lastRescan = .now
        return changed
    }

    /// The disks in each pool's directory Depot does not manage (`ForeignDisks`), by pool id.
    var foreign: [Int64: ForeignDisks] = [:]

    /// `pools` and `volumes` as `rescan` just read them from the catalog.
    func rescanForeign(pools: [PoolRecord], volumes: [VolumeRecord]) async throws(DepotError) {
        var managed: [Int64: Set<String>] = [:]
        for volume in volumes { managed[volume.poolId, default: []].insert(volume.fileName) }
        for snapshot in try await catalog.snapshots() {
            managed[snapshot.poolId, default: []].insert(snapshot.fileName)
        }
        let names = managed
        let scans = try await runIO {
            pools.map { pool in (pool.id!, ForeignDisks.scan(root: pool.path, managed: names[pool.id!] ?? [])) }
        }
        foreign = Dictionary(uniqueKeysWithValues: scans)
    }

    /// `depot pool files`: the foreign disks of a pool as the last rescan found them.
    public func foreignDisks(pool name: String) async throws(DepotError) -> [ForeignDiskInfo] {
        let pool = try await requirePool(name)
        return foreign[pool.id!]?.files ?? []
    }

    /// `depot pool rescan`: every file re-read now.
    public func rescanPool(_ name: String) async throws(DepotError) -> PoolInfo {
        let pool = try await requirePool(name)
        try await rescan()
        return try await poolInfo(pool)
    }

    /// Snapshot layer bytes per pool id (from `layerAllocated`).
    var layerBytes: [Int64: UInt64] = [:]

    /// Re-reads the allocation of every snapshot layer file.
    func rescanLayers() async throws(DepotError) {
        let pools = Dictionary(uniqueKeysWithValues: try await catalog.pools().map { ($0.id!, $0.path) })
        let layers = try await catalog.snapshots().compactMap { s in
            pools[s.poolId].map { (s.id!, s.poolId, $0 + "/" + s.fileName) }
        }
        let fresh = try await runIO {
            layers.map { id, pool, path in (id, pool, VolumeFile.status(path: path)?.allocatedBytes ?? 0) }
        }
        layerAllocated = [:]
        layerBytes = [:]
        for (id, pool, bytes) in fresh {
            layerAllocated[id] = bytes
            layerBytes[pool, default: 0] += bytes
        }
    }

    /// Allocated bytes per volume id as the last rescan saw them.
    public func allocations() -> [Int64: UInt64] { allocated }

    // MARK: Helpers

    func requirePool(_ name: String) async throws(DepotError) -> PoolRecord {
        try ObjectName.validate(name, kind: "pool")
        guard let pool = try await catalog.pool(named: name) else {
            throw .notFound("pool '\(name)' not found")
        }
        return pool
    }

    func requireVolume(_ ref: VolumeRef) async throws(DepotError) -> (PoolRecord, VolumeRecord) {
        let pool = try await requirePool(ref.pool)
        try ObjectName.validate(ref.name, kind: "volume")
        guard let volume = try await catalog.volume(poolId: pool.id!, name: ref.name) else {
            throw .notFound("volume '\(ref)' not found")
        }
        return (pool, volume)
    }

    /// Waits until the layers snapshots of the volume froze while it was
    /// served have their tables in their files (`OpenVolumes.settle`): before
    /// a clone, a copy or a figure opens one of its layer files afresh.
    /// A layer whose write-back failed is an error (its file may lack data).
    func settleLayers(of volumeId: Int64) async throws(DepotError) {
        do { try await openVolumes.settle(volumeId) } catch {
            throw .internalError("a layer of the volume could not be written back: \(error)")
        }
    }

    func runIO<T: Sendable>(_ body: @Sendable @escaping () throws -> T) async throws(DepotError) -> T {
        do { return try await io.run(body) } catch let error as DepotError { throw error } catch {
            throw .internalError("I/O engine: \(error)")
        }
    }
}
