/// A CDB or parameter list: big-endian fields, and bytes past the end read
/// as zero (a short CDB is refused by length elsewhere; nothing here traps).
struct CDB {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var opcode: UInt8 { bytes[0] }
    subscript(_ i: Int) -> UInt8 { i >= 0 && i < bytes.count ? bytes[i] : 0 }

    func u16(_ at: Int) -> UInt16 { bytes.u16(at: at) }
    func u24(_ at: Int) -> UInt32 { bytes.u24(at: at) }
    func u32(_ at: Int) -> UInt32 { bytes.u32(at: at) }
    func u64(_ at: Int) -> UInt64 { bytes.u64(at: at) }
}

/// The one set of big-endian field helpers (SCSI and iSCSI fields are all
/// big-endian): readers give 0 for bytes past the end, so a field of a short
/// or hostile buffer never traps; writers need the room.
extension Array where Element == UInt8 {
    public func u16(at i: Int) -> UInt16 { UInt16(byte(i)) << 8 | UInt16(byte(i + 1)) }
    public func u24(at i: Int) -> UInt32 { UInt32(byte(i)) << 16 | UInt32(byte(i + 1)) << 8 | UInt32(byte(i + 2)) }
    public func u32(at i: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(byte(i + $1)) } }
    public func u64(at i: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(byte(i + $1)) } }
    private func byte(_ i: Int) -> UInt8 { i >= 0 && i < count ? self[i] : 0 }

    public mutating func put16(_ v: UInt16, at i: Int) {
        self[i] = UInt8(v >> 8)
        self[i + 1] = UInt8(truncatingIfNeeded: v)
    }
    public mutating func put32(_ v: UInt32, at i: Int) {
        for k in 0..<4 { self[i + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * k)) }
    }
    public mutating func put64(_ v: UInt64, at i: Int) {
        for k in 0..<8 { self[i + k] = UInt8(truncatingIfNeeded: v >> (56 - 8 * k)) }
    }

    /// Truncated to the initiator's ALLOCATION LENGTH (SPC-4 §4.2.5.6).
    public func allocated(_ length: Int) -> [UInt8] { count > length ? Array(self[0..<length]) : self }
}
