@testable import DepotBackstores
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
}
