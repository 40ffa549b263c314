/// The fast lane: READ and WRITE (10) and (16) that a transport may run
/// itself, synchronously, straight between its receive/send buffers and the
/// page cache, without the general dispatch (`execute`). Only commands whose
/// outcome is plain GOOD with the whole transfer qualify; everything that
/// could end otherwise — a check condition, a reservation, SANITIZE, write
/// protection, ODX tokens, an exhausted pool — is declined up front and takes
/// the general path, which applies every rule. A durable write (FUA, WCE=0)
/// qualifies; the transport answers it once `device.flush()` has returned.
extension LogicalUnit {
    public struct PlainTransfer: Sendable {
        public let isWrite: Bool
        /// A write that must be on stable storage before GOOD: FUA (SBC-3
        /// §5.40), or any write while the write cache is off (WCE=0, §6.4.5).
        public let durable: Bool
        /// Byte offset and length on the medium.
        public let offset: UInt64
        public let length: Int
    }

    /// The transfer a CDB asks for when it qualifies for the fast lane, else nil.
    /// `cdb` holds at least 16 bytes (the iSCSI CDB field).
    public func plainTransfer(_ cdb: UnsafeRawBufferPointer) -> PlainTransfer? {
        func be(_ at: Int, _ count: Int) -> UInt64 { (0..<count).reduce(0) { $0 << 8 | UInt64(cdb[at + $1]) } }
        let lba: UInt64
        let count: UInt64
        let control: UInt8
        switch cdb[0] {
        case 0x28, 0x2A:
            (lba, count, control) = (be(2, 4), be(7, 2), cdb[9])
        case 0x88, 0x8A:
            (lba, count, control) = (be(2, 8), be(10, 4), cdb[15])
        default:
            return nil
        }
        let isWrite = cdb[0] & 0x02 != 0
        // RDPROTECT/WRPROTECT (SBC-3 §5.8) and NACA/LINK (SAM-5 §5.2) are the general path's.
        guard cdb[1] & 0xE0 == 0, control & 0x05 == 0, count > 0 else { return nil }
        let (end, overflow) = lba.addingReportingOverflow(count)
        guard !overflow, end <= blockCount else { return nil }
        guard !sanitizeActive, !reservationHeld, !persistentReservations.inForce else { return nil }
        var durable = false
        if isWrite {
            guard !readOnly, !spaceExhausted.load(ordering: .relaxed), liveTokens.load(ordering: .relaxed) == 0 else {
                return nil
            }
            let (protected, writeBack) = mode.withLockedValue { ($0.softwareWriteProtect, $0.writeCacheEnabled) }
            guard !protected else { return nil }
            durable = cdb[1] & 0x08 != 0 || !writeBack
        }
        let blockSize = UInt64(device.blockSize)
        return PlainTransfer(
            isWrite: isWrite, durable: durable, offset: lba * blockSize, length: Int(count * blockSize))
    }

    /// Reads a plain transfer into `into` if the page cache holds it.
    public func readNow(_ transfer: PlainTransfer, into: UnsafeMutableRawBufferPointer) -> Bool {
        device.readNow(offset: transfer.offset, into: into)
    }

    /// Writes a plain transfer on the caller's thread if the device allows
    /// it and no atomic operation (COMPARE AND WRITE, WRITE ATOMIC) runs or
    /// waits; false: nothing was acknowledged, use the general path.
    public func writeNow(_ transfer: PlainTransfer, from: UnsafeRawBufferPointer) -> Bool {
        guard writeGate.tryEnterShared() else { return false }
        defer { writeGate.leaveShared() }
        return device.writeNow(offset: transfer.offset, from: from)
    }

    /// Whether a CDB is a SYNCHRONIZE CACHE (10) or (16) the fast lane may
    /// answer after a flush (SBC-3 §5.22, §5.23): IMMED clear (with it set the
    /// general path answers first and flushes after), the range inside the
    /// medium (else LBA OUT OF RANGE is the general path's), no NACA/LINK, no
    /// SANITIZE, no reservation of either kind. The whole device is flushed
    /// whatever the range: more than asked, never less.
    public func plainSync(_ cdb: UnsafeRawBufferPointer) -> Bool {
        func be(_ at: Int, _ count: Int) -> UInt64 { (0..<count).reduce(0) { $0 << 8 | UInt64(cdb[at + $1]) } }
        let lba: UInt64
        let count: UInt64
        let control: UInt8
        switch cdb[0] {
        case 0x35: (lba, count, control) = (be(2, 4), be(7, 2), cdb[9])
        case 0x91: (lba, count, control) = (be(2, 8), be(10, 4), cdb[15])
        default: return false
        }
        guard cdb[1] & 0x02 == 0, control & 0x05 == 0 else { return false }
        let (end, overflow) = lba.addingReportingOverflow(count)
        guard !overflow, end <= blockCount else { return false }
        return !sanitizeActive && !reservationHeld && !persistentReservations.inForce
    }
}
