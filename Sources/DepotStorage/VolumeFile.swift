import CDepotPosix
import DepotCore
import DepotImage
import NIOCore
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// POSIX operations on one volume file. Every call blocks: run them on the
/// `IOEngine`.
public enum VolumeFile {
    /// Creates `path` exclusively at `size` bytes, provisioned as asked, and
    /// makes it and its directory entry durable before returning.
    ///
    /// - thin: `ftruncate` only, a sparse file.
    /// - thick: `fallocate(2)` mode 0 reserves every block; ext4/xfs mark them
    ///   unwritten, so reads return zeros without the data being written.
    /// - eager-zeroed: reserved, then zero-written in 1 MiB chunks; `progress`
    ///   is called with the fraction done.
    public static func create(
        path: String, size: UInt64, provisioning: Provisioning,
        progress: @Sendable (Double) -> Void = { _ in }, cancelled: @Sendable () -> Bool = { false }
    ) throws(DepotError) {
        try createExclusively(path: path) { fd throws(DepotError) in
            switch provisioning {
            case .thin:
                guard ftruncate(fd, off_t(size)) == 0 else { throw posixError("size \(path)") }
            case .thick:
                try reserve(fd: fd, offset: 0, length: size, path: path)
            case .eagerZeroed:
                try reserve(fd: fd, offset: 0, length: size, path: path)
                try writeZeros(fd: fd, from: 0, to: size, path: path, progress: progress, cancelled: cancelled)
            }
        }
        progress(1.0)
    }

    /// A new file (`O_EXCL`, mode 0600) filled by `fill`, then fsynced with its
    /// directory entry; on any failure the file is removed, so nothing is half-created.
    static func createExclusively(path: String, _ fill: (Int32) throws(DepotError) -> Void) throws(DepotError) {
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw posixError("create \(path)") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(path) }
        }
        try fill(fd)
        guard fsync(fd) == 0 else { throw posixError("fsync \(path)") }
        try syncDirectory(of: path)
        ok = true
    }

    /// Changes a file's size. Growing a thick or eager-zeroed file reserves
    /// (and for eager-zeroed zero-writes) the new range.
    public static func resize(path: String, from oldSize: UInt64, to newSize: UInt64, provisioning: Provisioning)
        throws(DepotError)
    {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw posixError("open \(path)") }
        defer { close(fd) }
        if newSize > oldSize, provisioning.reservesSpace {
            try reserve(fd: fd, offset: oldSize, length: newSize - oldSize, path: path)
            if provisioning == .eagerZeroed {
                try writeZeros(fd: fd, from: oldSize, to: newSize, path: path, progress: { _ in })
            }
        }
        guard ftruncate(fd, off_t(newSize)) == 0 else { throw posixError("resize \(path)") }
        guard fsync(fd) == 0 else { throw posixError("fsync \(path)") }
    }

    /// Renames within one directory, durably; refuses to replace an existing file.
    public static func rename(from: String, to: String) throws(DepotError) {
        guard access(to, F_OK) != 0 else { throw .conflict("file \(to) already exists") }
        guard Glibc.rename(from, to) == 0 else { throw posixError("rename \(from) to \(to)") }
        try syncDirectory(of: to)
    }

    /// Moves `from` over `to` (replacing it, atomically), durably.
    public static func replace(_ to: String, with from: String) throws(DepotError) {
        guard Glibc.rename(from, to) == 0 else { throw posixError("rename \(from) to \(to)") }
        try syncDirectory(of: to)
    }

    /// Removes a file durably; a file already gone is not an error.
    public static func remove(path: String) throws(DepotError) {
        if unlink(path) != 0, errno != ENOENT { throw posixError("remove \(path)") }
        try syncDirectory(of: path)
    }

    public struct Status: Sendable {
        public var sizeBytes: UInt64
        /// Physical bytes allocated (st_blocks × 512).
        public var allocatedBytes: UInt64
    }

    /// nil when the file does not exist.
    public static func status(path: String) -> Status? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Status(sizeBytes: UInt64(st.st_size), allocatedBytes: UInt64(st.st_blocks) * 512)
    }

    /// The same for a volume of `format`: a qcow2 file's size is the virtual
    /// size in its header, not the file's length.
    public static func status(path: String, format: VolumeFormat) -> Status? {
        guard var status = status(path: path) else { return nil }
        if format == .qcow2 {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var head = [UInt8](repeating: 0, count: 4096)
            let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 4096, 0) }
            var buffer = ByteBuffer(bytes: head.prefix(max(0, n)))
            guard let header = try? buffer.readQCOW2Header() else { return nil }
            status.sizeBytes = header.size
        }
        return status
    }

    /// A new qcow2 volume file: an empty version 3 image (64 KiB clusters),
    /// written and made durable with its directory entry.
    public static func createQCOW2(path: String, size: UInt64, backing: QCOW2Layout.Backing? = nil) throws(DepotError) {
        let image: [UInt8]
        do { image = try QCOW2Layout.emptyImage(size: size, backing: backing) } catch {
            throw .unprocessable("\(error)")
        }
        try createExclusively(path: path) { fd throws(DepotError) in
            var done = 0
            while done < image.count {
                let n = image.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, image.count - done, off_t(done)) }
                guard n > 0 else { throw posixError("write \(path)") }
                done += n
            }
        }
    }

    /// A new thick qcow2 volume file: every cluster allocated in the tables
    /// and its data area reserved with fallocate (as qemu-img's
    /// `preallocation=falloc`), so writes never need new space; made durable
    /// with its directory entry.
    public static func createPreallocatedQCOW2(path: String, size: UInt64) throws(DepotError) {
        try createExclusively(path: path) { fd throws(DepotError) in
            let layout: QCOW2Layout.Preallocation
            do {
                layout = try QCOW2Layout.preallocated(size: size) { offset, bytes in
                    var done = 0
                    while done < bytes.count {
                        let n = bytes.withUnsafeBytes {
                            pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
                        }
                        guard n > 0 else { throw posixError("write \(path)") }
                        done += n
                    }
                }
            } catch let error as DepotError { throw error } catch { throw .unprocessable("\(error)") }
            try reserve(fd: fd, offset: layout.dataOffset, length: layout.fileSize - layout.dataOffset, path: path)
        }
    }

    /// The end offset of the last block in `[from, size)` that holds non-zero
    /// data, or nil when that whole range reads as zeros. Walks data extents
    /// with SEEK_DATA/SEEK_HOLE and reads only those, so holes and unwritten
    /// (fallocated) extents cost nothing.
    public static func lastNonZeroEnd(path: String, from start: UInt64, blockSize: UInt64) throws(DepotError) -> UInt64?
    {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw posixError("open \(path)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw posixError("stat \(path)") }
        let size = UInt64(st.st_size)
        var found: UInt64?
        var offset = start
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        while offset < size {
            let dataStart = depot_seek_data(fd, off_t(offset))
            if dataStart < 0 {
                if errno == ENXIO { break }
                throw posixError("seek \(path)")
            }
            var holeStart = depot_seek_hole(fd, dataStart)
            if holeStart < 0 { holeStart = off_t(size) }
            var pos = UInt64(dataStart)
            while pos < UInt64(holeStart) {
                let want = Int(min(UInt64(chunk), UInt64(holeStart) - pos))
                let got = pread(fd, buffer.baseAddress, want, off_t(pos))
                guard got > 0 else { throw posixError("read \(path)") }
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<got])
                if let last = bytes.lastIndex(where: { $0 != 0 }) {
                    let end = pos + UInt64(last) + 1
                    found = (end + blockSize - 1) / blockSize * blockSize
                }
                pos += UInt64(got)
            }
            offset = UInt64(holeStart)
        }
        return found
    }

    static func reserve(fd: Int32, offset: UInt64, length: UInt64, path: String) throws(DepotError) {
        guard length > 0 else { return }
        if depot_fallocate(fd, 0, off_t(offset), off_t(length)) == 0 { return }
        let err = errno
        if err == ENOSPC {
            throw .insufficientSpace("filesystem has no room to reserve \(ByteSize.format(length)) for \(path)")
        }
        guard err == EOPNOTSUPP else { throw posixError("reserve \(path)", err) }
        // Filesystems without fallocate: glibc's emulation writes every block.
        let rc = posix_fallocate(fd, off_t(offset), off_t(length))
        guard rc == 0 else {
            if rc == ENOSPC {
                throw .insufficientSpace("filesystem has no room to reserve \(ByteSize.format(length)) for \(path)")
            }
            throw posixError("reserve \(path)", rc)
        }
    }

    static func writeZeros(
        fd: Int32, from start: UInt64, to end: UInt64, path: String, progress: @Sendable (Double) -> Void,
        cancelled: @Sendable () -> Bool = { false }
    ) throws(DepotError) {
        let chunk = 1 << 20
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var offset = start
        var lastReported = 0.0
        while offset < end {
            // A create cancelled by `volume delete --force` stops between chunks; the caller removes the file.
            if cancelled() { throw DepotError.conflict("cancelled by a forced delete") }
            let want = Int(min(UInt64(chunk), end - offset))
            let written = pwrite(fd, zeros.baseAddress, want, off_t(offset))
            guard written > 0 else { throw posixError("zero \(path)") }
            offset += UInt64(written)
            let fraction = Double(offset - start) / Double(end - start)
            if fraction - lastReported >= 0.01 {
                progress(min(fraction, 0.999))
                lastReported = fraction
            }
        }
    }

    static func syncDirectory(of path: String) throws(DepotError) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw posixError("open directory \(dir)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw posixError("fsync directory \(dir)") }
    }

    static func posixError(_ what: String, _ code: Int32 = errno) -> DepotError {
        if code == ENOSPC { return .insufficientSpace("\(what): no space left on device") }
        return .internalError("\(what): \(String(cString: strerror(code)))")
    }
}
