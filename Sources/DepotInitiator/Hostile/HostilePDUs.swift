import DepotISCSI

/// Hostile PDUs for every phase (RFC 7143 §11): every initiator opcode and
/// some that are none, random flags with reserved bits set, tags and
/// sequence numbers that collide or lie far outside the window, text keys
/// that are huge, duplicated, without `=` or not UTF-8, and byte streams
/// whose framing lies (DataSegmentLength, TotalAHSLength, truncation).
public enum HostilePDUs {
    /// Initiator opcodes (§11.1.1) and a few that are not.
    static let opcodes: [UInt8] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x07, 0x1C, 0x1E, 0x3F, 0x21]

    /// Key=value payloads a parser must survive.
    public static func textKeys(using rng: inout SeededRandom) -> [UInt8] {
        let keys = [
            "InitiatorName", "TargetName", "SessionType", "AuthMethod", "HeaderDigest", "DataDigest",
            "MaxRecvDataSegmentLength",
            "MaxBurstLength", "FirstBurstLength", "ImmediateData", "InitialR2T", "MaxConnections", "ErrorRecoveryLevel",
            "DefaultTime2Wait", "SendTargets", "CHAP_A", "CHAP_N", "CHAP_R", "CHAP_I", "CHAP_C", "X-weird",
            "TargetAlias",
        ]
        var out: [UInt8] = []
        for _ in 0..<Int.random(in: 0...12, using: &rng) {
            let key = rng.pick(keys)
            let value: [UInt8]
            switch Int.random(in: 0..<10, using: &rng) {
            // huge number
            case 0: value = [UInt8](repeating: UInt8(ascii: "9"), count: Int.random(in: 20...4000, using: &rng))
            case 1: value = Array("-1".utf8)
            case 2: value = Array("18446744073709551616".utf8)
            case 3: value = rng.bytes(Int.random(in: 0...64, using: &rng)).map { $0 == 0 ? 1 : $0 }  // not UTF-8
            // huge string
            case 4: value = [UInt8](repeating: UInt8(ascii: "A"), count: Int.random(in: 256...16384, using: &rng))
            case 5:
                value =
                    Array("0x".utf8)
                    + [UInt8](repeating: UInt8(ascii: "f"), count: Int.random(in: 1...2001, using: &rng))
            case 6: value = Array("0b=====".utf8)
            case 7: value = Array("None,CRC32C,None,,".utf8)
            case 8: value = Array("\(Int.random(in: Int.min...Int.max, using: &rng))".utf8)
            default:
                value = Array(
                    rng.pick(["Yes", "No", "All", "CHAP", "None", "Normal", "Discovery", "5", "512", ""]).utf8)
            }
            if rng.oneIn(6) {
                out += Array(key.utf8)  // no '='
            } else {
                out += Array(key.utf8) + [UInt8(ascii: "=")] + value
            }
            if !rng.oneIn(10) { out.append(0) }  // sometimes unterminated
        }
        return out
    }

    /// A PDU of a random opcode with random flags and fields; the sequence
    /// numbers near the session's, far from them, or random.
    public static func pdu(cmdSN: UInt32, expStatSN: UInt32, tags: [UInt32], using rng: inout SeededRandom)
        -> ISCSIFrame
    {
        var pdu = ISCSIFrame(bhs: rng.bytes(48))
        let opcode = rng.oneIn(8) ? UInt8.random(in: 0...0x3F, using: &rng) : rng.pick(opcodes)
        pdu.bhs[0] = opcode | (rng.oneIn(3) ? 0x40 : 0) | (rng.oneIn(16) ? 0x80 : 0)
        pdu.bhs[4] = 0  // the framing lies are `framing`'s
        if !rng.oneIn(4) { pdu.bhs[8...15] = [0, 0, 0, 0, 0, 0, 0, 0] }  // LUN 0, mostly
        // a tag in use: duplicates, Data-Out, ABORT TASK
        if !tags.isEmpty, rng.oneIn(3) { pdu.put32(rng.pick(tags), 16) }
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: pdu.put32(cmdSN, 24)
        case 1: pdu.put32(cmdSN &+ 0x8000_0000, 24)  // half the sequence space away
        case 2: pdu.put32(cmdSN &- 1, 24)
        default: break
        }
        if rng.oneIn(2) { pdu.put32(expStatSN, 28) }
        switch opcode {
        case 0x02:  // TMF: a real function code, mostly
            if rng.oneIn(2) { pdu.bhs[1] = 0x80 | UInt8.random(in: 1...8, using: &rng) }
        case 0x01:
            // Mostly a CDB the table knows.
            if rng.oneIn(2) {
                pdu.bhs[32] = rng.pick([
                    0x28, 0x2A, 0x88, 0x8A, 0x12, 0x00, 0x25, 0x9E, 0x83, 0x42, 0x5F, 0x89, 0x41, 0x93,
                ])
            }
        default:
            break
        }
        switch Int.random(in: 0..<5, using: &rng) {
        case 0: pdu.data = []
        case 1: pdu.data = rng.bytes(Int.random(in: 1...4096, using: &rng))
        case 2 where opcode == 0x03 || opcode == 0x04: pdu.data = textKeys(using: &rng)
        case 3: pdu.data = rng.bytes(Int.random(in: 1...65536, using: &rng))
        default: pdu.data = []
        }
        return pdu
    }

    /// Bytes whose framing lies. `then` says what the caller should do
    /// next: nothing (the target reads the next PDU's bytes as part of this
    /// one or as a header), or reset the connection mid-PDU.
    public enum Lie: CaseIterable {
        case dataLengthLonger, dataLengthShorter, ahsGarbage, ahsHuge, truncated, segmentBeyondLimit
    }

    public static func framing(_ lie: Lie, using rng: inout SeededRandom) -> [UInt8] {
        var bhs = rng.bytes(48)
        bhs[0] = rng.pick([0x00, 0x01, 0x04, 0x05, 0x40, 0x41])
        switch lie {
        case .dataLengthLonger:
            // Claims up to 256 KiB, sends a little: the target waits for the rest.
            let claimed = Int.random(in: 512...262_144, using: &rng)
            bhs[4] = 0
            bhs[5] = UInt8(truncatingIfNeeded: claimed >> 16)
            bhs[6] = UInt8(truncatingIfNeeded: claimed >> 8)
            bhs[7] = UInt8(truncatingIfNeeded: claimed)
            return bhs + rng.bytes(Int.random(in: 0..<min(claimed, 1024), using: &rng))
        case .dataLengthShorter:
            // Claims less than follows: the rest is read as the next header.
            bhs[4] = 0
            bhs[5] = 0
            bhs[6] = 0
            bhs[7] = UInt8.random(in: 0...32, using: &rng)
            return bhs + rng.bytes(Int(bhs[7]) + Int.random(in: 48...400, using: &rng))
        case .ahsGarbage:
            bhs[4] = UInt8.random(in: 1...8, using: &rng)
            bhs[5] = 0
            bhs[6] = 0
            bhs[7] = 0
            return bhs + rng.bytes(Int(bhs[4]) * 4)
        case .ahsHuge:
            bhs[4] = 0xFF
            return bhs + rng.bytes(Int.random(in: 0...1020, using: &rng))
        case .truncated:
            return Array(bhs.prefix(Int.random(in: 1..<48, using: &rng)))
        case .segmentBeyondLimit:
            // More than MaxRecvDataSegmentLength: the target ends the connection.
            bhs[5] = 0xFF
            bhs[6] = 0xFF
            bhs[7] = 0xFF
            return bhs + rng.bytes(1024)
        }
    }
}
