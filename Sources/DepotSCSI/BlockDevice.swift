import NIOCore

/// What the SCSI core needs from a backstore (DESIGN.md: the core reaches
/// storage only through this protocol). Offsets and lengths are in bytes.
public protocol BlockDevice: Sendable {
    var blockSize: Int { get }
    /// Size in bytes (a whole number of blocks).
    var sizeBytes: UInt64 { get }
    func read(offset: UInt64, length: Int) async throws -> [UInt8]
    /// The same bytes in a buffer the transport can send without copying.
    func readBuffer(offset: UInt64, length: Int) async throws -> ByteBuffer
    func write(offset: UInt64, bytes: [UInt8]) async throws
    /// Makes every acknowledged write durable (SYNCHRONIZE CACHE, FUA).
    func flush() async throws
    /// Whether unmapped ranges can be given back (thin provisioning).
    var canUnmap: Bool { get }
    /// Deallocates a range; it reads back as zeros afterwards.
    func unmap(offset: UInt64, length: UInt64) async throws
    /// Anchors a range (SBC-3 §4.7.2.3): it reads back as zeros and keeps
    /// its storage allocated, so later writes to it need no new space.
    func anchor(offset: UInt64, length: UInt64) async throws
    /// Whether the byte at `offset` is backed by allocated storage, and how
    /// many bytes from there share that state.
    func allocation(at offset: UInt64) async throws -> (mapped: Bool, length: UInt64)
}

extension BlockDevice {
    public func readBuffer(offset: UInt64, length: Int) async throws -> ByteBuffer {
        ByteBuffer(bytes: try await read(offset: offset, length: length))
    }
}
