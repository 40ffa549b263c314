/// REPORT LUNS (SPC-4 §6.33), answered for the target by any LUN, mapped or
/// not; LUN numbers in the single-level formats of SAM-5 §4.7.
public enum ReportLUNs {
    static func answer(_ numbers: [UInt16], cdb bytes: [UInt8]) -> SCSIResult {
        let cdb = CDB(bytes)
        guard cdb[2] <= 0x02 else { return .check(.invalidField(byte: 2)) }
        let allocation = Int(cdb.u32(6))
        guard allocation >= 16 else { return .check(.invalidField(byte: 6)) }
        var d = [UInt8](repeating: 0, count: 8)
        d.put32(UInt32(numbers.count * 8), at: 0)
        for n in numbers.sorted() { d += field(n) }
        return .ok(d.allocated(allocation))
    }

    /// The LUN number in an 8-byte LUN field: peripheral (00b) and flat (01b)
    /// addressing; nil for the other methods.
    public static func number(_ first: UInt8, _ second: UInt8) -> UInt16? {
        switch first >> 6 {
        case 0: return first == 0 ? UInt16(second) : nil
        case 1: return UInt16(first & 0x3F) << 8 | UInt16(second)
        default: return nil
        }
    }

    /// The same from a LUN field's bytes.
    public static func number(_ field: [UInt8]) -> UInt16? { field.count >= 2 ? number(field[0], field[1]) : nil }

    /// The LUN field for `lun`: peripheral below 256, flat above.
    public static func field(_ lun: UInt16) -> [UInt8] {
        lun < 256
            ? [0, UInt8(lun), 0, 0, 0, 0, 0, 0]
            : [0x40 | UInt8(lun >> 8), UInt8(truncatingIfNeeded: lun), 0, 0, 0, 0, 0, 0]
    }
}
