import CDepotPosix
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A volume file as a block device. pread/pwrite/fdatasync run on NIO's
/// thread pool, never on an event loop.
public final class FileBlockDevice: BlockDevice, @unchecked Sendable {
    public let blockSize: Int
    public let sizeBytes: UInt64
    private let fd: Int32
    private let pool: NIOThreadPool

    public let canUnmap: Bool

    public init(path: String, blockSize: Int, readOnly: Bool, thin: Bool = false, pool: NIOThreadPool = .singleton) throws {
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
    }

    deinit { close(fd) }

    public func read(offset: UInt64, length: Int) async throws -> [UInt8] {
        let fd = self.fd
        return try await pool.runIfActive {
            var buffer = [UInt8](repeating: 0, count: length)
            var done = 0
            while done < length {
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, length - done, off_t(offset) + off_t(done)) }
                if n < 0 { throw BlockDeviceError.io("read: \(String(cString: strerror(errno)))") }
                if n == 0 { break }  // past the end of a file that shrank: zeros
                done += n
            }
            return buffer
        }
    }

    public func write(offset: UInt64, bytes: [UInt8]) async throws {
        let fd = self.fd
        try await pool.runIfActive {
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done)) }
                if n < 0 {
                    throw errno == ENOSPC ? BlockDeviceError.noSpace : BlockDeviceError.io("write: \(String(cString: strerror(errno)))")
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

    public func flush() async throws {
        let fd = self.fd
        try await pool.runIfActive {
            guard fdatasync(fd) == 0 else { throw BlockDeviceError.io("fdatasync: \(String(cString: strerror(errno)))") }
        }
    }
}

public enum BlockDeviceError: Error {
    case io(String)
    case noSpace
}
