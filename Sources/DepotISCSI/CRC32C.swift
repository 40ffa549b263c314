/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the iSCSI header and
/// data digest (RFC 7143 §13.1, RFC 3385). Table-driven, one byte at a time.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum<C: Collection>(_ bytes: C, seed: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        var crc = ~seed
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }

    /// The four bytes as sent on the wire: least significant byte first
    /// (RFC 3720 Appendix B.4 gives 32 zero bytes → aa 36 91 8a).
    static func wire(_ crc: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * UInt32($0))) } }
}

import NIOConcurrencyHelpers

/// Which digests a connection uses; switched on by the login when the full
/// feature phase starts, read by the frame decoder for every PDU.
public final class DigestSettings: Sendable {
    private let state = NIOLockedValueBox<(header: Bool, data: Bool)>((false, false))

    public init() {}

    public var current: (header: Bool, data: Bool) { state.withLockedValue { $0 } }

    public func enable(header: Bool, data: Bool) { state.withLockedValue { $0 = (header, data) } }
}
