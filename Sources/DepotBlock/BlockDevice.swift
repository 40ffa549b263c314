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
    /// The synchronous fast lane (page cache only; may decline): see the extension.
    func readNow(offset: UInt64, into: UnsafeMutableRawBufferPointer) -> Bool
    func writeNow(offset: UInt64, from: UnsafeRawBufferPointer) -> Bool
    /// Makes every acknowledged write durable (SYNCHRONIZE CACHE, FUA).
    func flush() async throws
    /// The same, reported to `done` (nil, or the error) on whatever thread
    /// finished it, for a caller that answers from the completion itself
    /// rather than from a task (a FUA write the fast lane took).
    func flush(then done: @escaping @Sendable ((any Error)?) -> Void)
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
    /// Reads `into.count` bytes at `offset` on the caller's thread when
    /// that needs no waiting (the page cache holds them); false when it
    /// would have to wait — the caller then uses `readBuffer`.
    public func readNow(offset: UInt64, into: UnsafeMutableRawBufferPointer) -> Bool { false }

    /// Writes `from` at `offset` on the caller's thread when the device
    /// lets a small write go without a thread switch; false when it did
    /// not (perhaps in part) — the caller then uses `write`, which writes
    /// it all again.
    public func writeNow(offset: UInt64, from: UnsafeRawBufferPointer) -> Bool { false }

    public func readBuffer(offset: UInt64, length: Int) async throws -> ByteBuffer {
        ByteBuffer(bytes: try await read(offset: offset, length: length))
    }

    /// A task around `flush()`.
    public func flush(then done: @escaping @Sendable ((any Error)?) -> Void) {
        Task {
            do {
                try await flush()
                done(nil)
            } catch {
                done(error)
            }
        }
    }
}

/// What a backstore's I/O fails with: no space left (the SCSI core answers
/// SPACE ALLOCATION FAILED WRITE PROTECT, 27h/07h), or any other I/O error.
public enum BlockDeviceError: Error {
    case io(String)
    case noSpace
}
