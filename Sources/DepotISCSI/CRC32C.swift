import CDepotPosix

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the iSCSI header and
/// data digest (RFC 7143 §13.1, RFC 3385): the SSE4.2 `crc32` instruction
/// eight bytes at a time where the CPU has it, a table otherwise
/// (`depot_crc32c` in CDepotPosix).
public enum CRC32C {
    /// Whether this machine computes it with SSE4.2.
    public static var hardware: Bool { depot_crc32c_hardware() != 0 }

    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        depot_crc32c(seed, bytes.baseAddress, bytes.count)
    }

    public static func checksum<C: Collection>(_ bytes: C, seed: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        if let crc = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0), seed: seed) }) {
            return crc
        }
        return checksum(Array(bytes), seed: seed)
    }

    /// The four bytes as sent on the wire: least significant byte first
    /// (RFC 3720 Appendix B.4 gives 32 zero bytes → aa 36 91 8a).
    static func wire(_ crc: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * UInt32($0))) } }
}
