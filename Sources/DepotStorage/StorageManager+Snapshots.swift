import DepotBackstores
import DepotBlock
import DepotCatalog
import DepotCore
import DepotImage
import Foundation

/// Snapshots, rollback and linked clones (Docs/Snapshots.md): operations on
/// a volume's chain of layers. The active layer is the volume's own file
/// (`NAME.img` or `NAME.qcow2`); frozen layers are `.layer-UUID.*` files in
/// the same pool directory, so every backing name is a plain file name that
/// resolves beside the image naming it (as qemu-img resolves it) and no
/// rename of a volume touches them.
extension StorageManager {
    /// Catalog rows a chain operation looks at, by id.
    struct ChainView {
        var pools: [Int64: PoolRecord]
        var volumes: [Int64: VolumeRecord]
        var snapshots: [Int64: SnapshotRecord]

        func label(_ s: SnapshotRecord) -> String {
            let volume = volumes[s.volumeId]
            let pool = volume.flatMap { pools[$0.poolId] }?.name ?? "?"
            return "\(pool)/\(volume?.name ?? "?")@\(s.name)"
        }

        func label(_ v: VolumeRecord) -> String { "\(pools[v.poolId]?.name ?? "?")/\(v.name)" }

        /// Layers built directly on `s`: snapshots whose parent it is, volumes whose base it is.
        func dependents(of id: Int64) -> (snapshots: [SnapshotRecord], volumes: [VolumeRecord]) {
            (
                snapshots.values.filter { $0.parentId == id }.sorted { $0.id! < $1.id! },
                volumes.values.filter { $0.baseSnapshotId == id }.sorted { $0.id! < $1.id! }
            )
        }

        /// Volumes other than `s`'s own built on it, directly or through
        /// snapshots of theirs (linked clones).
        func clones(of s: SnapshotRecord) -> [VolumeRecord] {
            var found: [Int64: VolumeRecord] = [:]
            var pending = [s.id!]
            while let id = pending.popLast() {
                let (snaps, vols) = dependents(of: id)
                for v in vols where v.id != s.volumeId { found[v.id!] = v }
                for child in snaps {
                    if child.volumeId != s.volumeId, let v = volumes[child.volumeId] { found[v.id!] = v }
                    pending.append(child.id!)
                }
            }
            return found.values.sorted { $0.id! < $1.id! }
        }

        /// Layers of a chain whose top is built on `base` (the top included).
        func depth(base: Int64?) -> Int {
            var layers = 1
            var next = base
            while let id = next, let s = snapshots[id] {
                layers += 1
                next = s.parentId
            }
            return layers
        }
    }

    func chainView() async throws(DepotError) -> ChainView {
        ChainView(
            pools: Dictionary(uniqueKeysWithValues: try await catalog.pools().map { ($0.id!, $0) }),
            volumes: Dictionary(uniqueKeysWithValues: try await catalog.volumes().map { ($0.id!, $0) }),
            snapshots: Dictionary(uniqueKeysWithValues: try await catalog.snapshots().map { ($0.id!, $0) }))
    }

    func requireSnapshot(_ ref: SnapshotRef) async throws(DepotError) -> (PoolRecord, VolumeRecord, SnapshotRecord) {
        let (pool, volume) = try await requireVolume(ref.volume)
        guard let snapshot = try await catalog.snapshot(volumeId: volume.id!, name: ref.name) else {
            throw .notFound("snapshot '\(ref)' not found")
        }
        return (pool, volume, snapshot)
    }

    // MARK: Listing

    /// Snapshots per pool name: how many, and their layers' allocated bytes (`/metrics`).
    public func snapshotUsage() async throws(DepotError) -> [String: (count: Int, bytes: UInt64)] {
        let pools = Dictionary(uniqueKeysWithValues: try await catalog.pools().map { ($0.id!, $0.name) })
        var result: [String: (count: Int, bytes: UInt64)] = [:]
        for s in try await catalog.snapshots() {
            guard let name = pools[s.poolId] else { continue }
            var entry = result[name] ?? (0, 0)
            entry.count += 1
            entry.bytes += layerAllocated[s.id!] ?? 0
            result[name] = entry
        }
        return result
    }

    public func listSnapshots(volume ref: VolumeRef?) async throws(DepotError) -> [SnapshotInfo] {
        var volumeId: Int64?
        if let ref { volumeId = try await requireVolume(ref).1.id }
        let view = try await chainView()
        var result: [SnapshotInfo] = []
        for s in try await catalog.snapshots(volumeId: volumeId) {
            result.append(try await snapshotInfo(s, view: view))
        }
        return result
    }

    public func snapshot(_ ref: SnapshotRef) async throws(DepotError) -> SnapshotInfo {
        let (_, _, s) = try await requireSnapshot(ref)
        return try await snapshotInfo(s, view: try await chainView())
    }

    /// `fresh`: a snapshot just taken, whose one dependent is an empty
    /// overlay shadowing nothing (uniqueBytes 0 without reading the chain).
    func snapshotInfo(_ s: SnapshotRecord, view: ChainView, fresh: Bool = false) async throws(DepotError)
        -> SnapshotInfo
    {
        let pool = view.pools[s.poolId]!
        let path = pool.path + "/" + s.fileName
        let allocatedBytes = VolumeFile.status(path: path)?.allocatedBytes ?? 0
        layerAllocated[s.id!] = allocatedBytes
        let (snaps, vols) = view.dependents(of: s.id!)
        var unique: UInt64 = 0
        if snaps.isEmpty, vols.isEmpty {
            unique = allocatedBytes
        } else if snaps.count + vols.count == 1, !fresh {
            // A merge streams what the layer above lacks into it: what it already shadows is freed.
            try await settleLayers(of: s.volumeId)
            let above = snaps.first.map { pool.path + "/" + $0.fileName } ?? (pool.path + "/" + vols[0].fileName)
            unique =
                (try? await runIO {
                    let device = try QCOW2BlockDevice(path: above, blockSize: 512, readOnly: true)
                    return try device.mergeFigures().shadowed
                }) ?? 0
        }
        return SnapshotInfo(
            pool: pool.name, volume: view.volumes[s.volumeId]?.name ?? "?", name: s.name, uuid: s.uuid, state: s.state,
            sizeBytes: UInt64(s.sizeBytes), allocatedBytes: allocatedBytes, uniqueBytes: unique,
            parent: s.parentId.flatMap { view.snapshots[$0] }.map(view.label),
            dependents: snaps.map(view.label) + vols.map(view.label), clones: view.clones(of: s).map(view.label),
            format: s.layerFormat, path: path, createdAt: s.createdAt)
    }

    // MARK: Create

    /// `depot snapshot create POOL/VOL@SNAP`: the active layer becomes the
    /// snapshot (read-only from now on), a new empty qcow2 overlay on it the
    /// active layer. Costs the same whatever the volume's size. On a LUN in
    /// use the switch drains the writes in flight (`VolumeDevice.replace`),
    /// so the snapshot holds every write acknowledged before this returns and
    /// none begun after. The frozen layer's dirty data (and a qcow2 layer's
    /// tables) are written back after the switch, in the background — how
    /// long that takes depends on what the guest left dirty, not on this
    /// call — and the volume's next flush waits for it, so a guest's
    /// SYNCHRONIZE CACHE after the snapshot still covers its earlier writes.
    /// The overlay reads a qcow2 layer from its tables in memory meanwhile;
    /// what opens the layer's file waits for them (`OpenVolumes.settle`).
    ///
    /// Crash safety: the row is written `creating` first; then the overlay is
    /// made under a temporary name, the active file renamed to the layer's
    /// name and the overlay to the active name. Reconcile finishes the switch
    /// once the layer file exists and rolls it back before.
    public func createSnapshot(_ ref: SnapshotRef, allowOvercommit: Bool = false) async throws(DepotError)
        -> SnapshotInfo
    {
        let (pool, volume, row) = try await changes.run {
            () async throws(DepotError) -> (PoolRecord, VolumeRecord, SnapshotRecord) in
            let (pool, volume) = try await requireVolume(ref.volume)
            try requireIdle(volume, ref.volume)
            guard volume.volumeState == .ready else {
                throw .conflict("volume '\(ref.volume)' is \(volume.state), not ready")
            }
            if try await catalog.snapshot(volumeId: volume.id!, name: ref.name) != nil {
                throw .conflict("snapshot '\(ref)' already exists")
            }
            let view = try await chainView()
            let depth = view.depth(base: volume.baseSnapshotId)
            guard depth < maxChainDepth else {
                throw .unprocessable(
                    "'\(ref.volume)' is a chain of \(depth) layers; a snapshot would make \(depth + 1), more than the limit of \(maxChainDepth) (delete or merge snapshots, or flatten)"
                )
            }
            // ZFS's refreservation rule: the overlay of a thick volume may need its whole size.
            if volume.provisioningKind.reservesSpace, !allowOvercommit {
                let figures = try await figures(for: pool)
                let usable = figures.freeBytes > figures.reservedBytes ? figures.freeBytes - figures.reservedBytes : 0
                if usable < UInt64(volume.sizeBytes) {
                    throw .insufficientSpace(
                        "a snapshot of the \(volume.provisioning) volume '\(ref.volume)' needs free space for its overwrites: "
                            + "\(ByteSize.describe(UInt64(volume.sizeBytes))) (its size); pool '\(pool.name)' has \(ByteSize.describe(usable)) usable "
                            + "(free \(ByteSize.describe(figures.freeBytes)) less reserve \(ByteSize.format(figures.reservedBytes))); nothing was changed (allow overcommit to take it anyway)"
                    )
                }
            }
            let uuid = UUID().uuidString.lowercased()
            let row = try await catalog.insertSnapshot(
                SnapshotRecord(
                    uuid: uuid, volumeId: volume.id!, poolId: pool.id!, name: ref.name,
                    fileName: SnapshotRecord.fileName(uuid: uuid, format: volume.volumeFormat),
                    format: volume.volumeFormat, parentId: volume.baseSnapshotId, sizeBytes: volume.sizeBytes,
                    state: "creating", createdAt: Timestamp.now()))
            busy.insert(volume.id!)
            return (pool, volume, row)
        }
        defer { busy.remove(volume.id!) }
        let started = ContinuousClock.now
        let active = pool.path + "/" + volume.fileName
        let layer = pool.path + "/" + row.fileName
        let temporary = pool.path + "/" + Self.pendingOverlayName(row.uuid)
        let newActive = VolumeRecord.fileName(for: volume.name, format: .qcow2)
        let newActivePath = pool.path + "/" + newActive
        let size = UInt64(volume.sizeBytes)
        let backing = QCOW2Layout.Backing(name: row.fileName, format: volume.volumeFormat.rawValue)
        do {
            try await runIO { try VolumeFile.createQCOW2(path: temporary, size: size, backing: backing) }
            let switchFiles: @Sendable () throws(DepotError) -> Void = { () throws(DepotError) in
                if newActivePath != active, VolumeFile.status(path: newActivePath) != nil {
                    throw DepotError.conflict("file \(newActivePath) already exists (not Depot's); move it away first")
                }
                try VolumeFile.rename(from: active, to: layer)
                do throws(DepotError) { try VolumeFile.replace(newActivePath, with: temporary) } catch {
                    try? VolumeFile.rename(from: layer, to: active)
                    throw error
                }
            }
            try await swapLive(volume, flushOld: .later) {
                _ throws(DepotError) in
                try switchFiles()
                return (newActivePath, .qcow2)
            }
        } catch {
            _ = try? await runIO { try VolumeFile.remove(path: temporary) }
            try? await catalog.deleteSnapshot(id: row.id!)
            logger.warning("snapshot create failed", metadata: ["snapshot": "\(ref)", "error": "\(error)"])
            throw error
        }
        var committed = row
        committed.state = "ready"
        var updated = volume
        updated.fileName = newActive
        updated.format = VolumeFormat.qcow2.rawValue
        updated.baseSnapshotId = row.id
        try await catalog.commit(volumes: [updated], snapshots: [committed])
        allocated[volume.id!] = VolumeFile.status(path: newActivePath)?.allocatedBytes ?? 0
        try? await rescanLayers()
        let elapsed = ContinuousClock.now - started
        logger.info(
            "snapshot created",
            metadata: [
                "snapshot": "\(ref)",
                "milliseconds":
                    "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
            ])
        return try await snapshotInfo(committed, view: try await chainView(), fresh: true)
    }

    static let pendingPrefix = ".pending-"
    static func pendingOverlayName(_ uuid: String) -> String { pendingPrefix + "\(uuid).qcow2" }

    /// Runs `switchFiles` with the volume's LUs (if any serve it) drained and
    /// their backstore flushed and closed (`.first`), or as it is and flushed
    /// and closed after the swap (`.later`: the file `switchFiles` returns
    /// must then be an overlay naming the old file as its backing, which a
    /// qcow2 backstore serves from memory); the file it returns then serves
    /// them. Without a live device it just runs. Layer files opened afresh
    /// here: settled first.
    func swapLive(
        _ volume: VolumeRecord, flushOld: VolumeDevice.OldFlush = .first,
        _ switchFiles: @escaping @Sendable ((any BlockDevice)?) throws(DepotError) -> (String, VolumeFormat)
    ) async throws(DepotError) {
        guard let live = openVolumes.existing(volume.id!) else {
            _ = try await runIO { try switchFiles(nil) }
            return
        }
        let blockSize = Int(volume.blockSize)
        let thin = volume.provisioningKind == .thin
        do {
            // A new chain read from its files: the layers frozen before are written back first.
            if flushOld == .first { try await live.settle() }
            try await live.replace(flush: flushOld) { old in
                let image = old as? QCOW2BlockDevice
                if let image, flushOld == .first { try await image.close() }
                let (path, format) = try await self.runIO { try switchFiles(old) }
                return try self.openVolumes.backstore(
                    path: path, format: format == .qcow2 ? .qcow2 : .raw, blockSize: blockSize, thin: thin,
                    on: flushOld == .later ? image : nil)
            }
        } catch let error as DepotError { throw error } catch {
            throw .internalError("switching the backstore of '\(volume.name)': \(error)")
        }
    }

    // MARK: Rollback

    /// `depot volume rollback POOL/VOL@SNAP`: the volume's content becomes
    /// the snapshot's — a new empty overlay on the snapshot's layer replaces
    /// the active layer (whose changes since are discarded). Newer snapshots
    /// stay (the chain becomes a tree). A mapped volume needs `force`; the
    /// caller then tells each nexus MEDIUM MAY HAVE CHANGED.
    public func rollback(_ ref: SnapshotRef, force: Bool) async throws(DepotError) -> VolumeInfo {
        let (pool, volume, snapshot) = try await changes.run {
            () async throws(DepotError) -> (PoolRecord, VolumeRecord, SnapshotRecord) in
            let (pool, volume, snapshot) = try await requireSnapshot(ref)
            try requireIdle(volume, ref.volume)
            guard snapshot.state == "ready" else { throw .conflict("snapshot '\(ref)' is \(snapshot.state)") }
            let mapped = try await catalog.mappings(volumeId: volume.id!)
            if !mapped.isEmpty, !force {
                throw .conflict(
                    "volume '\(ref.volume)' is mapped as "
                        + mapped.map { "LUN \($0.1) of \($0.0)" }.joined(separator: ", ")
                        + "; a host may hold it open and would see its disk change under it. Unmap it, or roll back with force (each session then gets MEDIUM MAY HAVE CHANGED)"
                )
            }
            busy.insert(volume.id!)
            return (pool, volume, snapshot)
        }
        defer { busy.remove(volume.id!) }
        let temporary = pool.path + "/" + Self.pendingOverlayName(UUID().uuidString.lowercased())
        let oldActive = pool.path + "/" + volume.fileName
        let newActive = VolumeRecord.fileName(for: volume.name, format: .qcow2)
        let newActivePath = pool.path + "/" + newActive
        let size = UInt64(volume.sizeBytes)
        let backing = QCOW2Layout.Backing(name: snapshot.fileName, format: snapshot.format)
        do {
            try await runIO { try VolumeFile.createQCOW2(path: temporary, size: size, backing: backing) }
            try await swapLive(volume) { _ throws(DepotError) in
                try VolumeFile.replace(newActivePath, with: temporary)
                if oldActive != newActivePath { try VolumeFile.remove(path: oldActive) }
                return (newActivePath, .qcow2)
            }
        } catch {
            _ = try? await runIO { try VolumeFile.remove(path: temporary) }
            throw error
        }
        var updated = volume
        updated.fileName = newActive
        updated.format = VolumeFormat.qcow2.rawValue
        updated.baseSnapshotId = snapshot.id
        try await catalog.updateVolume(updated)
        allocated[volume.id!] = VolumeFile.status(path: newActivePath)?.allocatedBytes ?? 0
        logger.info("volume rolled back", metadata: ["volume": "\(ref.volume)", "snapshot": "\(ref.name)"])
        return try await self.volume(ref.volume)
    }

    // MARK: Linked clones

    /// `depot volume clone POOL/VOL@SNAP POOL/NEW`: a new volume (new UUID,
    /// so new SCSI designators) whose active layer is an empty overlay on the
    /// snapshot's layer, in the snapshot's pool. O(1).
    public func linkedClone(_ ref: SnapshotRef, as target: VolumeRef) async throws(DepotError) -> VolumeInfo {
        guard target.pool == ref.volume.pool else {
            throw .unprocessable(
                "a linked clone lives in its snapshot's pool ('\(ref.volume.pool)'), not '\(target.pool)'; use a full clone to copy it to another pool"
            )
        }
        let fileName = VolumeRecord.fileName(for: target.name, format: .qcow2)
        let (pool, snapshot, inserted) = try await changes.run {
            () async throws(DepotError) -> (PoolRecord, SnapshotRecord, VolumeRecord) in
            let (pool, _, snapshot) = try await requireSnapshot(ref)
            guard snapshot.state == "ready" else { throw .conflict("snapshot '\(ref)' is \(snapshot.state)") }
            try ObjectName.validate(target.name, kind: "volume")
            if try await catalog.volume(poolId: pool.id!, name: target.name) != nil {
                throw .conflict("volume '\(target)' already exists")
            }
            let view = try await chainView()
            let depth = view.depth(base: snapshot.id)
            guard depth <= maxChainDepth else {
                throw .unprocessable(
                    "a clone of '\(ref)' would be a chain of \(depth) layers, more than the limit of \(maxChainDepth); flatten or full-clone instead"
                )
            }
            try await figures(for: pool).admit(size: UInt64(snapshot.sizeBytes), provisioning: .thin, pool: pool.name)
            var record = VolumeRecord(
                poolId: pool.id!, name: target.name, uuid: UUID().uuidString.lowercased(), fileName: fileName,
                sizeBytes: snapshot.sizeBytes, provisioning: .thin,
                blockSize: UInt32(view.volumes[snapshot.volumeId]?.blockSize ?? 512), state: .creating,
                createdAt: Timestamp.now(), format: .qcow2)
            record.baseSnapshotId = snapshot.id
            let inserted = try await catalog.insertVolume(record, poolName: pool.name, durable: false)
            busy.insert(inserted.id!)
            return (pool, snapshot, inserted)
        }
        var record = inserted
        defer { busy.remove(record.id!) }
        let path = pool.path + "/" + fileName
        // The clone's LUN opens the snapshot's layer file: its tables must be in it.
        let size = UInt64(snapshot.sizeBytes)
        let backing = QCOW2Layout.Backing(name: snapshot.fileName, format: snapshot.format)
        do {
            try await settleLayers(of: snapshot.volumeId)
            try await runIO { try VolumeFile.createQCOW2(path: path, size: size, backing: backing) }
            record.state = VolumeState.ready.rawValue
            try await catalog.updateVolume(record)
        } catch {
            _ = try? await runIO { try VolumeFile.remove(path: path) }
            try? await catalog.deleteVolume(id: record.id!)
            throw error
        }
        allocated[record.id!] = VolumeFile.status(path: path)?.allocatedBytes ?? 0
        logger.info("linked clone created", metadata: ["snapshot": "\(ref)", "volume": "\(target)"])
        return info(record, pool: pool)
    }
}
