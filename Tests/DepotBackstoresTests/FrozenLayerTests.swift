import DepotBlock
import DepotImage
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import Testing

@testable import DepotBackstores

/// A snapshot of a qcow2 layer in use swaps without writing the layer back
/// first: the new overlay reads the frozen layer through its tables in
/// memory (`QCOW2BlockDevice(on:)`), the write-back runs after the swap, a
/// guest's flush waits for it, and from then on the layer file is what
/// qemu-img reads.
@Suite struct FrozenLayerTests {
    @Test func anOverlayReadsTheLayerItFrozeFromMemoryUntilItIsWrittenBack() async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let activePath = dir + "/active.qcow2"
        let layerPath = dir + "/layer.qcow2"
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", activePath, "8M"])
        let volume = VolumeDevice(try QCOW2BlockDevice(path: activePath, blockSize: 512, readOnly: false))
        let pattern = [UInt8](repeating: 0x5a, count: 1 << 20)
        try await volume.write(offset: 1 << 20, bytes: pattern)
        // Not flushed: the file does not map the range yet (qemu-io reads zeros there).
        try QemuImg.must("qemu-io", ["-r", "-U", "-f", "qcow2", "-c", "read -P 0 1M 1M", activePath])

        try await volume.replace(flush: .later) { old in
            #expect(rename(activePath, layerPath) == 0)
            let overlay = try QCOW2Layout.emptyImage(
                size: 8 << 20, backing: QCOW2Layout.Backing(name: "layer.qcow2", format: "qcow2"))
            try Data(overlay).write(to: URL(fileURLWithPath: activePath))
            return try QCOW2BlockDevice(
                path: activePath, blockSize: 512, readOnly: false, on: old as? QCOW2BlockDevice)
        }
        let top = try #require(volume.current as? QCOW2BlockDevice)
        #expect(top.chain == [activePath, layerPath], "the frozen layer carries its new name: \(top.chain)")
        #expect(try await volume.read(offset: 1 << 20, length: 1 << 20) == pattern)
        #expect(try await volume.read(offset: 0, length: 4096) == [UInt8](repeating: 0, count: 4096))
        // A first write to the overlay copies up from the frozen layer's memory.
        try await volume.write(offset: (1 << 20) + 4096, bytes: [UInt8](repeating: 0x66, count: 512))
        var expected = pattern
        expected.replaceSubrange(4096..<4608, with: [UInt8](repeating: 0x66, count: 512))
        #expect(try await volume.read(offset: 1 << 20, length: 1 << 20) == expected)

        // The guest's flush covers the layer: written back, closed (QEMU's locks given back).
        try await volume.flush()
        try QemuImg.must("qemu-img", ["check", layerPath])
        try QemuImg.must("qemu-io", ["-f", "qcow2", "-c", "read -P 0x5a 1M 1M", "-c", "read -P 0 0 1M", layerPath])
        try QemuImg.must("qemu-img", ["check", "-U", activePath])
        try QemuImg.must(
            "qemu-io",
            ["-r", "-U", "-f", "qcow2", "-c", "read -P 0x66 1052672 512", "-c", "read -P 0x5a 1M 4K", activePath])
    }

    /// An overlay is put on an open layer only if it names that very file.
    @Test func anOverlayNamingAnotherFileIsRefusedOnAnOpenLayer() throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/layer.qcow2", "8M"])
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/other.qcow2", "8M"])
        let layer = try QCOW2BlockDevice(path: dir + "/layer.qcow2", blockSize: 512, readOnly: false)
        let overlay = try QCOW2Layout.emptyImage(
            size: 8 << 20, backing: QCOW2Layout.Backing(name: "other.qcow2", format: "qcow2"))
        try Data(overlay).write(to: URL(fileURLWithPath: dir + "/top.qcow2"))
        #expect(throws: QCOW2Error.self) {
            _ = try QCOW2BlockDevice(path: dir + "/top.qcow2", blockSize: 512, readOnly: false, on: layer)
        }
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/alone.qcow2", "8M"])
        #expect(throws: QCOW2Error.self) {
            _ = try QCOW2BlockDevice(path: dir + "/alone.qcow2", blockSize: 512, readOnly: false, on: layer)
        }
    }
}
