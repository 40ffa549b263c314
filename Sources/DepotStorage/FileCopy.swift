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
            // copy_file_range is synchronous: each piece waits for its reads.
            // So the next `readahead` bytes are asked of the disk ahead (as
            // qemu-img convert keeps several requests in flight), and each
            // piece copied starts its writeback, leaving the final fsync little.
            let extents = extentList(input)
            var ahead = (index: 0, offset: extents.first?.offset ?? 0)
            var copied: UInt64 = 0
            var hinted: UInt64 = 0
            func readAhead() {
                while hinted < copied + Self.readahead, ahead.index < extents.count {
                    let extent = extents[ahead.index]
                    let length = min(extent.offset + extent.length - ahead.offset, Self.piece)
                    _ = depot_will_need(input, off_t(ahead.offset), off_t(length))
                    hinted += length
                    ahead.offset += length
                    if ahead.offset >= extent.offset + extent.length {
                        ahead.index += 1
                        ahead.offset = ahead.index < extents.count ? extents[ahead.index].offset : 0
                    }
                }
            }
            var stop = false
            for extent in extents where !stop {
                var at = extent.offset
                let end = extent.offset + extent.length
                while at < end, !stop {
                    readAhead()
                    let n = depot_copy_range(input, output, off_t(at), Int(min(end - at, Self.piece)))
                    if n <= 0 {
                        failure = VolumeFile.posixError("copy \(source) to \(destination)")
                        stop = true
                        break
                    }
                    _ = depot_start_writeback(output, off_t(at), off_t(n))
                    at += UInt64(n)
                    copied += UInt64(n)
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

    /// Bytes one copy_file_range call moves, and how far reads are asked ahead.
    static let piece: UInt64 = 8 << 20
    static let readahead: UInt64 = 64 << 20

    /// The data extents of the open file, in order.
    static func extentList(_ fd: Int32) -> [(offset: UInt64, length: UInt64)] {
        var extents: [(offset: UInt64, length: UInt64)] = []
        forEachExtent(fd) { extents.append(($0, $1)) }
        return extents
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
