import DepotCore
import DepotImage
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A disk image file opened read-only (a symlink in its last component is
/// not followed, a FIFO does not block the open), for its format
/// (`DiskImageFormat`) and geometry (`DiskImageGeometry`) and for reads by
/// offset: what an import checks, what the foreign-disk scan counts and
/// what a streamed raw export sends.
final class ImageFileReader: @unchecked Sendable {
    let fd: Int32
    /// The file's length in bytes when it was opened.
    let size: UInt64

    init(_ path: String) throws(DepotError) {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { throw VolumeFile.posixError("open \(path)") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let error = VolumeFile.posixError("stat \(path)")
            close(fd)
            throw error
        }
        size = UInt64(max(st.st_size, 0))
    }

    deinit { close(fd) }

    /// Up to `count` bytes (at most 1 MiB) at `offset`, fewer at the end of
    /// the file; nil on a read error or an offset past what a file can have.
    func read(_ offset: UInt64, _ count: Int) -> [UInt8]? {
        guard (0...(1 << 20)).contains(count), offset <= UInt64(Int64.max) - UInt64(count) else { return nil }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 { return nil }
            if n == 0 { break }
            done += n
        }
        return Array(bytes.prefix(done))
    }

    /// The format by content: the head, and the tail a VHD footer is in.
    var format: DiskImageFormat {
        let tailBytes = UInt64(DiskImageFormat.tailBytes)
        let tail = size >= tailBytes ? read(size - tailBytes, Int(tailBytes)) ?? [] : []
        return DiskImageFormat.probe(head: read(0, DiskImageFormat.headBytes) ?? [], tail: tail)
    }

    func geometry(_ format: DiskImageFormat) throws(DiskImageGeometry.Problem) -> DiskImageGeometry {
        try DiskImageGeometry.read(format, size: size, reader: read)
    }
}
