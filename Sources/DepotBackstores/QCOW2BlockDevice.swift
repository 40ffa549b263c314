import DepotBlock
import NIOCore
import NIOPosix

/// A qcow2 image (and its backing chain) as a block device: what a qcow2
/// volume's LUN reads and writes. Every operation runs on NIO's thread pool
/// (`QCOW2Image` is blocking), except the fast lane's: `readNow`/`writeNow`
/// serve reads and overwrites of clusters the top image owns whose L2 table
/// is cached, from the page cache (`QCOW2Image+FastLane`).
public final class QCOW2BlockDevice: BlockDevice, @unchecked Sendable {
    public let blockSize: Int
    /// The image's guest size in whole blocks (`grow` raises it).
    public var sizeBytes: UInt64 { image.size / UInt64(blockSize) * UInt64(blockSize) }
    public let canUnmap: Bool
    let image: QCOW2Image
    private let pool: NIOThreadPool

    /// Opens `path`; `readOnly` opens the top layer read-only too. A refused
    /// or corrupt image throws `QCOW2Error` naming the reason. `on`: the
    /// open image `path` names as its backing file, read from memory (a
    /// snapshot's new overlay on the layer it froze; `QCOW2Image.init`).
    public init(
        path: String, blockSize: Int, readOnly: Bool, l2CacheBytes: Int = 32 << 20, pool: NIOThreadPool = .singleton,
        on below: QCOW2BlockDevice? = nil
    ) throws {
        image = try QCOW2Image(path: path, writable: !readOnly, l2CacheBytes: l2CacheBytes, below: below?.image)
        self.blockSize = blockSize
        canUnmap = !readOnly
        self.pool = pool
    }

    deinit { try? image.close() }

    /// The chain's files, this image first.
    public var chain: [String] { image.chain }
    /// The top layer's file.
    public var path: String { image.file.path }

    public func readNow(offset: UInt64, into: UnsafeMutableRawBufferPointer) -> Bool {
        into.isEmpty || image.readNow(at: offset, into: into)
    }

    public func writeNow(offset: UInt64, from: UnsafeRawBufferPointer) -> Bool {
        !from.isEmpty && image.writeNow(at: offset, from: from)
    }

    public func read(offset: UInt64, length: Int) async throws -> [UInt8] {
        var now = [UInt8](repeating: 0, count: length)
        if now.withUnsafeMutableBytes({ readNow(offset: offset, into: $0) }) { return now }
        let image = self.image
        return try await pool.runIfActive {
            var bytes = [UInt8](repeating: 0, count: length)
            try bytes.withUnsafeMutableBytes { try image.read(at: offset, into: $0) }
            return bytes
        }
    }

    public func readBuffer(offset: UInt64, length: Int) async throws -> ByteBuffer {
        // Cached, owned and in the page cache: no trip to the thread pool.
        var now = ByteBufferAllocator().buffer(capacity: length)
        let served = now.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
            readNow(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length])) ? length : 0
        }
        if served == length { return now }
        let image = self.image
        return try await pool.runIfActive {
            var buffer = ByteBufferAllocator().buffer(capacity: length)
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                try image.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<length]))
                return length
            }
            return buffer
        }
    }

    public func write(offset: UInt64, bytes: [UInt8]) async throws {
        let image = self.image
        try await pool.runIfActive { try bytes.withUnsafeBytes { try image.write(at: offset, $0) } }
    }

    public func flush() async throws {
        let image = self.image
        try await pool.runIfActive { try image.flush() }
    }

    /// Reported from the pool's thread as the image's flush ends.
    public func flush(then done: @escaping @Sendable ((any Error)?) -> Void) {
        let image = self.image
        pool.submit { state in
            guard state == .active else { return done(BlockDeviceError.io("the I/O threads are shut down")) }
            do {
                try image.flush()
                done(nil)
            } catch {
                done(error)
            }
        }
    }

    /// Grows the image to `newSize` bytes (`QCOW2Image.grow`); no I/O may run meanwhile.
    public func grow(to newSize: UInt64) async throws {
        let image = self.image
        try await pool.runIfActive { try image.grow(to: newSize) }
    }

    /// Flushes and gives back unused reservations (also done when the device goes).
    public func close() async throws {
        let image = self.image
        try await pool.runIfActive { try image.close() }
    }

    public func unmap(offset: UInt64, length: UInt64) async throws {
        let image = self.image
        try await pool.runIfActive { try image.unmap(at: offset, length: length) }
    }

    /// Zeros with storage kept: the range is written as zeros (allocated).
    public func anchor(offset: UInt64, length: UInt64) async throws {
        let image = self.image
        try await pool.runIfActive {
            let chunk = 1 << 20
            var at = offset
            let end = offset + length
            let zeros = [UInt8](repeating: 0, count: chunk)
            while at < end {
                let count = Int(min(UInt64(chunk), end - at))
                try zeros.withUnsafeBytes { try image.write(at: at, UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                at += UInt64(count)
            }
        }
    }

    /// Runs of clusters one GET LBA STATUS answer joins at most.
    static let runsPerAnswer = 64

    public func allocation(at offset: UInt64) async throws -> (mapped: Bool, length: UInt64) {
        let image = self.image
        let size = sizeBytes
        guard offset < size else { return (false, 0) }
        // QEMU asks before its first reads, a query per read in flight, and
        // keeps the whole extent answered: a long answer saves many. Each
        // run costs one look per layer (a scan of its cached entries), so
        // the joining is bounded by runs, not bytes — a shorter extent is a
        // valid answer (SBC-3 §5.6): the initiator asks on from its end.
        let reach = min(size - offset, 1 << 30)
        return try await pool.runIfActive {
            // Runs of clusters in one state are joined (GET LBA STATUS descriptors).
            let first = try image.allocation(at: offset, limit: reach)
            var length = first.length
            var runs = 1
            while length < reach, runs < Self.runsPerAnswer {
                let next = try image.allocation(at: offset + length, limit: reach - length)
                guard next.mapped == first.mapped else { break }
                length += next.length
                runs += 1
            }
            return (first.mapped, length)
        }
    }
}
