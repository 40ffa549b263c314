/// PERSISTENT RESERVE IN (SPC-4 §6.16): the four reports of `PRState`.
extension PRState {
    func report(_ cdb: CDB) -> SCSIResult {
        let allocation = Int(cdb.u16(7))
        var d: [UInt8]
        switch cdb[1] & 0x1F {
        case 0x00:  // READ KEYS (§6.16.2)
            d = header(additional: registrations.count * 8)
            for r in registrations { d += Self.bytes(r.key) }
        case 0x01:  // READ RESERVATION (§6.16.3)
            guard let reservation else { return .ok(header(additional: 0).allocated(allocation)) }
            d = header(additional: 16)
            // The all-registrants types report key 0 (§6.16.3.2).
            d += Self.bytes(reservation.type.allRegistrants ? 0 : reservation.holder?.key ?? 0)
            d += [0, 0, 0, 0, 0, reservation.type.rawValue, 0, 0]
        case 0x02:  // REPORT CAPABILITIES (§6.16.4)
            d = [UInt8](repeating: 0, count: 8)
            d[1] = 8
            d[2] = 0x10 | 0x08 | 0x04 | 0x01  // CRH, SIP_C, ATP_C, PTPL_C
            d[3] = 0x80 | (aptpl ? 0x01 : 0)  // TMV, PTPL_A
            d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02  // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
            d[5] = 0x01  // EX_AC_AR
        case 0x03:  // READ FULL STATUS (§6.16.5)
            var descriptors: [UInt8] = []
            for r in registrations {
                let id = Self.transportID(r)
                var e = Self.bytes(r.key) + [UInt8](repeating: 0, count: 16)
                let holds = reservation.map { $0.type.allRegistrants || $0.holder == r } ?? false
                e[12] = (r.target == nil ? 0x02 : 0) | (holds ? 0x01 : 0)
                if holds, let reservation { e[13] = reservation.type.rawValue }
                e.put16(1, at: 18)  // RELATIVE TARGET PORT IDENTIFIER
                e.put32(UInt32(id.count), at: 20)
                descriptors += e + id
            }
            d = header(additional: descriptors.count) + descriptors
        default:
            return .check(.invalidField(byte: 1, bit: 4))
        }
        return .ok(d.allocated(allocation))
    }

    private func header(additional: Int) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 8)
        d.put32(generation, at: 0)
        d.put32(UInt32(additional), at: 4)
        return d
    }

    static func bytes(_ key: UInt64) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 8)
        d.put64(key, at: 0)
        return d
    }

    /// iSCSI TransportID (SPC-4 §7.6.4.6): format 01b with the ISID, 00b
    /// without; NUL-terminated and padded to a multiple of four, at least 24 bytes.
    static func transportID(_ r: PRRegistration) -> [UInt8] {
        let name = Array((r.isid.map { "\(r.initiator),i,0x\($0)" } ?? r.initiator).utf8) + [0]
        var padded = name + [UInt8](repeating: 0, count: (4 - name.count % 4) % 4)
        if padded.count < 20 { padded += [UInt8](repeating: 0, count: 20 - padded.count) }
        var d: [UInt8] = [(r.isid == nil ? 0x00 : 0x40) | 0x05, 0, 0, 0]
        d.put16(UInt16(padded.count), at: 2)
        return d + padded
    }
}
