import DepotBackstores
import DepotCatalog
import DepotCore
import DepotImage
import DepotJobs
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// `depot volume import`: a disk image on the daemon's machine becomes a new
/// volume, as a job. The source is told by its content (`DiskImageFormat`),
/// checked whole before anything is written (a qcow2 image and every file of
/// its backing chain opened and validated, the chain inside the directories
/// imports may read), then copied thin: only the data it holds, zero
/// clusters and holes left as holes. Cancelled, failed or cut by a crash
/// (the volume is still `creating`, which reconcile removes), nothing of the
/// new volume is left.
extension StorageManager {
    struct ImportParameters: Codable { var volumeId: Int64, source: String, format: String }

    /// A source checked by `inspectImport`: its real path, its format and
    /// its virtual size (rounded up to whole 512-byte blocks, as QEMU reads
    /// a raw file whose size is not).
    struct ImportSource: Sendable {
        var path: String
        var format: DiskImageFormat
        var size: UInt64
    }

    /// `spool`: a file the import owns (an upload's), removed when the job
    /// ends or the request is refused.
    public func importVolume(_ ref: VolumeRef, _ request: ImportVolumeRequest, spool: String? = nil)
        async throws(DepotError) -> JobStarted
    {
        do {
            return try await startImport(ref, request, spool: spool)
        } catch {
            if let spool { _ = try? await runIO { try VolumeFile.remove(path: spool) } }
            throw error
        }
    }

    /// The options of an import, checked before any byte is read.
    static func checkImportOptions(_ ref: VolumeRef, _ request: ImportVolumeRequest) throws(DepotError) {
        _ = try limit(request.rateMiB)
        try ObjectName.validate(ref.name, kind: "volume")
        _ = try importFormat(request.format)
        if request.provisioning == .eagerZeroed {
            throw .unprocessable("an imported volume is thin or thick; eager-zeroed is not supported for imports")
        }
        if request.as == .qcow2, request.provisioning == .thick {
            throw .unprocessable(
                "a thick qcow2 import is not supported yet: import as raw with provisioning thick, or as a thin qcow2")
        }
    }

    private func startImport(_ ref: VolumeRef, _ request: ImportVolumeRequest, spool: String?)
        async throws(DepotError) -> JobStarted
    {
        try Self.checkImportOptions(ref, request)
        let limit = try Self.limit(request.rateMiB)
        let wanted = try Self.importFormat(request.format)
        let format = request.as ?? .raw
        let provisioning = request.provisioning ?? .thin
        let roots = imageDirectories + (try await catalog.pools()).map(\.path)
        let from = request.from
        let source = try await runIO { () throws -> ImportSource in
            try Self.inspectImport(from, wanted: wanted, roots: roots)
        }
        let (record, pool) = try await changes.run { () async throws(DepotError) -> (VolumeRecord, PoolRecord) in
            let pool = try await requirePool(ref.pool)
            if try await catalog.volume(poolId: pool.id!, name: ref.name) != nil {
                throw .conflict("volume '\(ref)' already exists")
            }
            try await figures(for: pool).admit(size: source.size, provisioning: provisioning, pool: pool.name)
            let record = try await catalog.insertVolume(
                VolumeRecord(
                    poolId: pool.id!, name: ref.name, uuid: UUID().uuidString.lowercased(),
                    fileName: VolumeRecord.fileName(for: ref.name, format: format), sizeBytes: Int64(source.size),
                    provisioning: provisioning, blockSize: 512, state: .creating, createdAt: Timestamp.now(),
                    format: format),
                poolName: pool.name, durable: false)
            busy.insert(record.id!)
            if provisioning.reservesSpace { inflightReservations[pool.id!, default: 0] += source.size }
            return (record, pool)
        }
        do {
            let job = try await jobs.start(
                kind: "import", object: "\(spool == nil ? source.path : "upload") -> \(ref)", bytesTotal: source.size,
                limit: limit,
                parameters: Self.encode(
                    ImportParameters(volumeId: record.id!, source: source.path, format: source.format.rawValue))
            ) { [self] context in
                defer { if let spool { try? VolumeFile.remove(path: spool) } }
                try await runImport(record.id!, source, context)
            }
            logger.info(
                "import started",
                metadata: ["volume": "\(ref)", "source": "\(source.path)", "format": "\(source.format.rawValue)"])
            return JobStarted(job: job, volume: info(record, pool: pool))
        } catch {
            endImport(record, pool: pool)
            try? await catalog.deleteVolume(id: record.id!)
            throw error
        }
    }

    private func endImport(_ record: VolumeRecord, pool: PoolRecord) {
        busy.remove(record.id!)
        if record.provisioningKind.reservesSpace {
            inflightReservations[pool.id!, default: 0] -= UInt64(record.sizeBytes)
        }
    }

    func runImport(_ volumeId: Int64, _ source: ImportSource, _ context: JobContext) async throws {
        let view = try await chainView()
        guard let record = view.volumes[volumeId], let pool = view.pools[record.poolId] else {
            busy.remove(volumeId)
            throw DepotError.notFound("the new volume of this import is gone")
        }
        defer { endImport(record, pool: pool) }
        let destination = pool.path + "/" + record.fileName
        let thick = record.provisioningKind == .thick
        try await fillNewVolume(record, at: destination, context) {
            try await copyImage(source, to: destination, as: record.volumeFormat, thick: thick, context)
        }
        allocated[volumeId] = VolumeFile.status(path: destination, format: record.volumeFormat)?.allocatedBytes ?? 0
        logger.info("volume imported", metadata: ["volume": "\(view.label(record))", "source": "\(source.path)"])
    }

    /// Runs `copy` into a new volume's file, then makes the volume ready; on
    /// any failure or a cancel the file and the row go (nothing half-made).
    func fillNewVolume(
        _ record: VolumeRecord, at destination: String, _ context: JobContext, _ copy: () async throws -> Void
    ) async throws {
        var record = record
        do {
            try await copy()
            try context.checkCancelled()
            record.state = VolumeState.ready.rawValue
            try await catalog.updateVolume(record)
        } catch {
            _ = try? await runIO { try VolumeFile.remove(path: destination) }
            try? await catalog.deleteVolume(id: record.id!)
            throw context.isCancelled ? JobCancelled() : error
        }
    }

    /// Writes the guest data of `source` (a raw file, or a qcow2 image and its
    /// chain) into the new file `destination` in `format`, thin: a raw source
    /// by its data extents (reflinked where the filesystem shares them), a
    /// qcow2 one by its data, all-zero clusters left out; a raw destination
    /// fully allocated when `thick`. On failure the caller removes `destination`.
    func copyImage(
        _ source: ImportSource, to destination: String, as format: VolumeFormat, thick: Bool, _ context: JobContext
    ) async throws {
        let size = source.size
        switch (format, source.format) {
        case (.raw, .raw):
            context.setTotal(try await runIO { try FileCopy.dataBytes(source.path) })
            let method = try await jobs.runBlocking {
                try FileCopy.copy(source.path, to: destination) { bytes in try context.advance(bytes) }
            }
            try await runIO { try Self.finishRaw(destination, size: size, thick: thick) }
            logger.debug("image copied", metadata: ["method": "\(method.rawValue)"])
        case (.raw, _):
            context.setTotal(size)
            try await jobs.runBlocking {
                try VolumeFile.createExclusively(path: destination) { fd throws(DepotError) in
                    guard ftruncate(fd, off_t(size)) == 0 else {
                        throw VolumeFile.posixError("size \(destination)")
                    }
                    do {
                        let chain = try QCOW2BlockDevice(path: source.path, blockSize: 512, readOnly: true)
                        defer { try? chain.closeNow() }
                        try chain.copyData(to: fd) { offset, written in
                            try context.advance(to: offset, moved: UInt64(written))
                        }
                    } catch let error as DepotError { throw error } catch is JobCancelled {
                        throw .conflict("cancelled")
                    } catch {
                        throw .internalError("copying \(source.path): \(error)")
                    }
                }
            }
            try await runIO { try Self.finishRaw(destination, size: size, thick: thick) }
        case (.qcow2, _):
            // An overlay on the source, filled from it (a flatten), then cut loose from it.
            let backing = QCOW2Layout.Backing(name: source.path, format: source.format.rawValue)
            try await runIO { try VolumeFile.createQCOW2(path: destination, size: size, backing: backing) }
            try await pull(into: destination, live: nil, layers: nil, size: size, context)
            try context.checkCancelled()
            try await runIO { try Self.rebase(destination, nil) }
        }
    }

    /// A raw import's file at its volume's size (a source not a multiple of
    /// 512 bytes is padded with zeros), every block allocated when thick,
    /// made durable.
    static func finishRaw(_ path: String, size: UInt64, thick: Bool) throws(DepotError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VolumeFile.posixError("open \(path)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else { throw VolumeFile.posixError("size \(path)") }
        if thick { try VolumeFile.reserve(fd: fd, offset: 0, length: size, path: path) }
        guard fsync(fd) == 0 else { throw VolumeFile.posixError("fsync \(path)") }
    }

    static func importFormat(_ text: String?) throws(DepotError) -> DiskImageFormat? {
        guard let text, text != "auto" else { return nil }
        guard let format = DiskImageFormat(rawValue: text) else {
            throw .invalidArgument("unknown image format '\(text)' (use auto, raw or qcow2)")
        }
        return format
    }

    // MARK: The source, checked before anything is written

    /// The source as a path inside `roots`, its format (by content; `wanted`
    /// must agree), size, and for qcow2 the whole chain opened and validated.
    static func inspectImport(_ from: String, wanted: DiskImageFormat?, roots: [String]) throws(DepotError)
        -> ImportSource
    {
        guard from.hasPrefix("/"), !from.utf8.contains(0), from.utf8.count < Int(PATH_MAX) else {
            throw .unprocessable("'from' must be an absolute path on the daemon's machine, got '\(from.prefix(100))'")
        }
        guard let path = realPath(from) else {
            throw .unprocessable("cannot read \(from): \(String(cString: strerror(errno)))")
        }
        let allowed = roots.compactMap(realPath)
        guard inside(path, allowed) else {
            throw .unprocessable(
                "\(from) is outside the directories images are imported from and exported to (\(allowed.joined(separator: ", "))); "
                    + "move it into one, or start depotd with --image-dir for its directory")
        }
        var st = stat()
        guard stat(path, &st) == 0 else { throw VolumeFile.posixError("stat \(from)") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .unprocessable("\(from) is not a regular file") }
        guard st.st_size > 0 else { throw .unprocessable("\(from) is empty") }
        let file = try ImageFileReader(path)
        let format = file.format
        if let wanted, wanted != format {
            throw .unprocessable("\(from) is a \(format.rawValue) image by its content, not \(wanted.rawValue)")
        }
        switch format {
        case .raw:
            return ImportSource(path: path, format: .raw, size: roundUp(file.size))
        case .qcow2:
            try checkBackingChain(path, roots: allowed)
            let size: UInt64
            do { size = try file.geometry(.qcow2).virtualSize } catch {
                throw .unprocessable("cannot import \(from): \(error)")
            }
            guard size > 0 else { throw .unprocessable("\(from) is a qcow2 image of size 0") }
            guard size <= UInt64(Int64.max) - 511 else {
                throw .unprocessable("\(from) claims a size of \(size) bytes, more than a volume can have")
            }
            do {
                let chain = try QCOW2BlockDevice(path: path, blockSize: 512, readOnly: true)
                try chain.closeNow()
            } catch {
                throw .unprocessable("cannot import \(from): \(error)")
            }
            return ImportSource(path: path, format: .qcow2, size: roundUp(size))
        case .vmdk, .vhdx, .vhd:
            throw .unprocessable(
                "\(from) is a \(format.rawValue) image; importing \(format.rawValue) is not supported yet "
                    + "(convert it first: qemu-img convert -O qcow2)")
        }
    }

    static func roundUp(_ size: UInt64) -> UInt64 { (size + 511) / 512 * 512 }

    /// Every backing file of the qcow2 image at `top`, as the image resolves
    /// it (relative to the directory of the file naming it), must be a
    /// readable file inside `roots`, met once (no loop), at most 64 deep:
    /// an image from elsewhere must not make Depot copy /etc/shadow.
    static func checkBackingChain(_ top: String, roots: [String]) throws(DepotError) {
        var seen: Set<String> = [top]
        var current = top
        for _ in 0..<64 {
            let backing: QCOW2Layout.Backing?
            do { backing = try QCOW2BlockDevice.backing(of: current) } catch {
                throw .unprocessable("cannot import \(top): \(error)")
            }
            guard let backing else { return }
            let directory = URL(fileURLWithPath: current).deletingLastPathComponent().path
            let named = backing.name.hasPrefix("/") ? backing.name : directory + "/" + backing.name
            guard let real = realPath(named) else {
                throw .unprocessable("\(current) names the backing file '\(backing.name)', which cannot be read")
            }
            guard inside(real, roots) else {
                throw .unprocessable(
                    "\(current) names the backing file '\(backing.name)' (\(real)), outside the directories images are imported from and exported to"
                )
            }
            guard seen.insert(real).inserted else {
                throw .unprocessable("the backing chain of \(top) loops: \(real) appears twice")
            }
            let format =
                backing.format.isEmpty
                ? (try? ImageFileReader(real))?.format == .qcow2 ? "qcow2" : "raw" : backing.format
            switch format {
            case "raw": return
            case "qcow2": current = real
            default: throw .unprocessable("\(current) names a backing file of format '\(format)'")
            }
        }
        throw .unprocessable("the backing chain of \(top) is deeper than 64 layers")
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func inside(_ path: String, _ roots: [String]) -> Bool {
        roots.contains { root in path.hasPrefix(root.hasSuffix("/") ? root : root + "/") }
    }
}
