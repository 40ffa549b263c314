import NIOConcurrencyHelpers

/// The mode parameters MODE SELECT can change (per LU, current values only).
struct ModeParameters: Sendable, Equatable {
    /// WCE (caching page, SBC-3 §6.4.5): writes may sit in the page cache
    /// until SYNCHRONIZE CACHE or FUA. Cleared, every write is flushed.
    var writeCacheEnabled = true
    /// D_SENSE (control page, SPC-4 §7.5.7): sense in descriptor format.
    var descriptorSense = false
    /// SWP (control page, SPC-4 §7.5.7): the medium is write protected.
    var softwareWriteProtect = false
}

extension LogicalUnit {
    var writeCacheEnabled: Bool { mode.withLockedValue { $0.writeCacheEnabled } }
}

/// MODE SENSE(6)/(10) and MODE SELECT(6)/(10) (SPC-4 §6.11–§6.14): caching
/// (08h), control (0Ah) and informational exceptions control (1Ch) pages.
enum ModePages {
    static func sense(_ lu: LogicalUnit, _ cdb: CDB, ten: Bool) -> SCSIResult {
        let pageCode = cdb[2] & 0x3F
        let subpage = cdb[3]
        let pc = cdb[2] >> 6
        let allocation = ten ? Int(cdb.u16(7)) : Int(cdb[4])
        guard subpage == 0 || (subpage == 0xFF && pageCode == 0x3F) else { return .check(.invalidField(byte: 3)) }
        // Saved values are not supported (SPC-4 §6.11: SAVING PARAMETERS NOT SUPPORTED).
        if pc == 3 { return .check(SCSISense(key: SCSISense.illegalRequest, asc: 0x39, ascq: 0x00)) }
        let current = lu.mode.withLockedValue { $0 }
        // PC 00b current, 01b changeable (a mask), 10b default.
        let values = pc == 2 ? ModeParameters() : current
        let changeable = pc == 1
        var pages: [UInt8] = []
        switch pageCode {
        case 0x08: pages = caching(values, changeable: changeable)
        case 0x0A: pages = control(values, changeable: changeable)
        case 0x1C: pages = exceptions()
        case 0x3F:
            pages = caching(values, changeable: changeable) + control(values, changeable: changeable) + exceptions()
        default: return .check(.invalidField(byte: 2, bit: 5))
        }
        // DEVICE-SPECIFIC PARAMETER (SBC-3 §6.4.1): WP, and DPOFUA since DPO and FUA are honoured.
        let wp: UInt8 = (lu.writeProtected ? 0x80 : 0) | 0x10
        if ten {
            var header = [UInt8](repeating: 0, count: 8)
            header.put16(UInt16(6 + pages.count), at: 0)
            header[3] = wp
            return .ok((header + pages).allocated(allocation))
        }
        return .ok(([UInt8(3 + pages.count), 0, wp, 0] + pages).allocated(allocation))
    }

    static func caching(_ values: ModeParameters, changeable: Bool) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 20)
        p[0] = 0x08
        p[1] = 0x12
        if changeable || values.writeCacheEnabled { p[2] = 0x04 }
        return p
    }

    static func control(_ values: ModeParameters, changeable: Bool) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 12)
        p[0] = 0x0A
        p[1] = 0x0A
        if changeable || values.descriptorSense { p[2] = 0x04 }
        if !changeable { p[3] = 0x10 }  // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
        // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
        if changeable || values.softwareWriteProtect { p[4] = 0x08 }
        return p
    }

    static func exceptions() -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 12)
        p[0] = 0x1C
        p[1] = 0x0A
        return p
    }

    /// MODE SELECT (SPC-4 §6.9, §6.10): the parameter list must carry pages as
    /// MODE SENSE reports them; only the bits the changeable mask shows may
    /// differ. Nothing changes unless the whole list is valid.
    static func select(_ lu: LogicalUnit, _ cdb: CDB, _ data: [UInt8], ten: Bool, nexus: ITNexus) async throws
        -> SCSIResult
    {
        // PF=1 (pages are in the standard format); SP=1 would save, which is not supported.
        guard cdb[1] & 0x10 != 0 else { return .check(.invalidField(byte: 1, bit: 4)) }
        guard cdb[1] & 0x01 == 0 else { return .check(.invalidField(byte: 1, bit: 0)) }
        let length = ten ? Int(cdb.u16(7)) : Int(cdb[4])
        guard length > 0 else { return .ok() }
        guard data.count >= length else { return .check(.parameterListLengthError) }
        let list = Array(data[0..<length])
        let headerLength = ten ? 8 : 4
        guard list.count >= headerLength else { return .check(.parameterListLengthError) }
        let descriptorLength = ten ? Int(list.u16(at: 6)) : Int(list[3])
        // Block descriptor: none, or one saying what READ CAPACITY says (SBC-3 §6.4.2).
        var at = headerLength
        if descriptorLength > 0 {
            guard descriptorLength == 8, list.count >= at + 8 else {
                return .check(.invalidParameter(byte: ten ? 6 : 3))
            }
            let blockLength = Int(list.u24(at: at + 5))
            guard blockLength == lu.device.blockSize else { return .check(.invalidParameter(byte: at + 5)) }
            at += 8
        }
        var next = lu.mode.withLockedValue { $0 }
        while at < list.count {
            guard list.count >= at + 2 else { return .check(.parameterListLengthError) }
            // SPF (subpage format) pages are not supported here.
            guard list[at] & 0x40 == 0 else { return .check(.invalidParameter(byte: at, bit: 6)) }
            let code = list[at] & 0x3F
            let pageLength = Int(list[at + 1])
            guard list.count >= at + 2 + pageLength else { return .check(.parameterListLengthError) }
            let page = Array(list[at..<(at + 2 + pageLength)])
            let ours: [UInt8]
            let mask: [UInt8]
            switch code {
            case 0x08:
                ours = caching(next, changeable: false)
                mask = caching(next, changeable: true)
            case 0x0A:
                ours = control(next, changeable: false)
                mask = control(next, changeable: true)
            case 0x1C:
                ours = exceptions()
                mask = [UInt8](repeating: 0, count: ours.count)
            default:
                return .check(.invalidParameter(byte: at, bit: 5))
            }
            guard page.count == ours.count else { return .check(.invalidParameter(byte: at + 1)) }
            // Byte 0's PS bit is reserved in MODE SELECT; compare from the page code on.
            for k in 2..<page.count where (page[k] ^ ours[k]) & ~mask[k] != 0 {
                return .check(.invalidParameter(byte: at + k))
            }
            switch code {
            case 0x08: next.writeCacheEnabled = page[2] & 0x04 != 0
            case 0x0A:
                next.descriptorSense = page[2] & 0x04 != 0
                next.softwareWriteProtect = page[4] & 0x08 != 0
            default: break
            }
            at += page.count
        }
        let applied = next
        let (cacheTurnedOff, changed) = lu.mode.withLockedValue { mode -> (Bool, Bool) in
            defer { mode = applied }
            return (mode.writeCacheEnabled && !applied.writeCacheEnabled, mode != applied)
        }
        // The other nexuses learn of it by unit attention (SPC-4 §6.9: MODE PARAMETERS CHANGED).
        if changed { lu.announce(.modeParametersChanged, except: nexus) }
        // What the cache held becomes durable before write-through begins.
        if cacheTurnedOff { try await lu.device.flush() }
        return .ok()
    }
}
