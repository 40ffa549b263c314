/// MODE SENSE(6)/(10) (SPC-4 §6.11, §6.12): caching (08h), control (0Ah)
/// and informational exceptions control (1Ch) pages.
enum ModePages {
    static func sense(_ lu: LogicalUnit, _ cdb: CDB, ten: Bool) -> SCSIResult {
        let pageCode = cdb[2] & 0x3F
        let subpage = cdb[3]
        let pc = cdb[2] >> 6
        let allocation = ten ? Int(cdb.u16(7)) : Int(cdb[4])
        guard subpage == 0 || (subpage == 0xFF && pageCode == 0x3F) else { return .check(.invalidField(byte: 3)) }
        // Saved values are not supported (SPC-4 §6.11: SAVING PARAMETERS NOT SUPPORTED).
        if pc == 3 { return .check(SCSISense(key: SCSISense.illegalRequest, asc: 0x39, ascq: 0x00)) }
        let changeable = pc == 1
        var pages: [UInt8] = []
        switch pageCode {
        case 0x08: pages = caching(changeable)
        case 0x0A: pages = control(changeable)
        case 0x1C: pages = exceptions(changeable)
        case 0x3F: pages = caching(changeable) + control(changeable) + exceptions(changeable)
        default: return .check(.invalidField(byte: 2, bit: 5))
        }
        // DEVICE-SPECIFIC PARAMETER (SBC-3 §6.4.1): WP, and DPOFUA since DPO and FUA are honoured.
        let wp: UInt8 = (lu.readOnly ? 0x80 : 0) | 0x10
        if ten {
            var header = [UInt8](repeating: 0, count: 8)
            header.put16(UInt16(6 + pages.count), at: 0)
            header[3] = wp
            return .ok((header + pages).allocated(allocation))
        }
        return .ok(([UInt8(3 + pages.count), 0, wp, 0] + pages).allocated(allocation))
    }

    /// WCE=1: writes land in the page cache until SYNCHRONIZE CACHE or FUA.
    static func caching(_ changeable: Bool) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 20)
        p[0] = 0x08
        p[1] = 0x12
        if !changeable { p[2] = 0x04 }
        return p
    }

    static func control(_ changeable: Bool) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 12)
        p[0] = 0x0A
        p[1] = 0x0A
        if !changeable { p[3] = 0x10 }  // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
        return p
    }

    static func exceptions(_ changeable: Bool) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 12)
        p[0] = 0x1C
        p[1] = 0x0A
        return p
    }
}
