/// What the SCSI core needs from a backstore (DESIGN.md: the core reaches
/// storage only through this protocol). Offsets and lengths are in bytes.
public protocol BlockDevice: Sendable {
    var blockSize: Int { get }
    /// Size in bytes (a whole number of blocks).
    var sizeBytes: UInt64 { get }
    func read(offset: UInt64, length: Int) async throws -> [UInt8]
    func write(offset: UInt64, bytes: [UInt8]) async throws
    /// Makes every acknowledged write durable (SYNCHRONIZE CACHE, FUA).
    func flush() async throws
}
