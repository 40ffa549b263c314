import DepotBackstores
import DepotCatalog
import DepotCore
import DepotImage
import DepotJobs
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Snapshot delete (with its merge), full clones and flatten: the chain
/// operations that copy data, run as jobs. Each job's work is idempotent
/// from the state its files are in, so a job a restart cut is run again
/// (merge, flatten) or rolled back (a full clone's half-made volume is
/// removed by reconcile, as every `creating` volume is).
extension StorageManager {
    struct MergeParameters: Codable { var snapshotId: Int64 }
    struct FlattenParameters: Codable { var volumeId: Int64 }
    struct FullCloneParameters: Codable { var snapshotId: Int64, volumeId: Int64 }

    static func encode<T: Encodable>(_ value: T) -> String {
        String(decoding: (try? JSONEncoder().encode(value)) ?? Data(), as: UTF8.self)
    }

    // MARK: Delete

    /// `depot snapshot delete`: a snapshot nothing is built on goes at once;
    /// one that exactly one layer of its own volume is built on is merged
    /// into that layer online, as a job (returned); one linked clones are
    /// built on is refused, naming them, as is one with several layers above.
    public func deleteSnapshot(_ ref: SnapshotRef) async throws(DepotError) -> JobInfo? {
        let (pool, volume, snapshot, dependent, above) = try await changes.run {
            () async throws(DepotError) -> (PoolRecord, VolumeRecord, SnapshotRecord, Bool, VolumeRecord?) in
            let (pool, volume, snapshot) = try await requireSnapshot(ref)
            try requireIdle(volume, ref.volume)
            // A commit cut (cancelled, failed) runs again.
            guard snapshot.state == "ready" || snapshot.state == "committing" else {
                throw .conflict("snapshot '\(ref)' is \(snapshot.state)")
            }
            let view = try await chainView()
            let clones = view.clones(of: snapshot)
            if !clones.isEmpty {
                throw .conflict(
                    "snapshot '\(ref)' is the base of linked clone(s) \(clones.map(view.label).joined(separator: ", ")); flatten or delete them first"
                )
            }
            let (snaps, vols) = view.dependents(of: snapshot.id!)
            if snaps.count + vols.count > 1 {
                throw .conflict(
                    "snapshot '\(ref)' is the base of \(snaps.count + vols.count) layers (\((snaps.map(view.label) + vols.map(view.label)).joined(separator: ", "))); "
                        + "it can be merged into one only: delete the others first")
            }
            busy.insert(volume.id!)
            return (pool, volume, snapshot, snaps.count + vols.count == 1, vols.first)
        }
        guard dependent else {
            defer { busy.remove(volume.id!) }
            try await catalog.deleteSnapshot(id: snapshot.id!)
            let path = pool.path + "/" + snapshot.fileName
            try await runIO { try VolumeFile.remove(path: path) }
            try? await rescanLayers()
            logger.info("snapshot deleted", metadata: ["snapshot": "\(ref)"])
            return nil
        }
        var merging = snapshot
        // Whichever way copies less: the active layer's own data down, or the snapshot's up.
        let down: Bool
        if snapshot.state == "committing" {
            down = true
        } else if let above {
            down = await commitsDown(snapshot, into: above, pool: pool)
        } else {
            down = false
        }
        merging.state = down ? "committing" : "merging"
        do {
            try await catalog.updateSnapshot(merging)
            return try await jobs.start(
                kind: "merge", object: "\(ref)", bytesTotal: UInt64(snapshot.sizeBytes), limit: nil,
                parameters: Self.encode(MergeParameters(snapshotId: snapshot.id!))
            ) { [self] context in try await runMerge(snapshot.id!, context) }
        } catch {
            busy.remove(volume.id!)
            try? await catalog.updateSnapshot(snapshot)
            throw error
        }
    }

    /// Streams snapshot `id`'s own clusters into the one layer above it
    /// where that layer has none, rebases that layer onto the snapshot's
    /// parent, commits, and removes the snapshot's file. Run again after a
    /// restart, it skips what is done: a layer already rebased is not pulled
    /// again. Cancelled, the snapshot stays (ready) and what was copied up
    /// reads as it did. A snapshot `committing` is merged the other way
    /// instead (`runCommitDown`, StorageManager+Commit).
    func runMerge(_ id: Int64, _ context: JobContext) async throws {
        let view = try await chainView()
        guard let snapshot = view.snapshots[id], let pool = view.pools[snapshot.poolId],
            let volume = view.volumes[snapshot.volumeId]
        else { return }
        // A snapshot just taken may still be closing its layer in the background.
        try await openVolumes.existing(volume.id!)?.settle()
        busy.insert(volume.id!)
        defer { busy.remove(volume.id!) }
        let (snaps, vols) = view.dependents(of: id)
        let merged = pool.path + "/" + snapshot.fileName
        if snaps.isEmpty, vols.isEmpty {
            // Cut after the volume's rebase: reconcile already took its base from the file.
            try await catalog.deleteSnapshot(id: id)
            try await runIO { try VolumeFile.remove(path: merged) }
            try? await rescanLayers()
            return
        }
        guard snaps.count + vols.count == 1 else {
            if snapshot.state == "merging" {
                var ready = snapshot
                ready.state = "ready"
                try? await catalog.updateSnapshot(ready)
            }
            throw DepotError.conflict("snapshot \(view.label(snapshot)) no longer has exactly one layer above it")
        }
        if snapshot.state == "committing" {
            guard let above = vols.first else {
                throw DepotError.conflict("snapshot \(view.label(snapshot)) is committing but no volume is on it")
            }
            try await runCommitDown(snapshot, into: above, pool: pool, context)
            return
        }
        let newBase = snapshot.parentId.flatMap { view.snapshots[$0] }
        let backing = newBase.map { QCOW2Layout.Backing(name: $0.fileName, format: $0.format) }
        let above = pool.path + "/" + (snaps.first?.fileName ?? vols[0].fileName)
        let size = UInt64(snapshot.sizeBytes)
        let pending = try await runIO { try QCOW2BlockDevice.backing(of: above)?.name == snapshot.fileName }
        do {
            if pending {
                let live = snaps.isEmpty ? openVolumes.existing(vols[0].id!)?.current as? QCOW2BlockDevice : nil
                try await pull(into: above, live: live, layers: 1, size: size, context)
                if snaps.isEmpty {
                    try await swapLive(vols[0]) { _ throws(DepotError) in
                        try Self.rebase(above, backing)
                        return (above, .qcow2)
                    }
                } else {
                    try await runIO { try Self.rebase(above, backing) }
                }
            }
        } catch {
            var ready = snapshot
            ready.state = "ready"
            try? await catalog.updateSnapshot(ready)
            throw error
        }
        if var layer = snaps.first {
            layer.parentId = snapshot.parentId
            try await catalog.commit(snapshots: [layer], deletingSnapshots: [id])
            // The volume's open chain still holds the merged layer: reopen it.
            try await swapLive(volume) { _ in (pool.path + "/" + volume.fileName, volume.volumeFormat) }
        } else {
            var top = vols[0]
            top.baseSnapshotId = snapshot.parentId
            try await catalog.commit(volumes: [top], deletingSnapshots: [id])
        }
        try await runIO { try VolumeFile.remove(path: merged) }
        try? await rescanLayers()
        _ = try? await self.volume(VolumeRef(pool: pool.name, name: volume.name))
        logger.info("snapshot merged and deleted", metadata: ["snapshot": "\(view.label(snapshot))"])
    }

    /// Pulls data into the qcow2 image at `path` (the live device's image
    /// when a LUN serves it), reporting progress by guest offset.
    func pull(into path: String, live: QCOW2BlockDevice?, layers: Int?, size: UInt64, _ context: JobContext)
        async throws
    {
        context.setTotal(size)
        try await jobs.runBlocking {
            let device = try live ?? QCOW2BlockDevice(path: path, blockSize: 512, readOnly: false)
            defer { if live == nil { try? device.closeNow() } }
            try device.pull(layers: layers) { offset, copied in try context.advance(to: offset, moved: UInt64(copied)) }
            try context.advance(to: size, moved: 0)
        }
    }

    static func rebase(_ path: String, _ backing: QCOW2Layout.Backing?) throws(DepotError) {
        do { try QCOW2BlockDevice.rebase(path: path, backing: backing) } catch {
            throw .internalError("rebasing \(path): \(error)")
        }
    }

    // MARK: Flatten

    /// `depot volume flatten`: copies into the volume's active layer all the
    /// data of the layers below it, then makes it stand alone (no backing
    /// file), as a job.
    public func flatten(_ ref: VolumeRef, rateMiB: Int? = nil) async throws(DepotError) -> JobInfo {
        let limit = try Self.limit(rateMiB)
        let volume = try await changes.run { () async throws(DepotError) -> VolumeRecord in
            let (_, volume) = try await requireVolume(ref)
            try requireIdle(volume, ref)
            guard volume.baseSnapshotId != nil else {
                throw .unprocessable(
                    "'\(ref)' stands alone already (no layer below its active one); nothing to flatten")
            }
            busy.insert(volume.id!)
            return volume
        }
        do {
            return try await jobs.start(
                kind: "flatten", object: "\(ref)", bytesTotal: UInt64(volume.sizeBytes), limit: limit,
                parameters: Self.encode(FlattenParameters(volumeId: volume.id!))
            ) { [self] context in try await runFlatten(volume.id!, context) }
        } catch {
            busy.remove(volume.id!)
            throw error
        }
    }

    /// The most a job may be throttled to: 1 TiB/s, more than any disk here.
    public static let largestRateMiB = 1 << 20

    /// A job's throttle in bytes per second (nil: the daemon's default). The
    /// client's MiB/s is bounded first: `rateMiB << 20` of a huge value lost
    /// its high bits, and the catalog's `Int64(…)` of the rest trapped.
    static func limit(_ rateMiB: Int?) throws(DepotError) -> UInt64? {
        guard let rateMiB, rateMiB != 0 else { return nil }
        guard (1...largestRateMiB).contains(rateMiB) else {
            throw .invalidArgument("rateMiB must be 0 (the default) to \(largestRateMiB) MiB/s, got \(rateMiB)")
        }
        return UInt64(rateMiB) << 20
    }

    func runFlatten(_ id: Int64, _ context: JobContext) async throws {
        busy.insert(id)
        defer { busy.remove(id) }
        let view = try await chainView()
        guard let volume = view.volumes[id], let pool = view.pools[volume.poolId] else { return }
        let path = pool.path + "/" + volume.fileName
        let backed = try await runIO { try QCOW2BlockDevice.backing(of: path) != nil }
        if backed {
            let live = openVolumes.existing(id)?.current as? QCOW2BlockDevice
            try await pull(into: path, live: live, layers: nil, size: UInt64(volume.sizeBytes), context)
            try context.checkCancelled()
            try await swapLive(volume) { _ throws(DepotError) in
                try Self.rebase(path, nil)
                return (path, .qcow2)
            }
        }
        var alone = volume
        alone.baseSnapshotId = nil
        try await catalog.updateVolume(alone)
        _ = try? await self.volume(VolumeRef(pool: pool.name, name: volume.name))
        logger.info("volume flattened", metadata: ["volume": "\(view.label(volume))"])
    }

    // MARK: Full clones

    /// `depot volume clone --full`: an independent copy of the snapshot's
    /// content as a new volume in any pool, as a job. A snapshot that is a
    /// single layer is copied as its file (same format): shared extents
    /// where the filesystem has reflinks, else only its data extents. A
    /// layer with layers below is copied as the data the chain reads, into a
    /// sparse raw file. Cancelled or failed, the new volume is removed.
    public func fullClone(_ ref: SnapshotRef, as target: VolumeRef, rateMiB: Int? = nil) async throws(DepotError)
        -> JobStarted
    {
        let limit = try Self.limit(rateMiB)
        let (snapshot, record, targetPool) = try await changes.run {
            () async throws(DepotError) -> (SnapshotRecord, VolumeRecord, PoolRecord) in
            let (_, source, snapshot) = try await requireSnapshot(ref)
            guard snapshot.state == "ready" || snapshot.state == "merging" else {
                throw .conflict("snapshot '\(ref)' is \(snapshot.state)")
            }
            let targetPool = try await requirePool(target.pool)
            try ObjectName.validate(target.name, kind: "volume")
            if try await catalog.volume(poolId: targetPool.id!, name: target.name) != nil {
                throw .conflict("volume '\(target)' already exists")
            }
            try await figures(for: targetPool).admit(
                size: UInt64(snapshot.sizeBytes), provisioning: .thin, pool: targetPool.name)
            let format: VolumeFormat = snapshot.parentId == nil ? snapshot.layerFormat : .raw
            let record = try await catalog.insertVolume(
                VolumeRecord(
                    poolId: targetPool.id!, name: target.name, uuid: UUID().uuidString.lowercased(),
                    fileName: VolumeRecord.fileName(for: target.name, format: format), sizeBytes: snapshot.sizeBytes,
                    provisioning: .thin, blockSize: UInt32(source.blockSize), state: .creating,
                    createdAt: Timestamp.now(), format: format),
                poolName: targetPool.name, durable: false)
            busy.insert(record.id!)
            return (snapshot, record, targetPool)
        }
        do {
            let job = try await jobs.start(
                kind: "full-clone", object: "\(ref) -> \(target)", bytesTotal: UInt64(snapshot.sizeBytes),
                limit: limit,
                parameters: Self.encode(FullCloneParameters(snapshotId: snapshot.id!, volumeId: record.id!))
            ) { [self] context in try await runFullClone(snapshot.id!, record.id!, context) }
            return JobStarted(job: job, volume: info(record, pool: targetPool))
        } catch {
            busy.remove(record.id!)
            try? await catalog.deleteVolume(id: record.id!)
            throw error
        }
    }

    func runFullClone(_ snapshotId: Int64, _ volumeId: Int64, _ context: JobContext) async throws {
        defer { busy.remove(volumeId) }
        let view = try await chainView()
        guard let snapshot = view.snapshots[snapshotId], let sourcePool = view.pools[snapshot.poolId],
            let record = view.volumes[volumeId], let pool = view.pools[record.poolId]
        else { throw DepotError.notFound("the snapshot or the new volume of this clone is gone") }
        try await settleLayers(of: snapshot.volumeId)
        let source = sourcePool.path + "/" + snapshot.fileName
        let destination = pool.path + "/" + record.fileName
        let size = UInt64(snapshot.sizeBytes)
        try await fillNewVolume(record, at: destination, context) {
            if snapshot.parentId == nil {
                let data = try await runIO { try FileCopy.dataBytes(source) }
                context.setTotal(data)
                let method = try await jobs.runBlocking {
                    try FileCopy.copy(source, to: destination) { bytes in try context.advance(bytes) }
                }
                logger.info("full clone copied", metadata: ["method": "\(method.rawValue)", "bytes": "\(data)"])
            } else {
                // The data the chain reads, into a sparse raw file.
                let chain = ImportSource(path: source, format: .qcow2, size: size)
                try await copyImage(chain, to: destination, as: .raw, thick: false, context)
            }
        }
        allocated[volumeId] = VolumeFile.status(path: destination)?.allocatedBytes ?? 0
        logger.info(
            "full clone made", metadata: ["snapshot": "\(view.label(snapshot))", "volume": "\(view.label(record))"])
    }

    // MARK: After a restart

    /// Jobs a crash or stop cut: merges and flattens run again from the state
    /// their files are in; full clones and imports were rolled back by
    /// reconcile (their volume was still `creating`) and end as failed, saying so.
    public func resumeJobs() async {
        guard let interrupted = try? await jobs.interrupted() else { return }
        var merging = Set<Int64>()
        for record in interrupted {
            let data = Data(record.parameters.utf8)
            if record.kind == "merge", let p = try? JSONDecoder().decode(MergeParameters.self, from: data) {
                merging.insert(p.snapshotId)
                await jobs.resume(record) { [self] context in try await runMerge(p.snapshotId, context) }
            } else if record.kind == "flatten", let p = try? JSONDecoder().decode(FlattenParameters.self, from: data) {
                await jobs.resume(record) { [self] context in try await runFlatten(p.volumeId, context) }
            } else if record.kind == "export", let p = try? JSONDecoder().decode(ExportParameters.self, from: data) {
                await abandonExport(p)
                await jobs.abandon(
                    record,
                    reason: "interrupted by a restart; the partial file was removed (start the export again)")
            } else {
                await jobs.abandon(
                    record,
                    reason: record.kind == "import"
                        ? "interrupted by a restart; the half-made volume was removed (start the import again)"
                        : "interrupted by a restart; the half-made copy was removed (start the clone again)")
            }
        }
        // A snapshot marked merging whose job never got its row (a crash between the two) is ready again.
        for snapshot in (try? await catalog.snapshots()) ?? [] where snapshot.state == "merging" {
            guard !merging.contains(snapshot.id!) else { continue }
            var ready = snapshot
            ready.state = "ready"
            try? await catalog.updateSnapshot(ready)
            logger.notice("a merge that never started is undone", metadata: ["snapshot": "\(snapshot.name)"])
        }
    }
}
