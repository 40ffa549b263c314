/// The dispatch table: one entry per opcode (SPC-4 / SBC-3), with its CDB
/// length and handler. REPORT SUPPORTED OPERATION CODES will be generated
/// from the same table.
struct SCSIOperation: Sendable {
    let opcode: UInt8
    let name: String
    let cdbLength: Int
    /// Allowed while another I_T nexus holds an SPC-2 reservation (SPC-2 §5.5.1).
    let allowedUnderReservation: Bool
    let handler: @Sendable (LogicalUnit, CDB, [UInt8]) async throws -> SCSIResult
    /// The handler reads `LogicalUnit.context` (it affects other nexuses or LUs).
    let needsContext: Bool
    /// How it fares under a persistent reservation held by another nexus.
    let access: PRAccess

    init(opcode: UInt8, name: String, cdbLength: Int, allowedUnderReservation: Bool = false, needsContext: Bool = false,
         access: PRAccess = .write, handler: @escaping @Sendable (LogicalUnit, CDB, [UInt8]) async throws -> SCSIResult) {
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
    static let table: [UInt8: SCSIOperation] = {
        let ops: [SCSIOperation] = [
            .init(opcode: 0x00, name: "TEST UNIT READY", cdbLength: 6, access: .unrestricted) { _, _, _ in .ok() },
            .init(opcode: 0x03, name: "REQUEST SENSE", cdbLength: 6, allowedUnderReservation: true, access: .unrestricted) { _, cdb, _ in
                // No deferred errors are kept: report NO SENSE (SPC-4 §6.39).
                .ok(SCSISense(key: 0, asc: 0, ascq: 0).fixedFormat.allocated(Int(cdb[4])))
            },
            .init(opcode: 0x12, name: "INQUIRY", cdbLength: 6, allowedUnderReservation: true, needsContext: true, access: .unrestricted) { lu, cdb, _ in Inquiry.respond(lu, cdb) },
            .init(opcode: 0x1A, name: "MODE SENSE(6)", cdbLength: 6, access: .read) { lu, cdb, _ in ModePages.sense(lu, cdb, ten: false) },
            .init(opcode: 0x5A, name: "MODE SENSE(10)", cdbLength: 10, access: .read) { lu, cdb, _ in ModePages.sense(lu, cdb, ten: true) },
            .init(opcode: 0x15, name: "MODE SELECT(6)", cdbLength: 6, needsContext: true) { lu, cdb, data in try await ModePages.select(lu, cdb, data, ten: false, nexus: LogicalUnit.context.nexus) },
            .init(opcode: 0x55, name: "MODE SELECT(10)", cdbLength: 10, needsContext: true) { lu, cdb, data in try await ModePages.select(lu, cdb, data, ten: true, nexus: LogicalUnit.context.nexus) },
            .init(opcode: 0x1B, name: "START STOP UNIT", cdbLength: 6) { _, _, _ in .ok() },
            .init(opcode: 0x1E, name: "PREVENT ALLOW MEDIUM REMOVAL", cdbLength: 6) { _, _, _ in .ok() },
            .init(opcode: 0x25, name: "READ CAPACITY(10)", cdbLength: 10, allowedUnderReservation: true, access: .unrestricted) { lu, _, _ in
                var d = [UInt8](repeating: 0, count: 8)
                let last = lu.blockCount == 0 ? 0 : lu.blockCount - 1
                d.put32(last > 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(last), at: 0)
                d.put32(UInt32(lu.device.blockSize), at: 4)
                return .ok(d)
            },
            .init(opcode: 0x9E, name: "SERVICE ACTION IN(16)", cdbLength: 16, allowedUnderReservation: true, access: .unrestricted) { lu, cdb, _ in
                if cdb[1] & 0x1F == 0x12, lu.device.canUnmap { return try await Provisioning.getLBAStatus(lu, cdb) }
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
                return try await BlockIO.write(lu, cdb, lba: UInt64(cdb.u32(2)), count: UInt32(cdb.u16(7)), data: data, fua: cdb[1] & 0x08 != 0)
            },
            .init(opcode: 0xAA, name: "WRITE(12)", cdbLength: 12) { lu, cdb, data in
                if let refusal = BlockIO.protection(cdb) { return refusal }
                return try await BlockIO.write(lu, cdb, lba: UInt64(cdb.u32(2)), count: cdb.u32(6), data: data, fua: cdb[1] & 0x08 != 0)
            },
            .init(opcode: 0x8A, name: "WRITE(16)", cdbLength: 16) { lu, cdb, data in
                if let refusal = BlockIO.protection(cdb) { return refusal }
                return try await BlockIO.write(lu, cdb, lba: cdb.u64(2), count: cdb.u32(10), data: data, fua: cdb[1] & 0x08 != 0)
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
                if let refusal = try BlockIO.check(lu, lba: UInt64(cdb.u32(2)), count: UInt32(cdb.u16(7))) { return refusal }
                try await lu.device.flush()
                return .ok()
            },
            .init(opcode: 0x91, name: "SYNCHRONIZE CACHE(16)", cdbLength: 16) { lu, cdb, _ in
                if let refusal = try BlockIO.check(lu, lba: cdb.u64(2), count: cdb.u32(10)) { return refusal }
                try await lu.device.flush()
                return .ok()
            },
        ]
        return Dictionary(uniqueKeysWithValues: (ops + MoreOperations.all + Reservations.all + Provisioning.all + CompareAndWrite.all + WriteAtomic.all + ExtendedCopy.all + Sanitize.all + LogPages.all).map { ($0.opcode, $0) })
    }()
}

/// READ and WRITE bodies shared by every CDB size.
enum BlockIO {
    /// RDPROTECT / WRPROTECT / VRPROTECT (byte 1, bits 7-5): protection
    /// information is not supported, so any non-zero value is refused (SBC-3 §5.8).
    static func protection(_ cdb: CDB) -> SCSIResult? {
        cdb[1] & 0xE0 != 0 ? .check(.invalidField(byte: 1, bit: 7)) : nil
    }

    /// VERIFY with BYTCHK=1 compares the data-out with the medium and answers
    /// MISCOMPARE with the offset of the first differing byte (SBC-3 §5.30).
    static func verify(_ lu: LogicalUnit, _ cdb: CDB, lba: UInt64, count: UInt32, data: [UInt8]) async throws -> SCSIResult {
        if let refusal = protection(cdb) { return refusal }
        if let refusal = try check(lu, lba: lba, count: count) { return refusal }
        let bytchk = (cdb[1] >> 1) & 0x3
        guard bytchk != 0, count > 0 else { return .ok() }
        guard bytchk == 1 else { return .check(.invalidField(byte: 1, bit: 2)) }
        // With BYTCHK the medium is read to compare: MAXIMUM TRANSFER LENGTH applies.
        if let refusal = try checkTransfer(lu, cdb, lba: lba, count: count) { return refusal }
        let bs = UInt64(lu.device.blockSize)
        // Compared where it was read: no second copy of up to 32 MiB.
        let medium = try await lu.device.readBuffer(offset: lba * bs, length: Int(UInt64(count) * bs))
        let differs: Int? = medium.withUnsafeReadableBytes { raw in
            let common = min(raw.count, data.count)
            return data.withUnsafeBytes { out in (0..<common).first { raw[$0] != out[$0] } } ?? (data.count < raw.count ? data.count : nil)
        }
        if let first = differs {
            return .check(SCSISense(key: 0x0E, asc: 0x1D, ascq: 0x00, information: UInt32(truncatingIfNeeded: first)))
        }
        return .ok()
    }

    /// Bytes of data-out a CDB asks for (writes, VERIFY with BYTCHK): the
    /// transport compares it with the expected transfer length for residuals.
    static func dataOutLength(_ cdb: CDB, blockSize: Int) -> Int? {
        // Block counts of up to 2^32 times the block size: computed saturating.
        func blocks(_ count: UInt32) -> Int { bytes(count, blockSize) }
        switch cdb.opcode {
        case 0x0A: return blocks(cdb[4] == 0 ? 256 : UInt32(cdb[4]))
        case 0x2A: return blocks(UInt32(cdb.u16(7)))
        case 0xAA: return blocks(cdb.u32(6))
        case 0x8A: return blocks(cdb.u32(10))
        case 0x2F: return (cdb[1] >> 1) & 0x3 == 1 ? blocks(UInt32(cdb.u16(7))) : 0
        case 0xAF: return (cdb[1] >> 1) & 0x3 == 1 ? blocks(cdb.u32(6)) : 0
        case 0x8F: return (cdb[1] >> 1) & 0x3 == 1 ? blocks(cdb.u32(10)) : 0
        case 0x2E: return blocks(UInt32(cdb.u16(7)))
        case 0xAE: return blocks(cdb.u32(6))
        case 0x8E, 0x8B: return blocks(cdb.u32(10))
        case 0x9C: return blocks(UInt32(cdb.u16(12)))
        case 0x83: return Int(cdb.u32(10))
        case 0x48: return Int(cdb.u16(7))
        case 0xA4: return Int(cdb.u32(6))
        // WRITE SAME: the handler checks for exactly one block (or none with NDOB).
        case 0x41, 0x93: return nil
        case 0x42: return Int(cdb.u16(7))
        case 0x15: return Int(cdb[4])
        case 0x55: return Int(cdb.u16(7))
        case 0x5F: return Int(cdb.u32(5))
        // COMPARE AND WRITE: the handler checks the length itself (2 × blocks; SBC-3 §5.2).
        case 0x89: return nil
        default: return nil
        }
    }

    /// nil when `[lba, lba+count)` lies inside the LU, else LBA OUT OF RANGE.
    static func check(_ lu: LogicalUnit, lba: UInt64, count: UInt32) throws -> SCSIResult? {
        let (end, overflow) = lba.addingReportingOverflow(UInt64(count))
        return overflow || end > lu.blockCount ? .check(.lbaOutOfRange) : nil
    }

    /// MAXIMUM TRANSFER LENGTH (VPD B0h), in bytes: what one command may move.
    static let maxTransferBytes = 32 << 20

    /// `check`, then MAXIMUM TRANSFER LENGTH: a command that would move more
    /// than VPD B0h allows is refused with INVALID FIELD IN CDB pointing at
    /// the TRANSFER LENGTH field (SBC-3 §6.5.3), before any buffer is made for
    /// it. Without this a READ(16) of a whole large LU would be one allocation
    /// of the LU's size, chosen by the peer.
    static func checkTransfer(_ lu: LogicalUnit, _ cdb: CDB, lba: UInt64, count: UInt32) throws -> SCSIResult? {
        if let refusal = try check(lu, lba: lba, count: count) { return refusal }
        return bytes(count, lu.device.blockSize) > maxTransferBytes ? .check(.invalidField(byte: lengthField(cdb.opcode))) : nil
    }

    /// `blocks` × `blockSize` in bytes, saturating (no trap for any peer value).
    static func bytes(_ blocks: UInt32, _ blockSize: Int) -> Int {
        let (product, overflow) = Int(blocks).multipliedReportingOverflow(by: blockSize)
        return overflow ? .max : product
    }

    /// The CDB byte where the TRANSFER LENGTH field of a READ/WRITE/VERIFY form starts.
    static func lengthField(_ opcode: UInt8) -> Int {
        switch opcode {
        case 0x08, 0x0A: return 4
        case 0x28, 0x2A, 0x2E, 0x2F: return 7
        case 0xA8, 0xAA, 0xAE, 0xAF: return 6
        default: return 10
        }
    }

    static func read(_ lu: LogicalUnit, _ cdb: CDB, lba: UInt64, count: UInt32) async throws -> SCSIResult {
        if let refusal = try checkTransfer(lu, cdb, lba: lba, count: count) { return refusal }
        guard count > 0 else { return .ok() }
        let bs = UInt64(lu.device.blockSize)
        return .ok(bulk: try await lu.device.readBuffer(offset: lba * bs, length: Int(UInt64(count) * bs)))
    }

    static func write(_ lu: LogicalUnit, _ cdb: CDB, lba: UInt64, count: UInt32, data: [UInt8], fua: Bool) async throws -> SCSIResult {
        if lu.writeProtected { return .check(.writeProtected) }
        if let refusal = try checkTransfer(lu, cdb, lba: lba, count: count) { return refusal }
        guard count > 0 else { return .ok() }
        let bs = lu.device.blockSize
        let length = Int(count) * bs
        // The transport reports a short transfer as a residual; write what arrived, in whole blocks.
        let usable = min(length, data.count / bs * bs)
        if usable > 0 {
            try await lu.write(offset: lba * UInt64(bs), bytes: usable == data.count ? data : Array(data[0..<usable]))
        }
        // With the write cache disabled (WCE=0, SBC-3 §6.4.5) every write is write-through.
        if fua || !lu.writeCacheEnabled { try await lu.device.flush() }
        return .ok()
    }
}
