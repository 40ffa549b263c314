@testable import DepotBackstores
import DepotImage
import Foundation

/// A hostile qcow2 file (qcow2.rst): the header, its extensions, L1/L2
/// and refcount tables as Depot opens them for writing, then reads at
/// offsets the input picks, a write, a flush. A refused or corrupt image
/// must throw (`QCOW2Error`), never trap or allocate without bound.
enum ImageFuzzTargets {
    static let scratch = NSTemporaryDirectory() + "depot-fuzz-\(getpid()).qcow2"

    static func qcow2(_ data: [UInt8]) {
        guard FileManager.default.createFile(atPath: scratch, contents: Data(data)) else { return }
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        guard let image = try? QCOW2Image(path: scratch, writable: true, l2CacheBytes: 1 << 20) else { return }
        defer { try? image.close() }
        let size = image.size
        guard size > 0 else { return }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let tail = data.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        for offset in [0, size / 2, tail % size, size &- 1] {
            let at = offset / 512 * 512
            let length = Int(min(UInt64(bytes.count), size - at))
            _ = try? bytes.withUnsafeMutableBytes { try image.read(at: at, into: .init(rebasing: $0[0..<length])) }
        }
        let at = tail % size / 512 * 512
        let length = Int(min(4096, size - at))
        _ = try? bytes.withUnsafeBytes { try image.write(at: at, .init(rebasing: $0[0..<length])) }
        _ = try? image.flush()
    }

    /// A hostile file in a pool's directory as the foreign-disk scan reads it:
    /// probed by its content, then its geometry read (qcow2, VMDK sparse or
    /// descriptor, VHD footer, VHDX region and metadata tables) through a
    /// reader bounded by the input. It must answer a size or a `Problem`.
    static func diskGeometry(_ data: [UInt8]) {
        let size = UInt64(data.count)
        let reader: DiskImageGeometry.Reader = { offset, count in
            guard offset <= size else { return nil }
            let start = Int(offset)
            return Array(data[start..<min(data.count, start + max(count, 0))])
        }
        let tail = data.count >= 512 ? Array(data.suffix(512)) : []
        let probed = DiskImageFormat.probe(head: Array(data.prefix(DiskImageFormat.headBytes)), tail: tail)
        for format in Set([probed] + DiskImageFormat.allCases) {
            _ = try? DiskImageGeometry.read(format, size: size, reader: reader)
        }
    }
}
