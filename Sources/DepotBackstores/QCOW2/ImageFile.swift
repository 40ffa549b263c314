import CDepotPosix
import DepotBlock
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// An open file of an image chain: whole-range pread/pwrite (a short read
/// past the end reads zeros), fdatasync, hole punching. Blocking: callers run
/// it on the I/O threads.
final class ImageFile: @unchecked Sendable {
    /// The file's name (for messages): `renamed` follows a rename of the
    /// file while it is open (a snapshot renames the active layer's file).
    var path: String { name.withLockedValue { $0 } }
    private let name: NIOLockedValueBox<String>
    let fd: Int32
    let writable: Bool

    /// `locking: false` only for tools that edit an image no one serves (tests).
    init(path: String, writable: Bool, locking: Bool = true) throws {
        let fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else { throw BlockDeviceError.io("open \(path): \(String(cString: strerror(errno)))") }
        name = NIOLockedValueBox(path)
        self.fd = fd
        self.writable = writable
        if writable, locking {
            do { try lockForWriting() } catch {
                close(fd)
                throw error
            }
        }
    }

    deinit { close(fd) }

    /// The file now has `path` as its name (the descriptor is the same file).
    func renamed(to path: String) { name.withLockedValue { $0 = path } }

    /// Whether `path` names this open file (the same device and inode).
    func isFile(at path: String) -> Bool {
        var mine = stat()
        var other = stat()
        return fstat(fd, &mine) == 0 && stat(path, &other) == 0 && mine.st_dev == other.st_dev
            && mine.st_ino == other.st_ino
    }

    // QEMU's image locking (block/file-posix.c): an opener holds a shared OFD
    // lock on byte 100 + n for each permission n it has (0 consistent read,
    // 1 write) and on byte 200 + n for each it does not share with others.
    static let lockPermissionBase: off_t = 100
    static let lockUnsharedBase: off_t = 200

    /// A writable layer: refused when another program (a QEMU with the image
    /// open for writing, or one that forbids writers) holds QEMU's locks;
    /// then Depot holds them itself (write, and writes not shared), so QEMU
    /// refuses to open a served image for writing instead of corrupting it.
    private func lockForWriting() throws {
        let write = Self.lockPermissionBase + 1
        let unsharedWrite = Self.lockUnsharedBase + 1
        if depot_ofd_conflicts(fd, write, 1) == 1 {
            throw QCOW2Error.refused(
                path: path, why: "another program has it open for writing (it holds QEMU's write lock); stop it first")
        }
        if depot_ofd_conflicts(fd, unsharedWrite, 1) == 1 {
            throw QCOW2Error.refused(
                path: path, why: "another program has it open and forbids writers (QEMU's lock); stop it first")
        }
        for byte in [Self.lockPermissionBase, write, unsharedWrite] where depot_ofd_lock(fd, byte, 0) != 0 {
            throw QCOW2Error.refused(
                path: path, why: "its lock is held by another program (\(String(cString: strerror(errno))))")
        }
    }

    /// Gives QEMU's locks back (the image is closed; the descriptor may live on).
    func unlock() {
        if writable { _ = depot_ofd_unlock_all(fd) }
    }

    var size: UInt64 {
        var st = stat()
        return fstat(fd, &st) == 0 ? UInt64(st.st_size) : 0
    }

    /// Fills `into` from `offset`; what lies past the end of the file is zeros.
    /// A range a file can hold (off_t is signed): else an I/O error, not a trap.
    private func check(_ offset: UInt64, _ count: Int) throws {
        guard offset <= UInt64(Int64.max) - UInt64(count) else {
            throw BlockDeviceError.io("\(path): offset \(offset) is past the largest file offset")
        }
    }

    func read(at offset: UInt64, into: UnsafeMutableRawBufferPointer) throws {
        try check(offset, into.count)
        var done = 0
        while done < into.count {
            let n = pread(fd, into.baseAddress! + done, into.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw BlockDeviceError.io("read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        if done < into.count {
            (into.baseAddress! + done).initializeMemory(as: UInt8.self, repeating: 0, count: into.count - done)
        }
    }

    func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(at: offset, into: $0) }
        return bytes
    }

    func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        try check(offset, bytes.count)
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw errno == ENOSPC
                    ? BlockDeviceError.noSpace
                    : BlockDeviceError.io("write \(path): \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    func write(at offset: UInt64, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write(at: offset, $0) }
    }

    /// Makes the file at least `length` bytes long (the new part a hole).
    func extend(to length: UInt64) throws {
        guard size < length else { return }
        guard ftruncate(fd, off_t(length)) == 0 else {
            throw BlockDeviceError.io("extend \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Cuts the file to `length` bytes.
    func truncate(to length: UInt64) throws {
        guard ftruncate(fd, off_t(length)) == 0 else {
            throw BlockDeviceError.io("truncate \(path): \(String(cString: strerror(errno)))")
        }
    }

    func sync() throws {
        guard fdatasync(fd) == 0 else {
            throw BlockDeviceError.io("fdatasync \(path): \(String(cString: strerror(errno)))")
        }
    }

    func punchHole(at offset: UInt64, length: UInt64) {
        // Best effort: the range is free in the image either way.
        _ = depot_punch_hole(fd, off_t(offset), off_t(length))
    }
}
