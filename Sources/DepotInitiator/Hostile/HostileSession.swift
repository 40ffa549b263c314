import DepotISCSI

/// A logged-in session that sends whatever it is told, answers the target's
/// R2Ts (with the data asked for, or on purpose wrong), and checks every
/// PDU that comes back with `AnswerCheck`. The property tests and
/// `depot-bench fuzz-net` drive the target with it.
public final class HostileSession {
    public let raw: RawInitiator
    /// Every malformed answer seen, with the command that drew it.
    public private(set) var problems: [String] = []
    /// PDUs received, by opcode.
    public private(set) var answers: [UInt8: Int] = [:]

    /// Random bytes Data-Out is cut from (fresh bytes per megabyte would cost more than the target's work).
    private let noise: [UInt8]

    public init(_ raw: RawInitiator, seed: UInt64 = 1) {
        self.raw = raw
        var rng = SeededRandom(seed: seed)
        noise = rng.bytes(1 << 20)
    }

    func noiseBytes(_ count: Int, at: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var k = at % noise.count
        while out.count < count {
            let n = min(count - out.count, noise.count - k)
            out += noise[k..<(k + n)]
            k = 0
        }
        return out
    }

    /// How a command ended.
    public enum Outcome: Equatable {
        case status(UInt8)
        case rejected(UInt8)
        /// Nothing came back in time (a command the target may ignore).
        case silent
        case closed
    }

    func note(_ pdu: ISCSIFrame, _ what: String) {
        answers[pdu.opcodeByte, default: 0] += 1
        if let problem = AnswerCheck.problem(pdu) { problems.append("\(what): \(problem)") }
    }

    /// Sends one SCSI Command PDU with the given flags (F is always set:
    /// the whole command is in it), expected length and immediate data, and
    /// receives until its status, a Reject of it, or the connection's end.
    /// R2Ts are answered; with `lieInDataOut` the Data-Out is sometimes
    /// wrong (offset, length, DataSN, TTT).
    public func exchange(
        cdb: [UInt8], flags: UInt8, expected: UInt32, immediate: [UInt8], lun: UInt8 = 0, immediateBit: Bool = false,
        lieInDataOut: Bool = false, rng: inout SeededRandom, what: String
    ) throws -> Outcome {
        var pdu = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
        pdu.bhs[0] = 0x01 | (immediateBit ? 0x40 : 0)
        pdu.bhs[1] = 0x80 | (flags & 0x67)
        pdu.bhs[9] = lun
        let tag = raw.nextTag
        raw.nextTag &+= 1
        if raw.nextTag == 0xFFFF_FFFF { raw.nextTag = 1 }
        pdu.initiatorTaskTag = tag
        pdu.put32(expected, 20)
        pdu.put32(raw.cmdSN, 24)
        pdu.put32(raw.expStatSN, 28)
        if !immediateBit { raw.cmdSN &+= 1 }
        pdu.bhs.replaceSubrange(32..<(32 + min(cdb.count, 16)), with: cdb.prefix(16))
        pdu.data = immediate
        try raw.send(pdu)
        var r2ts = 0
        while true {
            let next: ISCSIFrame?
            do { next = try raw.receive() } catch { return .silent }
            guard let next else { return .closed }
            note(next, what)
            switch next.opcodeByte {
            case 0x21 where next.initiatorTaskTag == tag:
                return .status(next.bhs[3])
            case 0x25 where next.initiatorTaskTag == tag && next.flags & 0x01 != 0:
                return .status(next.bhs[3])
            case 0x3F
            where next.data.count == 48 && Array(next.data[16..<20]) == Array(pdu.bhs[16..<20])
                && next.data[0] & 0x3F == 0x01:
                return .rejected(next.bhs[2])
            case 0x31 where next.initiatorTaskTag == tag:
                r2ts += 1
                // An R2T asks for data inside the expected transfer (RFC 7143 §11.8.4); more
                // R2Ts than 512-byte pieces of the largest data-out would be a target looping.
                let end = UInt64(next.u32(40)) + UInt64(next.u32(44))
                if end > UInt64(expected) {
                    problems.append("\(what): R2T up to byte \(end) of an expected \(expected)")
                }
                if r2ts > (32 << 20) / 512 {
                    problems.append("\(what): \(r2ts) R2Ts for one command")
                    return .silent
                }
                try answer(next, lie: lieInDataOut && rng.oneIn(3), rng: &rng)
            case 0x20 where next.initiatorTaskTag == 0xFFFF_FFFF:
                try raw.answer(ping: next)
            default:
                continue
            }
        }
    }

    /// Data-Out for an R2T: the bytes asked for in PDUs of at most 64 KiB, or one wrong PDU.
    func answer(_ r2t: ISCSIFrame, lie: Bool, rng: inout SeededRandom) throws {
        let offset = Int(r2t.u32(40))
        let length = Int(r2t.u32(44))
        if lie {
            let wrong = Int.random(in: 0..<4, using: &rng)
            var bytes = rng.bytes(min(length, Int.random(in: 0...8192, using: &rng)))
            if wrong == 1 { bytes = rng.bytes(min(length + 512, 65536)) }
            try raw.dataOut(
                for: r2t, bytes: bytes, dataSN: wrong == 2 ? UInt32.random(in: 1...UInt32.max, using: &rng) : 0,
                offset: wrong == 0
                    ? UInt32.random(in: 0...UInt32.max, using: &rng) : UInt32(truncatingIfNeeded: offset), final: true)
            return
        }
        try raw.answer(r2t: r2t, pieces: 65536) { noiseBytes($0.count, at: $0.lowerBound) }
    }

    /// REPORT SUPPORTED OPERATION CODES, all commands: the target's dispatch table.
    public func supportedOperations() throws -> [HostileCDBs.Operation] {
        let r = try raw.run([0xA3, 0x0C, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0], read: 65536)
        guard r.status == 0 else { throw InitiatorError("REPORT SUPPORTED OPERATION CODES: status \(r.status)") }
        return HostileCDBs.operations(from: r.dataIn)
    }
}
