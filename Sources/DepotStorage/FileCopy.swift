import CDepotPosix
import DepotCore
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A file copied for a full clone: shared extents (FICLONE) where the
/// filesystem has reflinks, else only its data extents (SEEK_DATA /
/// SEEK_HOLE), copied by the kernel (copy_file_range), holes left holes.
enum FileCopy {
    /// How the copy was made.
    enum Method: String { case reflink, extents }

    /// Bytes of data `path` holds (the sum of its data extents).
    static func dataBytes(_ path: String) throws(DepotError) -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VolumeFile.posixError("open \(path)") }
        defer { close(fd) }
        var total: UInt64 = 0
        forEachExtent(fd) { _, length in total += length }
        return total
    }

    /// Copies `source` to the new file `destination` (created exclusively,
    /// made durable); `advance(bytes)` after each piece (it may throw to stop,
    /// and the destination is removed).
    static func copy(_ source: String, to destination: String, advance: (UInt64) throws -> Void) throws -> Method {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw VolumeFile.posixError("open \(source)") }
        defer { close(input) }
        var st = stat()
        guard fstat(input, &st) == 0 else { throw VolumeFile.posixError("stat \(source)") }
        var method = Method.reflink
        var failure: (any Error)?
        try VolumeFile.createExclusively(path: destination) { output throws(DepotError) in
            if depot_ficlone(output, input) == 0 {
                do { try advance(UInt64(st.st_blocks) * 512) } catch {
                    failure = error
                    throw .internalError("stopped")
                }
                return
            }
            method = .extents
            guard ftruncate(output, st.st_size) == 0 else { throw VolumeFile.posixError("size \(destination)") }
            var stop = false
            forEachExtent(input) { offset, length in
                guard !stop else { return }
                var at = offset
                let end = offset + length
                while at < end, !stop {
                    let piece = Int(min(end - at, 8 << 20))
                    let n = depot_copy_range(input, output, off_t(at), piece)
                    if n <= 0 {
                        failure = VolumeFile.posixError("copy \(source) to \(destination)")
                        stop = true
                        return
                    }
                    at += UInt64(n)
                    do { try advance(UInt64(n)) } catch {
                        failure = error
                        stop = true
                    }
                }
            }
            if stop { throw .internalError("stopped") }
        }
        if let failure { throw failure }
        return method
    }

    /// Calls `body(offset, length)` for each data extent of the open file.
    static func forEachExtent(_ fd: Int32, _ body: (UInt64, UInt64) -> Void) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        let size = off_t(st.st_size)
        var offset: off_t = 0
        while offset < size {
            let data = depot_seek_data(fd, offset)
            guard data >= 0, data < size else { return }
            var hole = depot_seek_hole(fd, data)
            if hole < 0 || hole > size { hole = size }
            body(UInt64(data), UInt64(hole - data))
            offset = hole
        }
    }
}
