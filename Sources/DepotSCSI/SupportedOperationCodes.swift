/// REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35), generated from the dispatch table.
enum SupportedOperationCodes {
    /// MAINTENANCE IN carries REPORT SUPPORTED OPERATION CODES (0Ch); MAINTENANCE
    /// OUT reaches an LU only for service actions it does not have.
    static let all: [SCSIOperation] = [
        .init(
            opcode: 0xA3, name: "MAINTENANCE IN", cdbLength: 12, serviceActions: [0x0A, 0x0C],
            allowedUnderReservation: true, access: .unrestricted
        ) { _, cdb, _ in
            guard cdb[1] & 0x1F == 0x0C else { return .check(.invalidField(byte: 1, bit: 4)) }
            return SupportedOperationCodes.report(cdb)
        },
        // REPORT / SET TARGET PORT GROUPS (MAINTENANCE IN/OUT 0Ah) are answered by
        // the transport, which owns the portal groups; an LU reached otherwise has none.
        .init(
            opcode: 0xA4, name: "MAINTENANCE OUT", cdbLength: 12, serviceActions: [0x0A], allowedUnderReservation: true,
            access: .unrestricted
        ) { _, _, _ in
            .check(.invalidField(byte: 1, bit: 4))
        },
    ]

    /// The service actions of `opcode`'s table entry (nil: its CDB has none).
    static func serviceActions(of opcode: UInt8) -> [UInt16]? { SCSIOperations.table[opcode]?.serviceActions }

    static func report(_ cdb: CDB) -> SCSIResult {
        let options = cdb[2] & 0x07
        let rctd = cdb[2] & 0x80 != 0
        let opcode = cdb[3]
        let serviceAction = cdb.u16(4)
        let allocation = Int(cdb.u32(6))
        let table = SCSIOperations.table.values.sorted { $0.opcode < $1.opcode }
        func timeouts() -> [UInt8] { rctd ? [0x00, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] : [] }
        switch options {
        case 0:
            var list: [UInt8] = []
            for op in table {
                for sa in op.serviceActions ?? [0] {
                    var d = [UInt8](repeating: 0, count: 8)
                    d[0] = op.opcode
                    d.put16(sa, at: 2)
                    d[5] = (rctd ? 0x02 : 0) | (op.serviceActions != nil ? 0x01 : 0)
                    d.put16(UInt16(op.cdbLength), at: 6)
                    list += d + timeouts()
                }
            }
            var header = [UInt8](repeating: 0, count: 4)
            header.put32(UInt32(list.count), at: 0)
            return .ok((header + list).allocated(allocation))
        case 1, 2:
            // Option 1 names an opcode without service actions, option 2 one with them (SPC-4 §6.35.2).
            let hasServiceActions = serviceActions(of: opcode) != nil
            if options == 1 && hasServiceActions { return .check(.invalidField(byte: 2, bit: 2)) }
            if options == 2 && !hasServiceActions && SCSIOperations.table[opcode] != nil {
                return .check(.invalidField(byte: 2, bit: 2))
            }
            var d = [UInt8](repeating: 0, count: 4)
            d[1] = rctd ? 0x80 : 0
            let supported = SCSIOperations.table[opcode].flatMap { op in
                options == 1 || (op.serviceActions?.contains(serviceAction) ?? false) ? op : nil
            }
            if let op = supported {
                d[1] |= 0x03  // supported, per the standard
                d.put16(UInt16(op.cdbLength), at: 2)
                var usage = [UInt8](repeating: 0xFF, count: op.cdbLength)
                usage[0] = op.opcode
                usage[op.cdbLength - 1] = 0x00
                return .ok((d + usage + timeouts()).allocated(allocation))
            }
            d[1] |= 0x01  // not supported
            return .ok(d.allocated(allocation))
        default:
            return .check(.invalidField(byte: 2, bit: 2))
        }
    }
}
