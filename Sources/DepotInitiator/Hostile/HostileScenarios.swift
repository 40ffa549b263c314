import DepotISCSI

/// One hostile connection each: what `depot-bench fuzz-net` runs in a loop
/// and the end-to-end property tests run one by one. Every PDU the target
/// sends back is checked (`AnswerCheck`); the target may refuse, reject or
/// close, but must answer well-formed and stay up for everyone else.
public struct HostileScenarios {
    public let portal: String
    public let target: String
    public var digests = false
    /// A target that requires CHAP, which hostile logins aim at too (they
    /// cannot know its secret; its sessions must not notice them).
    public var chapTarget: String?

    public init(portal: String, target: String, digests: Bool = false, chapTarget: String? = nil) {
        self.portal = portal
        self.target = target
        self.digests = digests
        self.chapTarget = chapTarget
    }

    public enum Scenario: String, CaseIterable, Sendable {
        /// Login PDUs with random stages, flags and keys; a SCSI Command, Data-Out or Text before login ends.
        case login
        /// Random PDUs of every opcode in full feature phase.
        case fullFeature
        /// Framing that lies: DataSegmentLength, AHS, truncation then reset.
        case framing
        /// Commands of the dispatch table with hostile CDBs, lengths and flags.
        case commands
        /// Data-Out for unknown, aborted and completed tasks; floods; SNACK.
        case dataOut
        /// A discovery session with hostile Text requests.
        case discovery
        /// PDUs after a Logout Request.
        case logout
    }

    /// What one connection saw.
    public struct Report {
        public var problems: [String] = []
        public var pdus = 0
        public var closedByTarget = false
    }

    /// Runs `scenario` on a new connection with `isid`; `operations` is the
    /// dispatch table for `.commands`.
    public func run(
        _ scenario: Scenario, isid: [UInt8], operations: [HostileCDBs.Operation], steps: Int,
        using rng: inout SeededRandom
    ) -> Report {
        var report = Report()
        guard let raw = try? RawInitiator(portal: portal, isid: isid, timeout: 3, digests: digests) else {
            report.problems.append("\(scenario): cannot connect to \(portal)")
            return report
        }
        let session = HostileSession(raw)
        let initiator = "iqn.2026-11.dev.depot:hostile-\(isid.map { String($0, radix: 16) }.joined())"
        do {
            switch scenario {
            case .login:
                try login(raw, session, initiator: initiator, steps: steps, using: &rng, report: &report)
            case .discovery:
                guard try loggedIn(raw, initiator: initiator, discovery: true) else { break }
                for _ in 0..<steps {
                    var text = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
                    text.bhs[0] = 0x04 | (rng.oneIn(3) ? 0x40 : 0)
                    text.bhs[1] = rng.oneIn(4) ? UInt8.random(in: 0...255, using: &rng) : 0x80
                    text.initiatorTaskTag = UInt32.random(in: 0...UInt32.max, using: &rng)
                    text.put32(0xFFFF_FFFF, 20)
                    text.put32(raw.cmdSN, 24)
                    raw.cmdSN &+= 1
                    text.data =
                        rng.oneIn(2)
                        ? Array(
                            "SendTargets=\(rng.pick(["All", "", target, "iqn.x", String(repeating: "z", count: 3000)]))"
                                .utf8) + [0] : HostilePDUs.textKeys(using: &rng)
                    try raw.send(text)
                    if try !drain(raw, session, &report, milliseconds: 50) { break }
                }
            case .fullFeature:
                guard try loggedIn(raw, initiator: initiator) else { break }
                var tags: [UInt32] = []
                for _ in 0..<steps {
                    let pdu = HostilePDUs.pdu(cmdSN: raw.cmdSN, expStatSN: raw.expStatSN, tags: tags, using: &rng)
                    tags.append(pdu.initiatorTaskTag)
                    if tags.count > 16 { tags.removeFirst() }
                    if pdu.u32(24) == raw.cmdSN, pdu.bhs[0] & 0x40 == 0 { raw.cmdSN &+= 1 }
                    try raw.send(pdu)
                    report.pdus += 1
                    if try !drain(raw, session, &report, milliseconds: rng.oneIn(4) ? 30 : 0) { break }
                }
                _ = try drain(raw, session, &report, milliseconds: 200)
            case .framing:
                guard try loggedIn(raw, initiator: initiator) else { break }
                let lie = rng.pick(HostilePDUs.Lie.allCases)
                try raw.sendRaw(HostilePDUs.framing(lie, using: &rng))
                report.pdus += 1
                if rng.oneIn(2) {
                    raw.reset()
                } else {
                    _ = try drain(raw, session, &report, milliseconds: 100)
                }
            case .commands:
                guard try loggedIn(raw, initiator: initiator) else { break }
                try commands(session, operations: operations, steps: steps, using: &rng, report: &report)
            case .dataOut:
                guard try loggedIn(raw, initiator: initiator) else { break }
                try dataOut(raw, session, steps: steps, using: &rng, report: &report)
            case .logout:
                guard try loggedIn(raw, initiator: initiator) else { break }
                var logout = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
                logout.bhs[0] = 0x46
                logout.bhs[1] = 0x80 | (rng.oneIn(3) ? UInt8.random(in: 0...0x7F, using: &rng) : 0)
                logout.initiatorTaskTag = 0x7777
                logout.put32(raw.cmdSN, 24)
                try raw.send(logout)
                for _ in 0..<min(steps, 8) {
                    try raw.send(
                        HostilePDUs.pdu(cmdSN: raw.cmdSN, expStatSN: raw.expStatSN, tags: [0x7777], using: &rng))
                    report.pdus += 1
                }
                _ = try drain(raw, session, &report, milliseconds: 200)
            }
        } catch {
            // A send or receive failing means the target closed the connection: allowed.
            report.closedByTarget = true
        }
        report.problems += session.problems.map { "\(scenario): \($0)" }
        if rng.oneIn(3) { raw.reset() }
        return report
    }

    /// Logs in (None); false when the target refused, which is no problem.
    func loggedIn(_ raw: RawInitiator, initiator: String, discovery: Bool = false) throws -> Bool {
        let r = try raw.login(initiator: initiator, target: target, sessionType: discovery ? "Discovery" : "Normal")
        return r.bhs[36] == 0 && r.flags & 0x83 == 0x83
    }

    /// Reads what comes within `milliseconds` (at least what is already
    /// there), checking each PDU; false when the target closed.
    func drain(_ raw: RawInitiator, _ session: HostileSession, _ report: inout Report, milliseconds: Int) throws -> Bool
    {
        while !raw.isQuiet(milliseconds: Int32(milliseconds)) {
            raw.setTimeout(milliseconds: 500)
            guard let pdu = try raw.receive() else {
                report.closedByTarget = true
                return false
            }
            session.note(pdu, "drain")
            if pdu.opcodeByte == 0x20, pdu.initiatorTaskTag == 0xFFFF_FFFF { try raw.answer(ping: pdu) }
        }
        return true
    }

    func login(
        _ raw: RawInitiator, _ session: HostileSession, initiator: String, steps: Int, using rng: inout SeededRandom,
        report: inout Report
    ) throws {
        for step in 0..<steps {
            var pdu = ISCSIFrame(bhs: rng.bytes(48))
            if rng.oneIn(5) {
                // Not a Login PDU during login: SCSI Command (SPDK #3927), Data-Out, Text, NOP-Out, garbage.
                pdu.bhs[0] = rng.pick([
                    0x01, 0x41, 0x05, 0x04, 0x00, 0x02, 0x06, 0x10, UInt8.random(in: 0...0x3F, using: &rng),
                ])
            } else {
                pdu.bhs[0] = 0x43
                pdu.bhs[1] =
                    rng.oneIn(3)
                    ? UInt8.random(in: 0...255, using: &rng)
                    : 0x80 | UInt8.random(in: 0...3, using: &rng) << 2 | UInt8.random(in: 0...3, using: &rng)
                pdu.bhs.replaceSubrange(8..<14, with: raw.isid)
                if rng.oneIn(2) {
                    pdu.bhs[14] = 0
                    pdu.bhs[15] = 0
                }
            }
            pdu.bhs[4] = 0
            var keys = HostilePDUs.textKeys(using: &rng)
            if step == 0, rng.oneIn(2) {
                let name = chapTarget.map { rng.oneIn(2) ? $0 : target } ?? target
                keys = Array("InitiatorName=\(initiator)\0TargetName=\(name)\0".utf8) + keys
            }
            if step > 0, rng.oneIn(3) {
                // A CHAP exchange that cannot succeed: algorithms, identifiers and responses of every shape.
                let chap = [
                    ("AuthMethod", rng.pick(["CHAP", "CHAP,None", "None,CHAP", "SRP"])),
                    ("CHAP_A", rng.pick(["5", "5,7", "7", "", "99999999999"])),
                    ("CHAP_N", rng.pick(["healthy", "", String(repeating: "n", count: 2000)])),
                    (
                        "CHAP_R",
                        rng.pick([
                            "0x", "0x0", "0x" + String(repeating: "ab", count: 16), "0b", "0bAAAA",
                            "0x" + String(repeating: "zz", count: 16),
                        ])
                    ),
                    ("CHAP_I", rng.pick(["0", "256", "-1", "x"])),
                    ("CHAP_C", rng.pick(["0x00", "0x" + String(repeating: "1", count: 2048), ""])),
                ]
                keys =
                    Array(
                        chap.shuffled(using: &rng).prefix(Int.random(in: 1...6, using: &rng)).map { "\($0.0)=\($0.1)" }
                            .joined(separator: "\0").utf8) + [0] + keys
            }
            pdu.data = keys
            try raw.send(pdu)
            report.pdus += 1
            if try !drain(raw, session, &report, milliseconds: 20) { return }
        }
    }

    /// The dispatch table with hostile CDBs, expected lengths, flags lying
    /// about the direction, immediate data more or less than expected.
    func commands(
        _ session: HostileSession, operations: [HostileCDBs.Operation], steps: Int, using rng: inout SeededRandom,
        report: inout Report
    ) throws {
        guard !operations.isEmpty else { return }
        for _ in 0..<steps {
            let op = rng.pick(operations)
            let cdb = rng.pick(HostileCDBs.variants(op, random: 2, using: &rng))
            let expected = HostileCDBs.expectedLength(using: &rng)
            let flags = rng.pick([0x20, 0x40, 0x60, 0x00, UInt8.random(in: 0...0x67, using: &rng)])
            let immediate =
                rng.oneIn(2) ? [] : rng.bytes(min(Int(min(expected, 65536)) + (rng.oneIn(4) ? 512 : 0), 65536 + 512))
            let outcome = try session.exchange(
                cdb: cdb, flags: flags, expected: expected, immediate: immediate,
                lun: rng.oneIn(8) ? UInt8.random(in: 0...255, using: &rng) : 0,
                immediateBit: rng.oneIn(8), lieInDataOut: rng.oneIn(4), rng: &rng,
                what: "\(op) cdb \(cdb.map { hex($0) }.joined())")
            report.pdus += 1
            if outcome == .closed {
                report.closedByTarget = true
                return
            }
        }
    }

    /// Data-Out aimed at tasks that do not want it.
    func dataOut(
        _ raw: RawInitiator, _ session: HostileSession, steps: Int, using rng: inout SeededRandom, report: inout Report
    ) throws {
        for _ in 0..<steps {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0:
                // A write that needs an R2T, aborted, then its Data-Out anyway.
                let tag = try raw.command(
                    RawInitiator.write10(lba: UInt32.random(in: 0..<2048, using: &rng), blocks: 16), write: 8192)
                let abort = try raw.taskManagement(function: 1, referencedTag: tag, refCmdSN: raw.cmdSN &- 1)
                var r2t = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
                r2t.initiatorTaskTag = tag
                r2t.put32(UInt32.random(in: 0...UInt32.max, using: &rng), 20)
                try raw.dataOut(for: r2t, bytes: rng.bytes(8192), offset: 0)
                _ = abort
            case 1:
                // Data-Out for a tag nobody used.
                var r2t = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
                r2t.initiatorTaskTag = UInt32.random(in: 0...UInt32.max, using: &rng)
                r2t.put32(UInt32.random(in: 0...UInt32.max, using: &rng), 20)
                try raw.dataOut(
                    for: r2t, bytes: rng.bytes(Int.random(in: 0...8192, using: &rng)),
                    offset: UInt32.random(in: 0...UInt32.max, using: &rng))
            case 2:
                // A completed read, then Data-Out for it.
                let tag = try raw.command(RawInitiator.read10(lba: 0, blocks: 1), read: 512)
                var r2t = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
                r2t.initiatorTaskTag = tag
                try raw.dataOut(for: r2t, bytes: rng.bytes(512))
            case 3:
                // SNACK (ErrorRecoveryLevel 0: not supported).
                var snack = ISCSIFrame(bhs: rng.bytes(48))
                snack.bhs[0] = 0x10
                snack.bhs[4] = 0
                snack.data = []
                try raw.send(snack)
            default:
                // A write in flight flooded with Data-Out on its R2T's tag, more than was asked.
                let tag = try raw.command(RawInitiator.write10(lba: 0, blocks: 8), write: 4096)
                let (r2t, _) = try raw.receive(until: {
                    $0.initiatorTaskTag == tag && ($0.opcodeByte == 0x31 || $0.opcodeByte == 0x21)
                })
                session.note(r2t, "flood")
                if r2t.opcodeByte == 0x31 {
                    for k in 0..<Int.random(in: 1...64, using: &rng) {
                        try raw.dataOut(
                            for: r2t, bytes: rng.bytes(512), dataSN: UInt32(k), offset: UInt32(k * 512), final: false)
                    }
                }
            }
            report.pdus += 1
            if try !drain(raw, session, &report, milliseconds: 20) { return }
        }
        _ = try drain(raw, session, &report, milliseconds: 200)
    }
}
