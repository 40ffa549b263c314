import DepotBackstores
import DepotCatalog
import DepotCore
import Foundation

extension StorageManager {
    /// First start: the `default` pool at `DATA/pools/default`.
    public func ensureDefaultPool() async throws(DepotError) {
        if try await catalog.pool(named: "default") == nil,
            try await catalog.setting("defaultPoolCreated") == nil
        {
            _ = try await createPool(CreatePoolRequest(name: "default"))
            try await catalog.setSetting("defaultPoolCreated", Timestamp.now())
        }
    }

    /// Brings catalog and files back in step after a stop or a crash.
    ///
    /// Rows carry their intent (`creating`, `deleting`, `pendingSizeBytes`,
    /// `pendingName`), so each interrupted change is finished or rolled back.
    /// A ready volume whose file is gone is marked `missing`; files nobody
    /// knows are reported and left alone.
    @discardableResult
    public func reconcile() async throws(DepotError) -> ReconcileReport {
        try await changes.run { () async throws(DepotError) -> ReconcileReport in try await reconcileNow() }
    }

    private func reconcileNow() async throws(DepotError) -> ReconcileReport {
        var report = ReconcileReport()
        let pools = try await catalog.pools()
        for pool in pools {
            if !FileManager.default.fileExists(atPath: pool.path) {
                report.missingPoolDirectories.append(pool.name)
            }
            var known = Set<String>()
            try await reconcileSnapshots(pool, &report)
            for snapshot in try await catalog.snapshots(poolId: pool.id!) { known.insert(snapshot.fileName) }
            for var volume in try await catalog.volumes(poolId: pool.id!) {
                let label = "\(pool.name)/\(volume.name)"
                let path = pool.path + "/" + volume.fileName
                switch volume.volumeState {
                case .creating:
                    try await runIO { try VolumeFile.remove(path: path) }
                    try await catalog.deleteVolume(id: volume.id!)
                    report.rolledBackCreates.append(label)
                    continue
                case .deleting:
                    try await runIO { try VolumeFile.remove(path: path) }
                    try await removeSnapshots(of: volume, pool: pool)
                    try await catalog.deleteVolume(id: volume.id!)
                    report.finishedDeletes.append(label)
                    continue
                case .ready, .missing, .error:
                    break
                }
                if let newName = volume.pendingName {
                    let newFile = VolumeRecord.fileName(for: newName, format: volume.volumeFormat)
                    let newPath = pool.path + "/" + newFile
                    if VolumeFile.status(path: path) == nil, VolumeFile.status(path: newPath) != nil {
                        volume.name = newName
                        volume.fileName = newFile
                        report.repairedIntents.append("\(label): rename to \(newName) finished")
                    } else {
                        report.repairedIntents.append("\(label): rename to \(newName) rolled back")
                    }
                    volume.pendingName = nil
                    try await catalog.updateVolume(volume)
                }
                let path2 = pool.path + "/" + volume.fileName
                if let pending = volume.pendingSizeBytes {
                    let finished: Bool
                    if volume.volumeFormat == .qcow2 {
                        // A qcow2 grow commits with its header write: done, or never happened.
                        finished = VolumeFile.status(path: path2, format: .qcow2)?.sizeBytes == UInt64(pending)
                    } else if let actual = VolumeFile.status(path: path2)?.sizeBytes, actual != UInt64(volume.sizeBytes)
                    {
                        // The file moved (or started to): finish what was asked.
                        let kind = volume.provisioningKind
                        try await runIO {
                            try VolumeFile.resize(
                                path: path2, from: min(actual, UInt64(pending)), to: UInt64(pending), provisioning: kind
                            )
                        }
                        finished = true
                    } else {
                        finished = false
                    }
                    if finished { volume.sizeBytes = pending }
                    report.repairedIntents.append(
                        "\(pool.name)/\(volume.name): resize to \(pending) \(finished ? "finished" : "rolled back")")
                    volume.pendingSizeBytes = nil
                    try await catalog.updateVolume(volume)
                }
                known.insert(volume.fileName)
                try await reconcileBase(&volume, pool: pool, &report)
                if let status = VolumeFile.status(path: path2, format: volume.volumeFormat) {
                    allocated[volume.id!] = status.allocatedBytes
                    if volume.volumeState == .missing {
                        volume.state = VolumeState.ready.rawValue
                        try await catalog.updateVolume(volume)
                        logger.notice("volume file is back", metadata: ["volume": "\(pool.name)/\(volume.name)"])
                    }
                    if status.sizeBytes != UInt64(volume.sizeBytes) {
                        report.sizeMismatches.append(
                            "\(pool.name)/\(volume.name): catalog \(ByteSize.describe(UInt64(volume.sizeBytes))), file \(ByteSize.describe(status.sizeBytes))"
                        )
                    }
                } else {
                    allocated[volume.id!] = nil
                    if volume.volumeState != .missing {
                        volume.state = VolumeState.missing.rawValue
                        try await catalog.updateVolume(volume)
                    }
                    report.missingVolumes.append("\(pool.name)/\(volume.name)")
                }
            }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: pool.path)) ?? []
            for entry in entries.sorted() where !known.contains(entry) {
                let path = pool.path + "/" + entry
                if entry.hasPrefix(Self.uploadPrefix) {
                    try await runIO { try VolumeFile.remove(path: path) }
                    report.repairedIntents.append("\(path): the spool of an interrupted upload removed")
                    continue
                }
                report.unknownFiles.append(path)
            }
        }
        lastReconcile = report
        try await rescanLayers()
        lastRescan = .now  // every file was just read
        if report.isClean {
            logger.info("reconcile: catalog and files agree", metadata: ["pools": "\(pools.count)"])
        } else {
            logger.warning(
                "reconcile found drift",
                metadata: [
                    "missingVolumes": "\(report.missingVolumes)", "unknownFiles": "\(report.unknownFiles)",
                    "rolledBackCreates": "\(report.rolledBackCreates)", "finishedDeletes": "\(report.finishedDeletes)",
                    "repairedIntents": "\(report.repairedIntents)", "sizeMismatches": "\(report.sizeMismatches)",
                    "missingPoolDirectories": "\(report.missingPoolDirectories)",
                ])
        }
        return report
    }

    /// Snapshots a crash cut: a `creating` one whose layer file exists had
    /// its active file moved, so the switch is finished (the overlay put in
    /// place if it was not yet, the catalog committed); one without is rolled
    /// back (its overlay removed, its row deleted). Leftover overlays of a
    /// rollback cut before its rename are removed.
    private func reconcileSnapshots(_ pool: PoolRecord, _ report: inout ReconcileReport) async throws(DepotError) {
        let volumes = Dictionary(uniqueKeysWithValues: try await catalog.volumes(poolId: pool.id!).map { ($0.id!, $0) })
        var pendingKept = Set<String>()
        for snapshot in try await catalog.snapshots(poolId: pool.id!) where snapshot.state == "creating" {
            guard var volume = volumes[snapshot.volumeId] else { continue }
            let label = "\(pool.name)/\(volume.name)@\(snapshot.name)"
            let layer = pool.path + "/" + snapshot.fileName
            let temporary = pool.path + "/" + Self.pendingOverlayName(snapshot.uuid)
            if VolumeFile.status(path: layer) != nil {
                let newActive = VolumeRecord.fileName(for: volume.name, format: .qcow2)
                if VolumeFile.status(path: temporary) != nil {
                    try await runIO { try VolumeFile.replace(pool.path + "/" + newActive, with: temporary) }
                }
                var ready = snapshot
                ready.state = "ready"
                volume.fileName = newActive
                volume.format = VolumeFormat.qcow2.rawValue
                volume.baseSnapshotId = snapshot.id
                try await catalog.commit(volumes: [volume], snapshots: [ready])
                report.repairedIntents.append("\(label): snapshot finished")
            } else {
                try await runIO { try VolumeFile.remove(path: temporary) }
                try await catalog.deleteSnapshot(id: snapshot.id!)
                report.rolledBackCreates.append(label)
            }
            pendingKept.insert(Self.pendingOverlayName(snapshot.uuid))
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: pool.path)) ?? []
        for entry in entries where entry.hasPrefix(Self.pendingPrefix) && !pendingKept.contains(entry) {
            let path = pool.path + "/" + entry
            try await runIO { try VolumeFile.remove(path: path) }
            report.repairedIntents.append("\(path): unused overlay of an interrupted rollback removed")
        }
    }

    /// The active file is the truth for which layer a qcow2 volume is built
    /// on (a rollback cut between its rename and its commit leaves the
    /// catalog behind): the catalog follows the file's backing name.
    private func reconcileBase(_ volume: inout VolumeRecord, pool: PoolRecord, _ report: inout ReconcileReport)
        async throws(DepotError)
    {
        guard volume.volumeFormat == .qcow2 else { return }
        let path = pool.path + "/" + volume.fileName
        let named: String?
        do { named = try await runIO { try QCOW2BlockDevice.backing(of: path)?.name } } catch { return }
        let layers = try await catalog.snapshots(poolId: pool.id!)
        let base = named.flatMap { name in layers.first { $0.fileName == name }?.id }
        if named != nil, base == nil {
            report.repairedIntents.append(
                "\(pool.name)/\(volume.name): its file names backing file '\(named!)', which no snapshot is (left as it is)"
            )
            return
        }
        if base != volume.baseSnapshotId {
            volume.baseSnapshotId = base
            try await catalog.updateVolume(volume)
            report.repairedIntents.append("\(pool.name)/\(volume.name): base layer taken from its file")
        }
    }

    /// Deletes a volume's own snapshots, files and rows, layers above first.
    func removeSnapshots(of volume: VolumeRecord, pool: PoolRecord) async throws(DepotError) {
        var own = try await catalog.snapshots(volumeId: volume.id!)
        guard !own.isEmpty else { return }
        var detached = volume
        detached.baseSnapshotId = nil
        try await catalog.updateVolume(detached)
        var order: [SnapshotRecord] = []
        while !own.isEmpty {
            let parents = Set(own.compactMap(\.parentId))
            let leaves = own.filter { !parents.contains($0.id!) }
            guard !leaves.isEmpty else { break }
            order += leaves
            own.removeAll { s in leaves.contains { $0.id == s.id } }
        }
        try await catalog.commit(deletingSnapshots: order.map { $0.id! })
        for s in order {
            let path = pool.path + "/" + s.fileName
            try await runIO { try VolumeFile.remove(path: path) }
            layerAllocated[s.id!] = nil
        }
    }
}
