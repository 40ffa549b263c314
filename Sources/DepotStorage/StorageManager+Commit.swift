import DepotBackstores
import DepotCatalog
import DepotCore
import DepotJobs
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A snapshot's merge into the volume's active layer, committing down (as
/// QEMU's block-commit): when the active layer holds less of its own than
/// the snapshot would have to stream up, its clusters are written into the
/// snapshot's file instead — under guest writes, noted and copied again,
/// the last ones with the I/O drained — and that file becomes the volume's.
///
/// Crash safety: until the switch the active layer is the truth for every
/// cluster it holds, and the snapshot's file changes only there (shadowed),
/// so the volume reads the same whatever a crash cut; a restart copies
/// again. The switch links the snapshot's file under the volume's name
/// (over the active file, for a qcow2 snapshot); then the catalog; then
/// the old names go. A restart that finds the volume's file is the
/// snapshot's only commits. The snapshot is `committing` from the start and
/// never `ready` again: a cancelled or failed commit leaves it so, and
/// `snapshot delete` runs it again.
extension StorageManager {
    /// Whether merging `snapshot` into the active layer of `volume` copies
    /// less down than up.
    func commitsDown(_ snapshot: SnapshotRecord, into volume: VolumeRecord, pool: PoolRecord) async -> Bool {
        guard volume.volumeFormat == .qcow2, volume.baseSnapshotId == snapshot.id,
            snapshot.sizeBytes == volume.sizeBytes
        else { return false }
        let top = pool.path + "/" + volume.fileName
        let live = openVolumes.existing(volume.id!)?.current as? QCOW2BlockDevice
        let figures = try? await runIO { () throws -> (own: UInt64, up: UInt64) in
            let device = try live ?? QCOW2BlockDevice(path: top, blockSize: 512, readOnly: true)
            return (try device.ownBytes(), try device.mergeFigures().unshadowed)
        }
        guard let figures else { return false }
        return figures.own < figures.up
    }

    func runCommitDown(
        _ snapshot: SnapshotRecord, into volume: VolumeRecord, pool: PoolRecord, _ context: JobContext
    ) async throws {
        let layer = pool.path + "/" + snapshot.fileName
        let top = pool.path + "/" + volume.fileName
        let format = VolumeFormat(rawValue: snapshot.format) ?? .raw
        let activeName = VolumeRecord.fileName(for: volume.name, format: format)
        let active = pool.path + "/" + activeName
        let linked = pool.path + "/.commit-\(snapshot.uuid)"
        let switched = try await runIO { Self.sameFile(top, layer) }
        if !switched {
            context.setTotal(UInt64(volume.sizeBytes))
            let live = openVolumes.existing(volume.id!)?.current as? QCOW2BlockDevice
            let (device, target) = try await runIO { () throws -> (QCOW2BlockDevice, CommitTarget) in
                let device = try live ?? QCOW2BlockDevice(path: top, blockSize: 512, readOnly: true)
                return (device, try CommitTarget(path: layer, format: snapshot.format))
            }
            do {
                try await jobs.runBlocking {
                    try device.commit(into: target) { offset, copied in
                        try context.advance(to: offset, moved: UInt64(copied))
                    }
                    // Catch up with the writes made meanwhile while they go on.
                    for _ in 0..<8 {
                        guard try device.commitWritten(into: target, last: false) > 64 else { break }
                    }
                }
                try context.checkCancelled()
            } catch {
                device.stopTracking()
                _ = try? await runIO { try target.close() }
                throw error
            }
            // The last pass with the I/O drained, then the snapshot's file under the volume's name.
            let install: @Sendable () throws(DepotError) -> Void = { () throws(DepotError) in
                do {
                    try device.commitWritten(into: target, last: true)
                    try target.close()
                } catch { throw .internalError("committing into \(layer): \(error)") }
                unlink(linked)
                guard link(layer, linked) == 0 else { throw VolumeFile.posixError("link \(layer) to \(linked)") }
                try VolumeFile.replace(active, with: linked)
            }
            if live != nil {
                try await swapLive(volume) { _ throws(DepotError) in
                    try install()
                    return (active, format)
                }
            } else {
                try await runIO { try install() }
            }
        }
        var committed = volume
        committed.fileName = activeName
        committed.format = format.rawValue
        committed.baseSnapshotId = snapshot.parentId
        try await catalog.commit(volumes: [committed], deletingSnapshots: [snapshot.id!])
        try await runIO {
            try VolumeFile.remove(path: layer)
            if top != active { try VolumeFile.remove(path: top) }
        }
        allocated[volume.id!] = VolumeFile.status(path: active)?.allocatedBytes ?? 0
        try? await rescanLayers()
        logger.info(
            "snapshot committed into its volume and deleted",
            metadata: ["snapshot": "\(snapshot.name)", "volume": "\(volume.name)"])
    }

    /// Whether two paths name one file (one inode).
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var x = stat()
        var y = stat()
        return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino
    }
}
