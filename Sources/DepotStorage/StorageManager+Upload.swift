import DepotCore
import Foundation
import NIOCore
#if canImport(Glibc)
    import Glibc
#endif

/// `PUT …/volumes/{name}/content` and `depot volume import --from -`: an
/// image streamed in the request body is spooled into the target pool's
/// directory (`.upload-UUID`, sparse: all-zero 64 KiB blocks are not
/// written), never held whole in memory, then imported from there like a
/// file (`importVolume`), the spool removed when the job ends. A spool a
/// crash left is removed by reconcile at the next start.
extension StorageManager {
    static let uploadPrefix = ".upload-"
    static let spoolBlock = 64 << 10

    public func importUpload<Body: AsyncSequence & Sendable>(
        _ ref: VolumeRef, _ request: ImportVolumeRequest, body: Body
    ) async throws(DepotError) -> JobStarted where Body.Element == ByteBuffer {
        // Everything that can be refused without the image, before a byte is read.
        try Self.checkImportOptions(ref, request)
        let pool = try await requirePool(ref.pool)
        if try await catalog.volume(poolId: pool.id!, name: ref.name) != nil {
            throw .conflict("volume '\(ref)' already exists")
        }
        // What the spool may take: the pool's free space less its reserve, so an
        // endless upload cannot fill the filesystem under the other volumes.
        let figures = try await figures(for: pool)
        let room = figures.freeBytes > figures.reservedBytes ? figures.freeBytes - figures.reservedBytes : 0
        let spool = pool.path + "/" + Self.uploadPrefix + UUID().uuidString.lowercased()
        let fd = open(spool, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VolumeFile.posixError("create \(spool)") }
        var closed = false
        do {
            var pending = ByteBuffer()
            var offset: UInt64 = 0
            do {
                for try await chunk in body {
                    var chunk = chunk
                    pending.writeBuffer(&chunk)
                    if offset + UInt64(pending.readableBytes) > UInt64(Int64.max) {
                        throw DepotError.invalidArgument("the upload is larger than a volume can be")
                    }
                    if pending.readableBytes >= 1 << 20 {
                        let batch = pending
                        pending = ByteBuffer()
                        let at = offset
                        offset += UInt64(batch.readableBytes)
                        try await runIO { try Self.spoolWrite(fd, batch, at: at, path: spool) }
                        try Self.checkRoom(fd, room: room, pool: pool.name)
                    }
                }
            } catch let error as DepotError {
                throw error
            } catch {
                throw DepotError.invalidArgument("the upload was cut: \(error)")
            }
            let batch = pending
            let at = offset
            offset += UInt64(batch.readableBytes)
            let total = offset
            try await runIO {
                try Self.spoolWrite(fd, batch, at: at, path: spool)
                guard ftruncate(fd, off_t(total)) == 0 else { throw VolumeFile.posixError("size \(spool)") }
            }
            try Self.checkRoom(fd, room: room, pool: pool.name)
            close(fd)
            closed = true
            guard total > 0 else { throw DepotError.unprocessable("the upload is empty") }
        } catch {
            if !closed { close(fd) }
            _ = try? await runIO { try VolumeFile.remove(path: spool) }
            throw error as? DepotError ?? .internalError("spooling the upload: \(error)")
        }
        var request = request
        request.from = spool
        return try await importVolume(ref, request, spool: spool)
    }

    /// The spool's blocks within `room`, else 409 insufficient_space.
    static func checkRoom(_ fd: Int32, room: UInt64, pool: String) throws(DepotError) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VolumeFile.posixError("stat the upload's spool") }
        let used = UInt64(max(st.st_blocks, 0)) * 512
        guard used <= room else {
            throw .insufficientSpace(
                "the upload holds \(ByteSize.describe(used)) of data, more than pool '\(pool)' has free "
                    + "(\(ByteSize.describe(room)) after its reserve); nothing was imported")
        }
    }

    /// Writes `bytes` at `offset` of the spool, skipping the all-zero
    /// `spoolBlock`-aligned blocks (the file stays sparse there).
    static func spoolWrite(_ fd: Int32, _ bytes: ByteBuffer, at offset: UInt64, path: String) throws(DepotError) {
        let block = UInt64(spoolBlock)
        try bytes.withUnsafeReadableBytes { raw throws(DepotError) in
            var start = 0
            while start < raw.count {
                let position = offset + UInt64(start)
                let count = Int(min(UInt64(raw.count - start), block - position % block))
                let piece = UnsafeRawBufferPointer(rebasing: raw[start..<(start + count)])
                if piece.contains(where: { $0 != 0 }) {
                    var done = 0
                    while done < count {
                        let n = pwrite(fd, piece.baseAddress! + done, count - done, off_t(position) + off_t(done))
                        guard n > 0 else {
                            throw errno == ENOSPC
                                ? .insufficientSpace("the pool's filesystem is full: the upload does not fit")
                                : VolumeFile.posixError("write \(path)")
                        }
                        done += n
                    }
                }
                start += count
            }
        }
    }
}
