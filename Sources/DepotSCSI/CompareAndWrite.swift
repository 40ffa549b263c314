/// COMPARE AND WRITE (SBC-3 §5.2), the VAAI "atomic test and set": the
/// first half of the data-out is compared with the medium and, only if it
/// matches, the second half is written — atomically against every other
/// write to the LU (the LU's write gate held exclusively).
enum CompareAndWrite {
    /// MAXIMUM COMPARE AND WRITE LENGTH in blocks (VPD B0h byte 5).
    static let maxBlocks: UInt8 = 255

    static let all: [SCSIOperation] = [
        .init(opcode: 0x89, name: "COMPARE AND WRITE", cdbLength: 16) { lu, cdb, data in try await run(lu, cdb, data) }
    ]

    static func run(_ lu: LogicalUnit, _ cdb: CDB, _ data: [UInt8]) async throws -> SCSIResult {
        if let refusal = BlockIO.protection(cdb) { return refusal }
        if lu.writeProtected { return .check(.writeProtected) }
        let lba = cdb.u64(2)
        let count = cdb[13]
        if count > maxBlocks { return .check(.invalidField(byte: 13)) }
        if let refusal = try BlockIO.check(lu, lba: lba, count: UInt32(count)) { return refusal }
        let bs = lu.device.blockSize
        let length = Int(count) * bs
        // The data-out must be exactly the verify and the write data.
        guard data.count == 2 * length else { return .check(.invalidField(byte: 13)) }
        // No blocks: nothing compared or written, not an error (SBC-3 §5.2).
        guard count > 0 else { return .ok() }
        let offset = lba * UInt64(bs)
        let miscompare: Int? = try await lu.writeGate.exclusive {
            let medium = try await lu.device.read(offset: offset, length: length)
            if let first = (0..<length).first(where: { medium[$0] != data[$0] }) { return first }
            try await lu.device.write(offset: offset, bytes: Array(data[length...]))
            return nil
        }
        if let first = miscompare {
            // MISCOMPARE DURING VERIFY OPERATION, INFORMATION = offset of the first differing byte.
            return .check(SCSISense(key: 0x0E, asc: 0x1D, ascq: 0x00, information: UInt32(first)))
        }
        if cdb[1] & 0x08 != 0 || !lu.writeCacheEnabled { try await lu.device.flush() }
        return .ok()
    }
}
