/// Logical block provisioning (SBC-3 §4.7): UNMAP, WRITE SAME with UNMAP,
/// GET LBA STATUS, over a backstore that can deallocate (thin volumes).
enum LogicalBlockProvisioning {
    static let all: [SCSIOperation] = [
        .init(opcode: 0x42, name: "UNMAP", cdbLength: 10) { lu, cdb, data in try await unmap(lu, cdb, data) }
    ]

    /// Most blocks one UNMAP or WRITE SAME may deallocate, and descriptors per UNMAP (VPD B0h).
    static let maxUnmapBytes: UInt64 = 256 << 20
    static let maxDescriptors = 256

    /// UNMAP (SBC-3 §5.28): a parameter list of (LBA, count) descriptors.
    static func unmap(_ lu: LogicalUnit, _ cdb: CDB, _ data: [UInt8]) async throws -> SCSIResult {
        // A read-only map of a thin volume, or SWP: WRITE PROTECTED before anything else.
        if lu.writeProtected { return .check(.writeProtected) }
        guard lu.device.canUnmap else { return .check(.invalidOpcode) }
        let anchor = cdb[1] & 0x01 != 0  // ANCHOR (ANC_SUP is set in VPD B2h)
        let parameterLength = Int(cdb.u16(7))
        guard parameterLength > 0 else { return .ok() }
        guard parameterLength >= 8, data.count >= 8 else { return .check(.parameterListLengthError) }
        let p = CDB(data)
        let descriptorsLength = Int(p.u16(2))
        guard descriptorsLength % 16 == 0, 8 + descriptorsLength <= data.count else {
            return .check(.parameterListLengthError)
        }
        guard descriptorsLength / 16 <= maxDescriptors else { return .check(.invalidField(byte: 7)) }
        let bs = UInt64(lu.device.blockSize)
        var ranges: [(UInt64, UInt64)] = []
        for i in 0..<(descriptorsLength / 16) {
            let lba = p.u64(8 + 16 * i)
            let count = p.u32(16 + 16 * i)
            if let refusal = try BlockIO.check(lu, lba: lba, count: count) { return refusal }
            if UInt64(count) * bs > maxUnmapBytes { return .check(.invalidField(byte: 7)) }
            if count > 0 { ranges.append((lba * bs, UInt64(count) * bs)) }
        }
        for (offset, length) in ranges {
            if anchor {
                try await lu.anchor(offset: offset, length: length)
            } else {
                try await lu.unmap(offset: offset, length: length)
            }
        }
        return .ok()
    }

    /// GET LBA STATUS (SBC-3 §5.6): one descriptor for the extent starting at
    /// the given LBA, mapped (0) or deallocated (1), from the file's layout.
    static func getLBAStatus(_ lu: LogicalUnit, _ cdb: CDB) async throws -> SCSIResult {
        let lba = cdb.u64(2)
        let allocation = Int(cdb.u32(10))
        guard lba < lu.blockCount else { return .check(.lbaOutOfRange) }
        let bs = UInt64(lu.device.blockSize)
        let (mapped, length) = try await lu.device.allocation(at: lba * bs)
        let blocks = max(1, min(length / bs, UInt64(UInt32.max)))
        var d = [UInt8](repeating: 0, count: 24)
        d.put32(20, at: 0)
        d.put64(lba, at: 8)
        d.put32(UInt32(blocks), at: 16)
        d[20] = mapped ? 0 : 1
        return .ok(d.allocated(allocation))
    }
}
