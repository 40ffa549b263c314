import DepotBlock
import NIOConcurrencyHelpers

/// A fault-injecting backstore for tests: forwards to a real device and
/// fails the writes, reads or flushes it is told to, as a disk or file
/// system that returns EIO would; counts the flushes that reached it.
final class FaultyDevice: BlockDevice, Sendable {
    struct Faults: Sendable {
        var flush: BlockDeviceError?
        var write: BlockDeviceError?
        var read: BlockDeviceError?
        var flushesReached = 0
    }

    let inner: any BlockDevice
    let faults = NIOLockedValueBox(Faults())

    init(_ inner: any BlockDevice) { self.inner = inner }

    var blockSize: Int { inner.blockSize }
    var sizeBytes: UInt64 { inner.sizeBytes }
    var canUnmap: Bool { inner.canUnmap }

    func read(offset: UInt64, length: Int) async throws -> [UInt8] {
        if let fault = faults.withLockedValue({ $0.read }) { throw fault }
        return try await inner.read(offset: offset, length: length)
    }

    func write(offset: UInt64, bytes: [UInt8]) async throws {
        if let fault = faults.withLockedValue({ $0.write }) { throw fault }
        try await inner.write(offset: offset, bytes: bytes)
    }

    func flush() async throws {
        let fault = faults.withLockedValue { f -> BlockDeviceError? in
            f.flushesReached += 1
            return f.flush
        }
        if let fault { throw fault }
        try await inner.flush()
    }

    func unmap(offset: UInt64, length: UInt64) async throws { try await inner.unmap(offset: offset, length: length) }
    func anchor(offset: UInt64, length: UInt64) async throws { try await inner.anchor(offset: offset, length: length) }
    func allocation(at offset: UInt64) async throws -> (mapped: Bool, length: UInt64) {
        try await inner.allocation(at: offset)
    }
}
