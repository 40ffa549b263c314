import DepotSCSI
/// CDBs for the property tests over the dispatch table: for an opcode (and
/// service action) of `cdbLength` bytes, every field at zero, each byte at its
/// maximum alone, the 2-, 4- and 8-byte fields at their maximum, every byte
/// 0xFF, and random ones. The table itself comes from the target (REPORT
/// SUPPORTED OPERATION CODES is generated from it), so a new opcode is
/// covered without touching the tests.
public enum HostileCDBs {
    /// One entry of REPORT SUPPORTED OPERATION CODES (all commands format).
    public struct Operation: Sendable, Hashable, CustomStringConvertible {
        public let opcode: UInt8
        public let serviceAction: UInt16?
        public let cdbLength: Int
        public init(opcode: UInt8, serviceAction: UInt16?, cdbLength: Int) {
            self.opcode = opcode
            self.serviceAction = serviceAction
            self.cdbLength = cdbLength
        }
        public var description: String {
            serviceAction.map { "\(hex(opcode))/\(hex(UInt8(truncatingIfNeeded: $0)))" } ?? hex(opcode)
        }
    }

    /// Parses the all-commands list (SPC-4 §6.35.2, table 297): 4-byte header,
    /// then 8-byte descriptors (20 with RCTD).
    public static func operations(from data: [UInt8]) -> [Operation] {
        guard data.count >= 4 else { return [] }
        let length = Int(data.u32(at: 0))
        var at = 4
        var out: [Operation] = []
        while at + 8 <= min(data.count, 4 + length) {
            let flags = data[at + 5]
            let sa = data.u16(at: at + 2)
            out.append(
                Operation(
                    opcode: data[at], serviceAction: flags & 0x01 != 0 ? sa : nil, cdbLength: Int(data.u16(at: at + 6)))
            )
            at += flags & 0x02 != 0 ? 20 : 8
        }
        return out
    }

    /// The CDB variants for `op`, the first ones fixed, then `random` random ones.
    public static func variants(_ op: Operation, random: Int, using rng: inout SeededRandom) -> [[UInt8]] {
        let n = max(6, min(op.cdbLength, 16))
        func base() -> [UInt8] {
            var cdb = [UInt8](repeating: 0, count: n)
            cdb[0] = op.opcode
            if let sa = op.serviceAction { cdb[1] = UInt8(truncatingIfNeeded: sa) & 0x1F }
            return cdb
        }
        /// Keeps the opcode and service action whatever else was set.
        func fix(_ cdb: [UInt8]) -> [UInt8] {
            var c = cdb
            c[0] = op.opcode
            if let sa = op.serviceAction { c[1] = c[1] & 0xE0 | UInt8(truncatingIfNeeded: sa) & 0x1F }
            return c
        }
        var out: [[UInt8]] = [base()]
        // Each byte at its maximum alone (the control byte too: NACA, LINK).
        for i in 1..<n {
            var c = base()
            c[i] = 0xFF
            out.append(fix(c))
        }
        // 2-, 4- and 8-byte fields at their maximum: lengths, LBAs, counts.
        for width in [2, 4, 8] {
            for start in stride(from: 1, to: n - width, by: 1) where start + width <= n - 1 {
                var c = base()
                for k in start..<(start + width) { c[k] = 0xFF }
                out.append(fix(c))
            }
        }
        // Every byte 0xFF, with and without the control byte clear.
        var all = [UInt8](repeating: 0xFF, count: n)
        out.append(fix(all))
        all[n - 1] = 0
        out.append(fix(all))
        for _ in 0..<random {
            var c = rng.bytes(n)
            if rng.oneIn(2) { c[n - 1] = 0 }
            out.append(fix(c))
        }
        return out
    }

    /// Expected data transfer lengths worth trying: zero, small, block-sized,
    /// random, just past the 32 MiB MAXIMUM TRANSFER LENGTH, 2^32 - 1.
    public static func expectedLength(using rng: inout SeededRandom) -> UInt32 {
        switch Int.random(in: 0..<8, using: &rng) {
        case 0: return 0
        case 1: return 512
        case 2: return 4096
        case 3: return UInt32.random(in: 1...65536, using: &rng)
        case 4: return UInt32.random(in: 1...(1 << 20), using: &rng)
        case 5: return (32 << 20) + 4097
        case 6: return 0xFFFF_FFFF
        default: return UInt32.random(in: 0...UInt32.max, using: &rng)
        }
    }
}

func hex(_ b: UInt8) -> String { (b < 16 ? "0" : "") + String(b, radix: 16) }
