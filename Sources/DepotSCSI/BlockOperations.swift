/// Block operations beyond plain READ/WRITE (SBC-3): WRITE AND VERIFY, ORWRITE,
/// WRITE SAME, PRE-FETCH, READ DEFECT DATA.
enum BlockOperations {
    static let all: [SCSIOperation] = [
        .init(opcode: 0x2E, name: "WRITE AND VERIFY(10)", cdbLength: 10) { lu, cdb, data in
            if let refusal = BlockIO.protection(cdb) { return refusal }
            return try await BlockIO.write(
                lu, cdb, lba: UInt64(cdb.u32(2)), count: UInt32(cdb.u16(7)), data: data, fua: true)
        },
        .init(opcode: 0xAE, name: "WRITE AND VERIFY(12)", cdbLength: 12) { lu, cdb, data in
            if let refusal = BlockIO.protection(cdb) { return refusal }
            return try await BlockIO.write(lu, cdb, lba: UInt64(cdb.u32(2)), count: cdb.u32(6), data: data, fua: true)
        },
        .init(opcode: 0x8E, name: "WRITE AND VERIFY(16)", cdbLength: 16) { lu, cdb, data in
            if let refusal = BlockIO.protection(cdb) { return refusal }
            return try await BlockIO.write(lu, cdb, lba: cdb.u64(2), count: cdb.u32(10), data: data, fua: true)
        },
        .init(opcode: 0x8B, name: "ORWRITE(16)", cdbLength: 16) { lu, cdb, data in
            if let refusal = BlockIO.protection(cdb) { return refusal }
            return try await orWrite(lu, cdb, lba: cdb.u64(2), count: cdb.u32(10), data: data, fua: cdb[1] & 0x08 != 0)
        },
        .init(opcode: 0x41, name: "WRITE SAME(10)", cdbLength: 10) { lu, cdb, data in
            if let refusal = BlockIO.protection(cdb) { return refusal }
            return try await writeSame(
                lu, cdb, lba: UInt64(cdb.u32(2)), count: UInt32(cdb.u16(7)), data: data, ndob: false)
        },
        .init(opcode: 0x93, name: "WRITE SAME(16)", cdbLength: 16) { lu, cdb, data in
            if let refusal = BlockIO.protection(cdb) { return refusal }
            return try await writeSame(
                lu, cdb, lba: cdb.u64(2), count: cdb.u32(10), data: data, ndob: cdb[1] & 0x01 != 0)
        },
        .init(opcode: 0x34, name: "PRE-FETCH(10)", cdbLength: 10, access: .read) { lu, cdb, _ in
            try BlockIO.check(lu, lba: UInt64(cdb.u32(2)), count: UInt32(cdb.u16(7))) ?? .ok()
        },
        .init(opcode: 0x90, name: "PRE-FETCH(16)", cdbLength: 16, access: .read) { lu, cdb, _ in
            try BlockIO.check(lu, lba: cdb.u64(2), count: cdb.u32(10)) ?? .ok()
        },
        // READ DEFECT DATA (SBC-3 §5.12, §5.13): a file-backed volume has no
        // defects; the lists asked for are reported valid and empty.
        .init(opcode: 0x37, name: "READ DEFECT DATA(10)", cdbLength: 10, access: .read) { _, cdb, _ in
            .ok([0, cdb[2] & 0x1F, 0, 0].allocated(Int(cdb.u16(7))))
        },
        .init(opcode: 0xB7, name: "READ DEFECT DATA(12)", cdbLength: 12, access: .read) { _, cdb, _ in
            .ok([0, cdb[1] & 0x1F, 0, 0, 0, 0, 0, 0].allocated(Int(cdb.u32(6))))
        },
    ]

    /// MAXIMUM WRITE SAME LENGTH (VPD B0h), in bytes.
    static let maxWriteSameBytes: UInt64 = 32 << 20

    /// ORWRITE (SBC-3 §5.9): medium = medium OR data-out.
    static func orWrite(_ lu: LogicalUnit, _ cdb: CDB, lba: UInt64, count: UInt32, data: [UInt8], fua: Bool)
        async throws -> SCSIResult
    {
        if lu.writeProtected { return .check(.writeProtected) }
        if let refusal = try BlockIO.checkTransfer(lu, cdb, lba: lba, count: count) { return refusal }
        guard count > 0 else { return .ok() }
        let bs = UInt64(lu.device.blockSize)
        // Read, OR, write back as one atomic operation against every other write.
        try await lu.writeGate.exclusive {
            var medium = try await lu.device.read(offset: lba * bs, length: Int(UInt64(count) * bs))
            for i in 0..<min(medium.count, data.count) { medium[i] |= data[i] }
            try await lu.device.write(offset: lba * bs, bytes: medium)
        }
        if fua { try await lu.device.flush() }
        return .ok()
    }

    /// WRITE SAME (SBC-3 §5.41/§5.42): one block of data-out (or zeros with
    /// NDOB) written to every block of the range. NUMBER OF LOGICAL BLOCKS 0
    /// means up to the end of the medium (WSNZ is clear in VPD B0h), within
    /// MAXIMUM WRITE SAME LENGTH like any other count.
    static func writeSame(
        _ lu: LogicalUnit, _ cdb: CDB, lba: UInt64, count requested: UInt32, data: [UInt8], ndob: Bool
    ) async throws -> SCSIResult {
        if lu.writeProtected { return .check(.writeProtected) }
        let unmapBit = cdb[1] & 0x08 != 0
        let countByte = cdb.opcode == 0x41 ? 7 : 10
        // UNMAP only where the LU deallocates (LBPWS/LBPWS10 in VPD B2h); ANCHOR is not supported.
        if unmapBit && !lu.device.canUnmap { return .check(.invalidField(byte: 1, bit: 3)) }
        // ANCHOR only with UNMAP (SBC-3 §5.42).
        let anchor = cdb[1] & 0x10 != 0
        if anchor && !unmapBit { return .check(.invalidField(byte: 1, bit: 4)) }
        if ndob && !unmapBit { return .check(.invalidField(byte: 1, bit: 0)) }
        let bs = lu.device.blockSize
        // The data-out is exactly one block, or nothing with NDOB (SBC-3 §5.42).
        guard data.count == (ndob ? 0 : bs) else { return .check(.invalidField(byte: countByte)) }
        guard lba <= lu.blockCount else { return .check(.lbaOutOfRange) }
        let whole = lu.blockCount - lba
        let count = requested == 0 ? UInt32(clamping: whole) : requested
        if let refusal = try BlockIO.check(lu, lba: lba, count: count) { return refusal }
        if UInt64(requested == 0 ? whole : UInt64(count)) * UInt64(bs) > maxWriteSameBytes {
            return .check(.invalidField(byte: countByte))
        }
        guard count > 0 else { return .ok() }
        let block: [UInt8] = ndob ? [UInt8](repeating: 0, count: bs) : data
        // With UNMAP the range is deallocated and reads back as zeros (LBPRZ), as
        // initiators expect whatever the data-out holds (libiscsi's UnmapUntilEnd, LIO).
        if unmapBit, anchor {
            try await lu.anchor(offset: lba * UInt64(bs), length: UInt64(count) * UInt64(bs))
            return .ok()
        }
        if unmapBit {
            try await lu.unmap(offset: lba * UInt64(bs), length: UInt64(count) * UInt64(bs))
            return .ok()
        }
        let perWrite = max(1, (1 << 20) / bs)
        var done: UInt32 = 0
        while done < count {
            let n = min(UInt32(perWrite), count - done)
            var chunk: [UInt8] = []
            chunk.reserveCapacity(Int(n) * bs)
            for _ in 0..<n { chunk += block }
            try await lu.write(offset: (lba + UInt64(done)) * UInt64(bs), bytes: chunk)
            done += n
        }
        return .ok()
    }
}
