/// WRITE ATOMIC(16) (SBC-4 §5.48): the blocks are written as one operation
/// no other command on the LU sees half done (the write gate held
/// exclusively), and are flushed before GOOD so none of it is lost after
/// the status. A crash of the host in the middle can still leave the
/// filesystem's 4 KiB pages of it torn: the backstore keeps no journal.
enum WriteAtomic {
    /// MAXIMUM ATOMIC TRANSFER LENGTH in blocks (VPD B0h bytes 44-47).
    static let maxBlocks: UInt32 = 2048

    static let all: [SCSIOperation] = [
        .init(opcode: 0x9C, name: "WRITE ATOMIC(16)", cdbLength: 16) { lu, cdb, data in
            if let refusal = BlockIO.protection(cdb) { return refusal }
            if lu.writeProtected { return .check(.writeProtected) }
            let lba = cdb.u64(2)
            let count = UInt32(cdb.u16(12))
            if let refusal = try BlockIO.check(lu, lba: lba, count: count) { return refusal }
            if count > maxBlocks { return .check(.invalidField(byte: 12)) }
            guard count > 0 else { return .ok() }
            let bs = lu.device.blockSize
            guard data.count == Int(count) * bs else { return .check(.invalidField(byte: 12)) }
            try await lu.writeGate.exclusive { try await lu.device.write(offset: lba * UInt64(bs), bytes: data) }
            try await lu.device.flush()
            return .ok()
        }
    ]
}
