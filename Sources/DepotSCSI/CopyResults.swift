import NIOConcurrencyHelpers

extension SCSISense {
    /// OPERATION IN PROGRESS: a copy with that list identifier still runs (SPC-4 §6.4.1).
    static let operationInProgress = SCSISense(key: illegalRequest, asc: 0x00, ascq: 0x16)
}

/// What the copy manager of one LU keeps about copy commands, per I_T nexus
/// and list identifier, for RECEIVE COPY RESULTS (SPC-4 §6.18) and
/// RECEIVE ROD TOKEN INFORMATION (SBC-3 §5.16). A record lives until it is
/// read, replaced by a command with the same list identifier, or its nexus
/// is gone (SPC-4 §6.18.3).
final class CopyResults: Sendable {
    struct Key: Hashable {
        let nexus: ITNexus
        let listID: UInt32
    }

    struct Status {
        /// Sense of the segment that failed; nil when every segment completed.
        var failed: SCSISense?
        var segments: Int
        var bytes: UInt64
        /// The service action that made it (00h EXTENDED COPY, 10h/11h ODX).
        var action: UInt8 = 0
        /// POPULATE TOKEN: the token made.
        var token: [UInt8]?
        var blocks: UInt64 = 0
    }

    private let records = NIOLockedValueBox<(running: Set<Key>, done: [Key: Status])>(([], [:]))
    /// Records kept at most, one dropped to make room (a bound on what
    /// initiators can make the target hold).
    static let kept = 64

    /// Marks a copy as running; false when one with the same key still runs.
    func begin(_ key: Key) -> Bool {
        records.withLockedValue { r in
            guard !r.running.contains(key) else { return false }
            r.running.insert(key)
            r.done[key] = nil
            return true
        }
    }

    func finish(_ key: Key, _ status: Status) {
        records.withLockedValue { r in
            r.running.remove(key)
            if r.done.count >= Self.kept, let oldest = r.done.keys.first { r.done[oldest] = nil }
            r.done[key] = status
        }
    }

    /// The record, removed once read.
    func take(_ key: Key) -> (running: Bool, status: Status?) {
        records.withLockedValue { r in (r.running.contains(key), r.done.removeValue(forKey: key)) }
    }

    func forget(nexus: ITNexus) {
        records.withLockedValue { r in r.done = r.done.filter { $0.key.nexus != nexus } }
    }

    /// THIRD-PARTY COPY IN service actions.
    static func receive(_ lu: LogicalUnit, _ cdb: CDB) -> SCSIResult {
        let allocation = Int(cdb.u32(10))
        let nexus = LogicalUnit.context.nexus
        switch cdb[1] & 0x1F {
        case 0x00:  // COPY STATUS (SPC-4 §6.18.3)
            let (running, status) = lu.copyResults.take(Key(nexus: nexus, listID: UInt32(cdb[2])))
            guard running || status != nil else { return .check(.invalidField(byte: 2)) }
            var d = [UInt8](repeating: 0, count: 12)
            d.put32(8, at: 0)
            // COPY MANAGER STATUS: 00h in progress, 01h completed, 02h completed with error; HDD = 0.
            d[4] = running ? 0x00 : status?.failed == nil ? 0x01 : 0x02
            d.put16(UInt16(clamping: status?.segments ?? 0), at: 5)
            let bytes = status?.bytes ?? 0
            // TRANSFER COUNT UNITS: bytes while they fit, else kibibytes.
            if bytes <= UInt64(UInt32.max) {
                d.put32(UInt32(bytes), at: 8)
            } else {
                d[7] = 0x01
                d.put32(UInt32(clamping: bytes >> 10), at: 8)
            }
            return .ok(d.allocated(allocation))
        case 0x03:  // OPERATING PARAMETERS (SPC-4 §6.18.4)
            var d = [UInt8](repeating: 0, count: 44)
            d[4] = 0x01  // SNLID: copies without a list identifier are supported
            d.put16(UInt16(ExtendedCopy.maxTargetDescriptors), at: 8)
            d.put16(UInt16(ExtendedCopy.maxSegmentDescriptors), at: 10)
            d.put32(UInt32(ExtendedCopy.maxDescriptorListLength), at: 12)
            d.put32(ExtendedCopy.maxSegmentBytes, at: 16)
            d.put16(1, at: 34)  // TOTAL CONCURRENT COPIES
            d[36] = 1  // MAXIMUM CONCURRENT COPIES
            d[37] = 9  // DATA SEGMENT GRANULARITY: 512 bytes (log2)
            d += ExtendedCopy.implementedDescriptors
            d[43] = UInt8(ExtendedCopy.implementedDescriptors.count)
            d.put32(UInt32(d.count - 4), at: 0)
            return .ok(d.allocated(allocation))
        case 0x04:  // FAILED SEGMENT DETAILS (SPC-4 §6.18.5)
            let (running, status) = lu.copyResults.take(Key(nexus: nexus, listID: UInt32(cdb[2])))
            guard !running, let status else { return .check(.invalidField(byte: 2)) }
            var d = [UInt8](repeating: 0, count: 60)
            guard let sense = status.failed else { return .ok(d.allocated(allocation)) }
            let bytes = sense.fixedFormat
            d[56] = 0x02  // COPY COMMAND STATUS: CHECK CONDITION
            d.put16(UInt16(bytes.count), at: 58)
            d += bytes
            d.put32(UInt32(d.count - 4), at: 0)
            return .ok(d.allocated(allocation))
        case 0x05:  // RECEIVE COPY STATUS(LID4) (SPC-4 §6.19)
            let (running, status) = lu.copyResults.take(Key(nexus: nexus, listID: cdb.u32(2)))
            guard !running, let status, status.action == 0x01 else { return .check(.invalidField(byte: 2)) }
            var d = lid4Status(status, units: 0x00, count: status.bytes)  // TRANSFER COUNT in bytes
            d.put32(UInt32(d.count - 4), at: 0)
            return .ok(d.allocated(allocation))
        case 0x07:  // RECEIVE ROD TOKEN INFORMATION (SBC-3 §5.16)
            return Offload.receiveTokenInformation(lu, cdb, nexus: nexus)
        default:
            return .check(.invalidField(byte: 1, bit: 4))
        }
    }

    /// The status part shared by RECEIVE COPY STATUS(LID4) and RECEIVE ROD
    /// TOKEN INFORMATION (SPC-4 table 222): service action, copy operation
    /// status, completion status, sense, transfer count, segments processed.
    /// AVAILABLE DATA (bytes 0-3) is the caller's to fill in.
    static func lid4Status(_ status: Status, units: UInt8, count: UInt64) -> [UInt8] {
        let sense = status.failed?.fixedFormat ?? []
        var d = [UInt8](repeating: 0, count: 32)
        d[4] = status.action
        d[5] = status.failed == nil ? 0x01 : 0x02  // COPY OPERATION STATUS: completed / completed with error
        d[12] = status.failed == nil ? 0x00 : 0x02  // the command's status
        d[13] = UInt8(sense.count)
        d[14] = UInt8(sense.count)
        d[15] = units
        d.put64(count, at: 16)
        d.put16(UInt16(clamping: status.segments), at: 24)
        return d + sense
    }

    /// Third-party Copy VPD page (SPC-4 §7.8.17): supported commands and the
    /// ODX limits Windows reads before it offloads a copy.
    static func vpdPage() -> [UInt8] {
        var page: [UInt8] = []
        // Supported Commands (0001h).
        let commands: [(UInt8, [UInt8])] = [(0x83, [0x00, 0x01, 0x10, 0x11]), (0x84, [0x00, 0x03, 0x04, 0x05, 0x07])]
        var list: [UInt8] = []
        for (opcode, actions) in commands { list += [opcode, UInt8(actions.count)] + actions }
        page += descriptor(0x0001, [UInt8(list.count)] + list)
        // Block Device ROD Token Limits (0000h, SBC-3 §6.6.6).
        var limits = [UInt8](repeating: 0, count: 32)
        // Body offsets: descriptor byte − 4.
        limits.put16(UInt16(Offload.maxRanges), at: 6)  // MAXIMUM RANGE DESCRIPTORS
        limits.put32(Offload.maxInactivity, at: 8)  // MAXIMUM INACTIVITY TIMEOUT (s)
        limits.put32(Offload.defaultInactivity, at: 12)  // DEFAULT INACTIVITY TIMEOUT (s)
        limits.put64(Offload.maxTokenBytes / 512, at: 16)  // MAXIMUM TOKEN TRANSFER SIZE (blocks)
        limits.put64((8 << 20) / 512, at: 24)  // OPTIMAL TRANSFER COUNT (blocks)
        page += descriptor(0x0000, limits)
        // Supported ROD Types (0108h): change-vulnerable point in time copy, block device zero.
        var types = [UInt8](repeating: 0, count: 4)
        types.put16(16, at: 2)
        types += [0x00, 0x80, 0x00, 0x01, 0x03, 0, 0, 0] + [0xFF, 0xFF, 0x00, 0x01, 0x02, 0, 0, 0]
        page += descriptor(0x0108, types)
        return page
    }

    /// A third-party copy descriptor: type, length, body padded to a multiple of four.
    static func descriptor(_ type: UInt16, _ body: [UInt8]) -> [UInt8] {
        let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        var d: [UInt8] = [0, 0, 0, 0]
        d.put16(type, at: 0)
        d.put16(UInt16(padded.count), at: 2)
        return d + padded
    }
}
