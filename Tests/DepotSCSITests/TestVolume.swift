@testable import DepotBackstores
import DepotBlock
import DepotSCSI
import Foundation
import Testing

/// A sparse 1 MiB volume file in the temporary directory, for LU tests
/// without a transport; `remove()` deletes it.
struct TestVolume {
    let path: String

    init(_ prefix: String) throws {
        path = NSTemporaryDirectory() + "depot-\(prefix)-\(UUID().uuidString).img"
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 20)
        try handle.close()
    }

    /// An existing volume file.
    init(path: String) { self.path = path }

    func unit(persistentReservations: PersistentReservations = PersistentReservations()) throws -> LogicalUnit {
        LogicalUnit(
            device: try FileBlockDevice(path: path, blockSize: 512, readOnly: false, thin: true), uuid: UUID(),
            name: "t", readOnly: false,
            persistentReservations: persistentReservations)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
