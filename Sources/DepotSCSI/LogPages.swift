/// LOG SENSE (SPC-4 §6.8): the supported pages page and the logical block
/// provisioning page (SBC-3 §6.5.1) with the available and used LBA mapping
/// resource counts.
enum LogPages {
    static let all: [SCSIOperation] = [
        .init(opcode: 0x4D, name: "LOG SENSE", cdbLength: 10, access: .unrestricted) { lu, cdb, _ in sense(lu, cdb) }
    ]

    static func sense(_ lu: LogicalUnit, _ cdb: CDB) -> SCSIResult {
        // PPC and SP are not supported; PC 01b (cumulative values) is what is kept.
        if cdb[1] & 0x03 != 0 { return .check(.invalidField(byte: 1, bit: cdb[1] & 0x02 != 0 ? 1 : 0)) }
        let page = cdb[2] & 0x3F
        let subpage = cdb[3]
        let allocation = Int(cdb.u16(7))
        guard subpage == 0 else { return .check(.invalidField(byte: 3)) }
        var body: [UInt8]
        switch page {
        case 0x00:
            body = lu.device.canUnmap ? [0x00, 0x0C] : [0x00]
        case 0x0C where lu.device.canUnmap:
            let unit = UInt64(lu.device.blockSize) << UInt64(lu.thresholdExponent)
            let space = lu.poolSpace.withLockedValue { $0 }
            // SCOPE 10b: the available resources are shared with the pool's other
            // volumes; 01b: the used ones are this LU's own.
            body =
                parameter(0x0001, UInt32(clamping: (space?.availableBytes ?? 0) / unit), scope: 0x02)
                + parameter(0x0002, UInt32(clamping: ((space?.allocatedBytes ?? 0) + unit - 1) / unit), scope: 0x01)
        default:
            return .check(.invalidField(byte: 2, bit: 5))
        }
        var d: [UInt8] = [page, 0, 0, 0]
        d.put16(UInt16(body.count), at: 2)
        return .ok((d + body).allocated(allocation))
    }

    /// A resource count parameter: code, control (binary list), 8 bytes.
    static func parameter(_ code: UInt16, _ count: UInt32, scope: UInt8) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 12)
        p.put16(code, at: 0)
        p[2] = 0x03
        p[3] = 0x08
        p.put32(count, at: 4)
        p[8] = scope
        return p
    }
}
