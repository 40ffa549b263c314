import DepotBackstores
import DepotCatalog
import DepotCore
import DepotJobs
import Foundation
import NIOCore
import NIOPosix
import DepotImage
#if canImport(Glibc)
    import Glibc
#endif

/// `depot volume export`: a snapshot's content, or the volume's as it is now
/// (through an implicit snapshot, deleted afterwards — merged back, which
/// for a volume nobody wrote meanwhile copies nothing), written as a raw or
/// qcow2 image file into an image directory as a job, or streamed raw in a
/// GET's answer. The source volume is busy meanwhile (no rollback, resize or
/// snapshot delete under the copy); its LUNs stay online.
extension StorageManager {
    /// What an export reads: the layer (and chain) of a snapshot, and the
    /// implicit snapshot to delete when done (nil: the operator's own).
    public struct ExportSource: Sendable {
        var image: ImportSource
        var volumeId: Int64
        var implicit: SnapshotRef?
        var label: String
    }

    struct ExportParameters: Codable {
        var to: String
        /// `POOL/VOL@SNAP` of the implicit snapshot, to delete if a restart cuts the job.
        var implicit: String?
    }

    /// An export a restart cut: its partial file removed, its implicit snapshot deleted.
    func abandonExport(_ parameters: ExportParameters) async {
        _ = try? await runIO { try VolumeFile.remove(path: parameters.to) }
        if let text = parameters.implicit, let ref = try? SnapshotRef(parsing: text) {
            _ = try? await deleteSnapshot(ref)
        }
    }

    public func exportImage(_ ref: VolumeRef, _ request: ImageExportRequest) async throws(DepotError) -> JobInfo {
        let limit = try Self.limit(request.rateMiB)
        let format = request.format ?? .raw
        let destination = try await runIO { [imageDirectories] in
            try Self.checkExportDestination(request.to, roots: imageDirectories)
        }
        let source = try await exportSource(ref, snapshot: request.snapshot)
        do {
            return try await jobs.start(
                kind: "export", object: "\(source.label) -> \(destination)", bytesTotal: source.image.size,
                limit: limit,
                parameters: Self.encode(ExportParameters(to: destination, implicit: source.implicit?.description))
            ) { [self] context in
                do {
                    try await copyImage(source.image, to: destination, as: format, thick: false, context)
                    try context.checkCancelled()
                } catch {
                    _ = try? await runIO { try VolumeFile.remove(path: destination) }
                    await endExport(source)
                    throw context.isCancelled ? JobCancelled() : error
                }
                await endExport(source)
                logger.info("volume exported", metadata: ["source": "\(source.label)", "to": "\(destination)"])
            }
        } catch {
            await endExport(source)
            throw error
        }
    }

    /// The snapshot an export reads, its layer settled (written back), the
    /// volume marked busy; `endExport` undoes both.
    public func exportSource(_ ref: VolumeRef, snapshot: String?) async throws(DepotError) -> ExportSource {
        var implicit: SnapshotRef?
        let snapshotRef: SnapshotRef
        if let snapshot {
            try ObjectName.validate(snapshot, kind: "snapshot")
            snapshotRef = SnapshotRef(volume: ref, name: snapshot)
        } else {
            _ = try await requireVolume(ref)
            snapshotRef = SnapshotRef(volume: ref, name: "export-" + UUID().uuidString.prefix(8).lowercased())
            _ = try await createSnapshot(snapshotRef, allowOvercommit: true)
            implicit = snapshotRef
        }
        let pool: PoolRecord
        let volume: VolumeRecord
        let layer: SnapshotRecord
        do {
            (pool, volume, layer) = try await changes.run {
                () async throws(DepotError) -> (PoolRecord, VolumeRecord, SnapshotRecord) in
                let (pool, volume, snapshot) = try await requireSnapshot(snapshotRef)
                try requireIdle(volume, ref)
                guard snapshot.state == "ready" else {
                    throw .conflict("snapshot '\(snapshotRef)' is \(snapshot.state)")
                }
                busy.insert(volume.id!)
                return (pool, volume, snapshot)
            }
        } catch {
            if let implicit { _ = try? await deleteSnapshot(implicit) }
            throw error
        }
        let source = ExportSource(
            image: ImportSource(
                path: pool.path + "/" + layer.fileName,
                format: layer.layerFormat == .raw ? DiskImageFormat.raw : DiskImageFormat.qcow2,
                size: UInt64(layer.sizeBytes)),
            volumeId: volume.id!, implicit: implicit, label: implicit == nil ? "\(snapshotRef)" : "\(ref)")
        do { try await settleLayers(of: volume.id!) } catch {
            await endExport(source)
            throw error
        }
        return source
    }

    /// The volume free again, and an implicit snapshot deleted (merged).
    public func endExport(_ source: ExportSource) async {
        busy.remove(source.volumeId)
        if let implicit = source.implicit {
            do { _ = try await deleteSnapshot(implicit) } catch {
                logger.warning(
                    "the implicit snapshot of an export could not be deleted",
                    metadata: ["snapshot": "\(implicit)", "error": "\(error)"])
            }
        }
    }

    /// A reader of an export's content: its layer opened read-only.
    public nonisolated func exportReader(_ source: ExportSource) throws -> any ExportReader {
        switch source.image.format {
        case .qcow2:
            return QCOW2ExportReader(
                device: try QCOW2BlockDevice(path: source.image.path, blockSize: 512, readOnly: true))
        default:
            return try RawExportReader(path: source.image.path)
        }
    }

    public nonisolated func exportSize(_ source: ExportSource) -> UInt64 { source.image.size }

    /// The new file an export writes: an absolute path in an image
    /// directory (its directory resolved, symlinks and all), not there yet.
    static func checkExportDestination(_ to: String, roots: [String]) throws(DepotError) -> String {
        guard to.hasPrefix("/"), !to.utf8.contains(0), to.utf8.count < Int(PATH_MAX) else {
            throw .unprocessable("'to' must be an absolute path on the daemon's machine, got '\(to.prefix(100))'")
        }
        let url = URL(fileURLWithPath: to)
        let name = url.lastPathComponent
        guard !name.isEmpty, name != ".", name != "..", !to.hasSuffix("/") else {
            throw .unprocessable("'to' must name a file, got '\(to.prefix(100))'")
        }
        guard let directory = realPath(url.deletingLastPathComponent().path) else {
            throw .unprocessable("cannot use the directory of \(to): \(String(cString: strerror(errno)))")
        }
        let allowed = roots.compactMap(realPath)
        guard allowed.contains(directory) || inside(directory, allowed) else {
            throw .unprocessable(
                "\(to) is outside the directories images are imported from and exported to (\(allowed.joined(separator: ", "))); "
                    + "start depotd with --image-dir for its directory")
        }
        let path = directory + "/" + name
        var st = stat()
        if lstat(path, &st) == 0 { throw .conflict("\(path) exists; an export writes a new file") }
        return path
    }
}

/// Reads an export's content by guest offset.
public protocol ExportReader: Sendable {
    func read(offset: UInt64, count: Int) async throws -> ByteBuffer
    func close()
}

struct QCOW2ExportReader: ExportReader {
    let device: QCOW2BlockDevice
    func read(offset: UInt64, count: Int) async throws -> ByteBuffer {
        try await device.readBuffer(offset: offset, length: count)
    }
    func close() { try? device.closeNow() }
}

/// A raw layer's bytes, zeros past its end (a layer smaller than the
/// volume reads zeros there), read on the I/O threads.
struct RawExportReader: ExportReader {
    let file: ImageFileReader

    init(path: String) throws { file = try ImageFileReader(path) }

    func read(offset: UInt64, count: Int) async throws -> ByteBuffer {
        let file = self.file
        return try await NIOThreadPool.singleton.runIfActive {
            var buffer = ByteBuffer(repeating: 0, count: count)
            guard offset < file.size else { return buffer }
            guard let bytes = file.read(offset, Int(min(UInt64(count), file.size - offset))) else {
                throw VolumeFile.posixError("read the exported layer")
            }
            buffer.setBytes(bytes, at: 0)
            return buffer
        }
    }

    /// The file closes with its last reference.
    func close() {}
}
