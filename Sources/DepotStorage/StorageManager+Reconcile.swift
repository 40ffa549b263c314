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
                    try await catalog.deleteVolume(id: volume.id!)
                    report.finishedDeletes.append(label)
                    continue
                case .ready, .missing:
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
                    let actual = VolumeFile.status(path: path2)?.sizeBytes
                    if actual != UInt64(volume.sizeBytes), actual != nil {
                        // The file moved (or started to): finish what was asked.
                        let from = actual!
                        let kind = volume.provisioningKind
                        try await runIO {
                            try VolumeFile.resize(
                                path: path2, from: min(from, UInt64(pending)), to: UInt64(pending), provisioning: kind)
                        }
                        volume.sizeBytes = pending
                        report.repairedIntents.append("\(pool.name)/\(volume.name): resize to \(pending) finished")
                    } else {
                        report.repairedIntents.append("\(pool.name)/\(volume.name): resize to \(pending) rolled back")
                    }
                    volume.pendingSizeBytes = nil
                    try await catalog.updateVolume(volume)
                }
                known.insert(volume.fileName)
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
                report.unknownFiles.append(pool.path + "/" + entry)
            }
        }
        lastReconcile = report
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
}
