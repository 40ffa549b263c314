/// Big-endian field access for CDBs and parameter data.
struct CDB {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var opcode: UInt8 { bytes[0] }
    subscript(_ i: Int) -> UInt8 { i < bytes.count ? bytes[i] : 0 }

    func u16(_ at: Int) -> UInt16 { UInt16(self[at]) << 8 | UInt16(self[at + 1]) }
    func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(self[at + $1]) } }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(self[at + $1]) } }
}

extension Array where Element == UInt8 {
    mutating func put16(_ v: UInt16, at i: Int) { self[i] = UInt8(v >> 8); self[i + 1] = UInt8(truncatingIfNeeded: v) }
    mutating func put32(_ v: UInt32, at i: Int) { for k in 0..<4 { self[i + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * k)) } }
    mutating func put64(_ v: UInt64, at i: Int) { for k in 0..<8 { self[i + k] = UInt8(truncatingIfNeeded: v >> (56 - 8 * k)) } }

    /// Truncated to the initiator's ALLOCATION LENGTH (SPC-4 §4.2.5.6).
    public func allocated(_ length: Int) -> [UInt8] { count > length ? Array(self[0..<length]) : self }
}
