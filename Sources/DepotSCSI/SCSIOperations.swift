/// The dispatch table: one entry per opcode (SPC-4 / SBC-3), with its name
/// (in logs), CDB length and handler. REPORT SUPPORTED OPERATION CODES is
/// generated from the same table.
struct SCSIOperation: Sendable {
    let opcode: UInt8
    let name: String
    let cdbLength: Int
    /// The service actions this opcode implements (SPC-4 §4.2.5.4), nil when
    /// its CDB has none: REPORT SUPPORTED OPERATION CODES lists them.
    let serviceActions: [UInt16]?
    /// Allowed while another I_T nexus holds an SPC-2 reservation (SPC-2 §5.5.1).
    let allowedUnderReservation: Bool
    let handler: @Sendable (LogicalUnit, CDB, [UInt8]) async throws -> SCSIResult
    /// The handler reads `LogicalUnit.context` (it affects other nexuses or LUs).
    let needsContext: Bool
    /// How it fares under a persistent reservation held by another nexus.
    let access: PRAccess

    init(
        opcode: UInt8, name: String, cdbLength: Int, serviceActions: [UInt16]? = nil,
        allowedUnderReservation: Bool = false, needsContext: Bool = false,
        access: PRAccess = .write, handler: @escaping @Sendable (LogicalUnit, CDB, [UInt8]) async throws -> SCSIResult
    ) {
        self.serviceActions = serviceActions
        self.needsContext = needsContext
        self.access = access
        self.opcode = opcode
        self.name = name
        self.cdbLength = cdbLength
        self.allowedUnderReservation = allowedUnderReservation
        self.handler = handler
    }
}

enum SCSIOperations {
    /// The operation's name for logs ("WRITE(16)"), or its opcode in hex.
    static func name(of opcode: UInt8) -> String { table[opcode]?.name ?? "opcode \(String(opcode, radix: 16))h" }

    static let table: [UInt8: SCSIOperation] = {
        let ops: [SCSIOperation] = [
            .init(opcode: 0x00, name: "TEST UNIT READY", cdbLength: 6, access: .unrestricted) { _, _, _ in .ok() },
            .init(
                opcode: 0x03, name: "REQUEST SENSE", cdbLength: 6, allowedUnderReservation: true, access: .unrestricted
            ) { _, cdb, _ in
                // No deferred errors are kept: report NO SENSE (SPC-4 §6.39).
                .ok(SCSISense(key: 0, asc: 0, ascq: 0).fixedFormat.allocated(Int(cdb[4])))
            },
            .init(
                opcode: 0x12, name: "INQUIRY", cdbLength: 6, allowedUnderReservation: true, needsContext: true,
                access: .unrestricted
            ) { lu, cdb, _ in Inquiry.respond(lu, cdb) },
            .init(opcode: 0x1A, name: "MODE SENSE(6)", cdbLength: 6, access: .read) { lu, cdb, _ in
                ModePages.sense(lu, cdb, ten: false)
            },
            .init(opcode: 0x5A, name: "MODE SENSE(10)", cdbLength: 10, access: .read) { lu, cdb, _ in
                ModePages.sense(lu, cdb, ten: true)
            },
            .init(opcode: 0x15, name: "MODE SELECT(6)", cdbLength: 6, needsContext: true) { lu, cdb, data in
                try await ModePages.select(lu, cdb, data, ten: false, nexus: LogicalUnit.context.nexus)
            },
            .init(opcode: 0x55, name: "MODE SELECT(10)", cdbLength: 10, needsContext: true) { lu, cdb, data in
                try await ModePages.select(lu, cdb, data, ten: true, nexus: LogicalUnit.context.nexus)
            },
            .init(opcode: 0x1B, name: "START STOP UNIT", cdbLength: 6) { _, _, _ in .ok() },
            .init(opcode: 0x1E, name: "PREVENT ALLOW MEDIUM REMOVAL", cdbLength: 6) { _, _, _ in .ok() },
            .init(
                opcode: 0x25, name: "READ CAPACITY(10)", cdbLength: 10, allowedUnderReservation: true,
                access: .unrestricted
            ) { lu, _, _ in
                var d = [UInt8](repeating: 0, count: 8)
                let last = lu.blockCount == 0 ? 0 : lu.blockCount - 1
                d.put32(last > 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(last), at: 0)
                d.put32(UInt32(lu.device.blockSize), at: 4)
                return .ok(d)
            },
            .init(
                opcode: 0x9E, name: "SERVICE ACTION IN(16)", cdbLength: 16, serviceActions: [0x10],
                allowedUnderReservation: true, access: .unrestricted
            ) { lu, cdb, _ in
                if cdb[1] & 0x1F == 0x12, lu.device.canUnmap {
                    return try await LogicalBlockProvisioning.getLBAStatus(lu, cdb)
                }
                guard cdb[1] & 0x1F == 0x10 else { return .check(.invalidField(byte: 1, bit: 4)) }
                // READ CAPACITY(16) (SBC-3 §5.16).
                var d = [UInt8](repeating: 0, count: 32)
                d.put64(lu.blockCount == 0 ? 0 : lu.blockCount - 1, at: 0)
                d.put32(UInt32(lu.device.blockSize), at: 8)
                // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT stays 0: with it set, libiscsi's
                // GetLBAStatus.UnmapSingle expects a descriptor that does not hold the
                // requested LBA, which SBC-3 §5.6 forbids.
                // LBPME and LBPRZ: thin LUs deallocate, and deallocated blocks read as zeros.
                if lu.device.canUnmap { d[14] = 0xC0 }
                return .ok(d.allocated(Int(cdb.u32(10))))
            },
            .init(opcode: 0x08, name: "READ(6)", cdbLength: 6, access: .read) { lu, cdb, _ in
                let lba = UInt64(cdb.u32(0) & 0x1F_FFFF)
                let count = cdb[4] == 0 ? 256 : UInt32(cdb[4])
                return try await BlockIO.read(lu, cdb, lba: lba, count: count)
            },
            .init(opcode: 0x28, name: "READ(10)", cdbLength: 10, access: .read) { lu, cdb, _ in
                if let refusal = BlockIO.protection(cdb) { return refusal }
                return try await BlockIO.read(lu, cdb, lba: UInt64(cdb.u32(2)), count: UInt32(cdb.u16(7)))
            },
            .init(opcode: 0xA8, name: "READ(12)", cdbLength: 12, access: .read) { lu, cdb, _ in
                if let refusal = BlockIO.protection(cdb) { return refusal }
                return try await BlockIO.read(lu, cdb, lba: UInt64(cdb.u32(2)), count: cdb.u32(6))
            },
            .init(opcode: 0x88, name: "READ(16)", cdbLength: 16, access: .read) { lu, cdb, _ in
                if let refusal = BlockIO.protection(cdb) { return refusal }
                return try await BlockIO.read(lu, cdb, lba: cdb.u64(2), count: cdb.u32(10))
            },
            .init(opcode: 0x0A, name: "WRITE(6)", cdbLength: 6) { lu, cdb, data in
                let lba = UInt64(cdb.u32(0) & 0x1F_FFFF)
                let count = cdb[4] == 0 ? 256 : UInt32(cdb[4])
                return try await BlockIO.write(lu, cdb, lba: lba, count: count, data: data, fua: false)
            },
            .init(opcode: 0x2A, name: "WRITE(10)", cdbLength: 10) { lu, cdb, data in
                if let refusal = BlockIO.protection(cdb) { return refusal }
                return try await BlockIO.write(
                    lu, cdb, lba: UInt64(cdb.u32(2)), count: UInt32(cdb.u16(7)), data: data, fua: cdb[1] & 0x08 != 0)
            },
            .init(opcode: 0xAA, name: "WRITE(12)", cdbLength: 12) { lu, cdb, data in
                if let refusal = BlockIO.protection(cdb) { return refusal }
                return try await BlockIO.write(
                    lu, cdb, lba: UInt64(cdb.u32(2)), count: cdb.u32(6), data: data, fua: cdb[1] & 0x08 != 0)
            },
            .init(opcode: 0x8A, name: "WRITE(16)", cdbLength: 16) { lu, cdb, data in
                if let refusal = BlockIO.protection(cdb) { return refusal }
                return try await BlockIO.write(
                    lu, cdb, lba: cdb.u64(2), count: cdb.u32(10), data: data, fua: cdb[1] & 0x08 != 0)
            },
            .init(opcode: 0x2F, name: "VERIFY(10)", cdbLength: 10, access: .read) { lu, cdb, data in
                try await BlockIO.verify(lu, cdb, lba: UInt64(cdb.u32(2)), count: UInt32(cdb.u16(7)), data: data)
            },
            .init(opcode: 0xAF, name: "VERIFY(12)", cdbLength: 12, access: .read) { lu, cdb, data in
                try await BlockIO.verify(lu, cdb, lba: UInt64(cdb.u32(2)), count: cdb.u32(6), data: data)
            },
            .init(opcode: 0x8F, name: "VERIFY(16)", cdbLength: 16, access: .read) { lu, cdb, data in
                try await BlockIO.verify(lu, cdb, lba: cdb.u64(2), count: cdb.u32(10), data: data)
            },
            .init(opcode: 0x35, name: "SYNCHRONIZE CACHE(10)", cdbLength: 10) { lu, cdb, _ in
                if let refusal = try BlockIO.check(lu, lba: UInt64(cdb.u32(2)), count: UInt32(cdb.u16(7))) {
                    return refusal
                }
                try await lu.device.flush()
                return .ok()
            },
            .init(opcode: 0x91, name: "SYNCHRONIZE CACHE(16)", cdbLength: 16) { lu, cdb, _ in
                if let refusal = try BlockIO.check(lu, lba: cdb.u64(2), count: cdb.u32(10)) { return refusal }
                try await lu.device.flush()
                return .ok()
            },
        ]
        return Dictionary(
            uniqueKeysWithValues: (ops + BlockOperations.all + SupportedOperationCodes.all + Reservations.all
                + LogicalBlockProvisioning.all + CompareAndWrite.all + WriteAtomic.all + ExtendedCopy.all + Sanitize.all
                + LogPages.all).map { ($0.opcode, $0) })
    }()
}
