import CDepotPosix
import DepotImage
#if canImport(Glibc)
    import Glibc
#endif
import NIOCore

/// One layer of an image chain as the layer above reads it: synchronous
/// (the I/O threads run the whole chain), by guest offset. What lies past a
/// layer's size reads as zeros (qcow2.rst: a backing file smaller than its
/// overlay).
protocol ChainLayer: AnyObject, Sendable {
    var size: UInt64 { get }
    /// Fills `into` with the guest bytes at `offset`.
    func read(at offset: UInt64, into: UnsafeMutableRawBufferPointer) throws
    /// Whether the byte at `offset` has data in this layer or one below it,
    /// and how many bytes from there (at most `limit`) share that.
    func allocation(at offset: UInt64, limit: UInt64) throws -> (mapped: Bool, length: UInt64)
    /// The files of this layer and those below, top first (for messages and tests).
    var chain: [String] { get }
    /// The layer below this one, if any.
    var below: (any ChainLayer)? { get }
    /// The first offset at or after `offset` where this layer itself (not
    /// the layers below) says what the guest reads — data or explicit
    /// zeros — or nil when it says nothing further. Cluster granular; a
    /// raw layer says something wherever its file has data.
    func nextOwnData(from offset: UInt64) throws -> UInt64?
}

/// A raw file as a (read-only) layer.
final class RawLayer: ChainLayer {
    let file: ImageFile
    let size: UInt64

    init(path: String) throws {
        file = try ImageFile(path: path, writable: false)
        size = file.size
    }

    func read(at offset: UInt64, into: UnsafeMutableRawBufferPointer) throws {
        try readClipped(size: size, at: offset, into: into) { try file.read(at: $0, into: $1) }
    }

    func allocation(at offset: UInt64, limit: UInt64) throws -> (mapped: Bool, length: UInt64) {
        (offset < size, limit)
    }

    var chain: [String] { [file.path] }
    var below: (any ChainLayer)? { nil }

    func nextOwnData(from offset: UInt64) throws -> UInt64? {
        guard offset < size else { return nil }
        let at = depot_seek_data(file.fd, off_t(offset))
        // No SEEK_DATA (or past the last data): ENXIO means none; anything else, assume data.
        if at < 0 { return errno == ENXIO ? nil : offset }
        return UInt64(at) < size ? UInt64(at) : nil
    }
}

/// Reads what lies below `size` with `body` and zeros past it.
func readClipped(
    size: UInt64, at offset: UInt64, into: UnsafeMutableRawBufferPointer,
    _ body: (UInt64, UnsafeMutableRawBufferPointer) throws -> Void
) throws {
    let inside = offset >= size ? 0 : Int(min(UInt64(into.count), size - offset))
    if inside > 0 { try body(offset, UnsafeMutableRawBufferPointer(rebasing: into[0..<inside])) }
    if inside < into.count {
        (into.baseAddress! + inside).initializeMemory(as: UInt8.self, repeating: 0, count: into.count - inside)
    }
}
