/// READ and WRITE bodies shared by every CDB size.
enum BlockIO {
    /// RDPROTECT / WRPROTECT / VRPROTECT (byte 1, bits 7-5): protection
    /// information is not supported, so any non-zero value is refused (SBC-3 §5.8).
    static func protection(_ cdb: CDB) -> SCSIResult? {
        cdb[1] & 0xE0 != 0 ? .check(.invalidField(byte: 1, bit: 7)) : nil
    }

    /// VERIFY with BYTCHK=1 compares the data-out with the medium and answers
    /// MISCOMPARE with the offset of the first differing byte (SBC-3 §5.30).
    static func verify(_ lu: LogicalUnit, _ cdb: CDB, lba: UInt64, count: UInt32, data: [UInt8]) async throws
        -> SCSIResult
    {
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
            return data.withUnsafeBytes { out in (0..<common).first { raw[$0] != out[$0] } }
                ?? (data.count < raw.count ? data.count : nil)
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
        return bytes(count, lu.device.blockSize) > maxTransferBytes
            ? .check(.invalidField(byte: lengthField(cdb.opcode))) : nil
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

    static func write(_ lu: LogicalUnit, _ cdb: CDB, lba: UInt64, count: UInt32, data: [UInt8], fua: Bool) async throws
        -> SCSIResult
    {
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
