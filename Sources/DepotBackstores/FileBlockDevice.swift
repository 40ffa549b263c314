import CDepotPosix
import DepotBlock
import NIOCore
import NIOPosix
#if canImport(Glibc)
    import Glibc
#endif

/// A volume file as a block device. Reads the page cache can serve at once
/// are done in place with RWF_NOWAIT (preadv2), which never waits for the
/// disk; so are writes where the filesystem takes RWF_NOWAIT, and else small
/// buffered writes (`InlineWrites`, with a back-off after a stall).
/// Anything else — a cache miss, a large write, fdatasync, fallocate — runs on
/// NIO's thread pool. The in-place path saves two thread switches per command.
public final class FileBlockDevice: BlockDevice, @unchecked Sendable {
    public let blockSize: Int
    public let sizeBytes: UInt64
    private let fd: Int32
    private let pool: NIOThreadPool

    public let canUnmap: Bool
    /// Writes made in place (`InlineWrites`: RWF_NOWAIT, else small buffered ones).
    private let inline = InlineWrites()
    /// Whether writes still try RWF_NOWAIT (false once the filesystem refused it).
    var triesNowaitWrites: Bool { inline.triesNowait }

    public init(path: String, blockSize: Int, readOnly: Bool, thin: Bool = false, pool: NIOThreadPool = .singleton)
        throws
    {
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw BlockDeviceError.io("open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw BlockDeviceError.io("stat \(path)")
        }
        self.fd = fd
        self.blockSize = blockSize
        self.sizeBytes = UInt64(st.st_size) / UInt64(blockSize) * UInt64(blockSize)
        self.pool = pool
        self.canUnmap = thin && !readOnly
        flushes = Self.flushes(fd: fd, pool: pool)
    }

    deinit { close(fd) }

    /// Reads into a fresh array (no buffer in between: one copy of the data
    /// in memory, however large): in place from the page cache when it can,
    /// else on the pool.
    public func read(offset: UInt64, length: Int) async throws -> [UInt8] {
        guard length > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: length)
        if bytes.withUnsafeMutableBytes({ readNow(offset: offset, into: $0) }) { return bytes }
        bytes = []
        let fd = self.fd
        return try await pool.runIfActive {
            var bytes = [UInt8](repeating: 0, count: length)
            try bytes.withUnsafeMutableBytes { raw in
                var done = 0
                while done < length {
                    let n = pread(fd, raw.baseAddress! + done, length - done, off_t(offset) + off_t(done))
                    if n < 0 { throw BlockDeviceError.io("read: \(String(cString: strerror(errno)))") }
                    if n == 0 { break }  // past the end of a file that shrank: the zeros stay
                    done += n
                }
            }
            return bytes
        }
    }

    /// Reads into a fresh buffer: in place from the page cache when it can,
    /// else on the pool.
    public func readBuffer(offset: UInt64, length: Int) async throws -> ByteBuffer {
        let fd = self.fd
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        let inPlace = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
            length > 0 && readNow(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]))
                ? length : 0
        }
        if inPlace == length { return buffer }
        // The page cache did not have it: this buffer goes before the pool makes its own.
        buffer = ByteBuffer()
        return try await pool.runIfActive {
            var buffer = ByteBufferAllocator().buffer(capacity: length)
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                var done = 0
                while done < length {
                    let n = pread(fd, raw.baseAddress! + done, length - done, off_t(offset) + off_t(done))
                    if n < 0 { throw BlockDeviceError.io("read: \(String(cString: strerror(errno)))") }
                    if n == 0 { break }
                    done += n
                }
                // Past the end of a file that shrank: zeros.
                if done < length {
                    (raw.baseAddress! + done).initializeMemory(as: UInt8.self, repeating: 0, count: length - done)
                }
                return length
            }
            return buffer
        }
    }

    public func readNow(offset: UInt64, into: UnsafeMutableRawBufferPointer) -> Bool {
        into.isEmpty || depot_pread_nowait(fd, into.baseAddress!, into.count, off_t(offset)) == into.count
    }

    /// A write made here (`InlineWrites`); false: not (or not wholly) written.
    public func writeNow(offset: UInt64, from: UnsafeRawBufferPointer) -> Bool {
        inline.write(fd, from, at: offset)
    }

    /// In place when `writeNow` can, else on the pool (where errors are reported).
    public func write(offset: UInt64, bytes: [UInt8]) async throws {
        if bytes.isEmpty || bytes.withUnsafeBytes({ writeNow(offset: offset, from: $0) }) { return }
        let fd = self.fd
        try await pool.runIfActive {
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes {
                    pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
                }
                if n < 0 {
                    throw errno == ENOSPC
                        ? BlockDeviceError.noSpace : BlockDeviceError.io("write: \(String(cString: strerror(errno)))")
                }
                done += n
            }
        }
    }

    /// FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: the blocks go back to the
    /// filesystem and the range reads as zeros.
    public func unmap(offset: UInt64, length: UInt64) async throws {
        let fd = self.fd
        try await pool.runIfActive {
            guard depot_punch_hole(fd, off_t(offset), off_t(length)) == 0 else {
                throw BlockDeviceError.io("punch hole: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Punch, then allocate again (fallocate mode 0): zeros, with blocks behind them.
    public func anchor(offset: UInt64, length: UInt64) async throws {
        let fd = self.fd
        try await pool.runIfActive {
            guard depot_punch_hole(fd, off_t(offset), off_t(length)) == 0 else {
                throw BlockDeviceError.io("punch hole: \(String(cString: strerror(errno)))")
            }
            guard depot_fallocate(fd, 0, off_t(offset), off_t(length)) == 0 else {
                throw errno == ENOSPC
                    ? BlockDeviceError.noSpace : BlockDeviceError.io("fallocate: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// SEEK_DATA / SEEK_HOLE from `offset`.
    public func allocation(at offset: UInt64) async throws -> (mapped: Bool, length: UInt64) {
        let fd = self.fd
        let size = sizeBytes
        return try await pool.runIfActive {
            let data = depot_seek_data(fd, off_t(offset))
            if data < 0 { return (false, size - offset) }  // ENXIO: only a hole remains
            if UInt64(data) > offset { return (false, UInt64(data) - offset) }
            let hole = depot_seek_hole(fd, off_t(offset))
            let end = hole < 0 ? size : min(UInt64(hole), size)
            return (true, end - offset)
        }
    }

    /// Concurrent flushes share an fdatasync (group commit, `FlushGroup`),
    /// on a thread of the pool.
    private let flushes: FlushGroup

    public func flush() async throws { try await flushes.flush() }

    /// Reported from the pool's thread as the fdatasync ends.
    public func flush(then done: @escaping @Sendable ((any Error)?) -> Void) { flushes.request(done) }

    static func flushes(fd: Int32, pool: NIOThreadPool) -> FlushGroup {
        FlushGroup(
            start: { work in pool.submit { work($0 == .active) } },
            sync: {
                guard fdatasync(fd) == 0 else {
                    throw BlockDeviceError.io("fdatasync: \(String(cString: strerror(errno)))")
                }
            })
    }
}
