import DepotISCSI
import DepotInitiator
import Foundation
import Testing

/// Hostile input on real connections to a real depotd: the WRITE that used
/// to kill the daemon, every entry of the dispatch table with hostile CDBs,
/// lengths and flags, and hostile PDUs in every phase, with and without
/// digests. Each asserts that every answer is well formed, that the daemon
/// lives, and that a healthy session beside it reads back what it wrote.
@Suite(.serialized) struct HostileInputTests {
    static let iqn = "iqn.2026-11.dev.depot:hostile"
    static let initiator = "iqn.2026-11.dev.depot:hostile-initiator"

    /// A daemon with a thin LUN 0 and a thick LUN 1 on one target; SANITIZE unpaced.
    func started() async throws -> Daemon {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        try await daemon.start(extra: ["--sanitize-rate", "0"])
        #expect(try daemon.depot(["volume", "create", "default/thin", "--size", "8M"]).status == 0)
        #expect(
            try daemon.depot([
                "volume", "create", "default/thick", "--size", "4M", "--provisioning", "thick", "--block-size", "4096",
            ]).status == 0)
        #expect(try daemon.depot(["volume", "create", "default/healthy", "--size", "8M"]).status == 0)
        #expect(try daemon.depot(["target", "create", Self.iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn, "default/thin"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn, "default/thick"]).status == 0)
        #expect(try daemon.depot(["target", "create", Self.iqn + "-healthy", "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn + "-healthy", "default/healthy"]).status == 0)
        return daemon
    }

    /// A session on the healthy target that writes a pattern and reads it back.
    final class Healthy {
        let raw: RawInitiator
        var round: UInt8 = 0
        init(_ daemon: Daemon) throws {
            raw = try RawInitiator.session(
                portal: daemon.portal, isid: [0x80, 9, 9, 9, 9, 9], initiator: HostileInputTests.initiator,
                target: HostileInputTests.iqn + "-healthy")
        }
        func verify(_ what: String) throws {
            round &+= 1
            let pattern = (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(round)) }
            let lba = UInt32(round) * 16
            #expect(try raw.writeBlocks(lba: lba, pattern) == 0, "healthy write after \(what)")
            #expect(try raw.readBlocks(lba: lba, length: 8192) == pattern, "healthy read-back after \(what)")
        }
    }

    func alive(_ daemon: Daemon) -> Bool { daemon.pid.map { kill($0, 0) == 0 } ?? false }

    /// VmHWM of depotd, bytes.
    func peak(_ daemon: Daemon) -> UInt64 {
        guard let pid = daemon.pid, let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kb = UInt64(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kb * 1024
    }

    /// The reproducer of the crash: after an ordinary login with
    /// ImmediateData=Yes, WRITE(16) LBA 0, TRANSFER LENGTH 0xFFFFFFFF, EDTL
    /// 512, 512 bytes of immediate data. It used to trap computing the
    /// residual (needed − expected beyond 32 bits) and take every session down.
    @Test func aWriteAskingForMoreThan4GiBIsRefusedAndNobodyIsDropped() async throws {
        let daemon = try await started()
        defer { daemon.cleanup() }
        let bystander = try Healthy(daemon)
        try bystander.verify("start")
        let raw = try RawInitiator.session(
            portal: daemon.portal, isid: [0x80, 1, 1, 1, 1, 1], initiator: Self.initiator, target: Self.iqn)
        let cdb: [UInt8] = [0x8A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0]
        let tag = try raw.command(cdb, write: 512, data: [UInt8](repeating: 0xA5, count: 512))
        let (response, _) = try raw.receive(until: { $0.initiatorTaskTag == tag })
        #expect(response.opcodeByte == 0x21, "a SCSI Response, not a closed connection")
        #expect(response.bhs[3] == 0x02, "CHECK CONDITION")
        let sense = Array(response.data.dropFirst(2))
        // 2^32 − 1 blocks from LBA 0 run past the 8 MiB LU: LBA OUT OF RANGE (SBC-3 §4.5).
        #expect(
            sense.count >= 14 && sense[2] & 0x0F == 0x05 && sense[12] == 0x21,
            "ILLEGAL REQUEST, LBA OUT OF RANGE: \(sense)")
        #expect(response.flags & 0x04 != 0, "O: the command asked for more than was expected")
        #expect(response.u32(44) == 0xFFFF_FFFF, "the overflow count saturates at 2^32 − 1")
        #expect(AnswerCheck.problem(response) == nil)
        // The same with 4 KiB blocks (2^44 bytes asked for), on LUN 1.
        let tag4k = try raw.command(cdb, write: 512, data: [UInt8](repeating: 0x5A, count: 512), lun: 1)
        let (response4k, skipped) = try raw.receive(until: { $0.initiatorTaskTag == tag4k })
        #expect(
            response4k.bhs[3] == 0x02 && response4k.u32(44) == 0xFFFF_FFFF,
            "\(response4k.bhs) after \(skipped.map(\.opcodeByte))")
        #expect(alive(daemon), "depotd is still running")
        // Nothing of it was written, the session goes on, and so does everyone else's.
        #expect(try raw.readBlocks(lba: 0, length: 512) == [UInt8](repeating: 0, count: 512))
        #expect(try raw.run([0, 0, 0, 0, 0, 0]).status == 0)
        try bystander.verify("the 4 GiB write")
    }

    /// Every operation REPORT SUPPORTED OPERATION CODES lists (the dispatch
    /// table), on the thin and the thick LUN, with CDBs whose fields are at
    /// zero and at their maximum, all 0xFF and random, random and extreme
    /// expected lengths, direction flags that lie, immediate data beyond the
    /// expected length and Data-Out that is sometimes wrong: every command
    /// gets a well-formed status or Reject, the connection stays up, the
    /// daemon's peak memory stays bounded.
    @Test(arguments: [false, true])
    func everyOperationOfTheTableAnswersHostileCDBs(digests: Bool) async throws {
        let daemon = try await started()
        defer { daemon.cleanup() }
        let bystander = try Healthy(daemon)
        var rng = SeededRandom(seed: digests ? 0xC0FFEE : 0xBADC0DE)
        let raw = try RawInitiator(portal: daemon.portal, isid: [0x80, 2, 2, 2, 2, 2], timeout: 15, digests: digests)
        #expect(try raw.login(initiator: Self.initiator, target: Self.iqn).bhs[36] == 0)
        let session = HostileSession(raw)
        _ = try raw.run([0, 0, 0, 0, 0, 0])  // the power-on unit attention
        let ops = try session.supportedOperations()
        #expect(ops.count >= 40, "REPORT SUPPORTED OPERATION CODES lists \(ops.count)")
        let before = peak(daemon)
        var commands = 0
        var outcomes: [String: Int] = [:]
        for op in ops {
            for (k, cdb) in HostileCDBs.variants(op, random: 4, using: &rng).enumerated() {
                let expected: UInt32 = k == 0 ? 0 : k == 1 ? 0xFFFF_FFFF : HostileCDBs.expectedLength(using: &rng)
                let flags: UInt8 = rng.pick([0x20, 0x40, 0x60, 0x00, 0x21, 0x41])
                let immediate =
                    rng.oneIn(2) ? [] : rng.bytes(min(Int(min(expected, 16384)) + (rng.oneIn(4) ? 512 : 0), 16384))
                let what =
                    "\(op) cdb \(cdb.map { String($0, radix: 16) }) edtl \(expected) flags \(String(flags, radix: 16)) immediate \(immediate.count)"
                let outcome = try session.exchange(
                    cdb: cdb, flags: flags, expected: expected, immediate: immediate, lun: UInt8(k % 2),
                    lieInDataOut: rng.oneIn(5), rng: &rng, what: what)
                commands += 1
                switch outcome {
                case .status(let s): outcomes["status \(s)", default: 0] += 1
                case .rejected(let r): outcomes["reject \(r)", default: 0] += 1
                case .silent, .closed:
                    Issue.record("\(what): \(outcome)")
                    return
                }
            }
        }
        #expect(session.problems.isEmpty, "\(session.problems.prefix(10))")
        #expect(alive(daemon))
        #expect(commands > 2000, "\(commands) commands")
        #expect((outcomes["status 0"] ?? 0) > 100 && (outcomes["status 2"] ?? 0) > 100, "\(outcomes)")
        // Memory: the hostile lengths may not turn into allocations. Reads are capped at
        // MAXIMUM TRANSFER LENGTH and data-out grows with what arrives.
        let after = peak(daemon)
        #expect(after < before + (96 << 20), "depotd peak RSS \(before >> 20) → \(after >> 20) MiB")
        try bystander.verify("\(commands) hostile commands")
        print(
            "hostile commands: \(commands) over \(ops.count) operations, outcomes \(outcomes), depotd peak \(before >> 20) → \(after >> 20) MiB"
        )
    }

    /// Hostile PDUs in every phase — login (a SCSI Command before login
    /// ends, random stages and keys), full feature (every opcode, reserved
    /// bits, duplicate tags, CmdSN far outside the window), framing that lies,
    /// Data-Out for unknown, aborted and completed tasks, SNACK, a discovery
    /// session, PDUs after logout — with and without digests. Every PDU the
    /// daemon sends is well formed; it stays up; the healthy session on the
    /// other target never notices.
    @Test(arguments: [false, true])
    func hostilePDUsInEveryPhaseLeaveTheDaemonServing(digests: Bool) async throws {
        let daemon = try await started()
        defer { daemon.cleanup() }
        let bystander = try Healthy(daemon)
        let probe = try RawInitiator.session(
            portal: daemon.portal, isid: [0x80, 3, 3, 3, 3, 3], initiator: Self.initiator, target: Self.iqn)
        let ops = try HostileSession(probe).supportedOperations()
        var rng = SeededRandom(seed: digests ? 0x5EED_D16 : 0x5EED)
        let scenarios = HostileScenarios(portal: daemon.portal, target: Self.iqn, digests: digests)
        let before = peak(daemon)
        var connections = 0
        var pdus = 0
        for scenario in HostileScenarios.Scenario.allCases {
            for round in 0..<6 {
                let isid: [UInt8] = [0x80, UInt8(connections & 0xFF), UInt8(round), 0x44, 0x55, 0x66]
                let report = scenarios.run(scenario, isid: isid, operations: ops, steps: 40, using: &rng)
                connections += 1
                pdus += report.pdus
                #expect(report.problems.isEmpty, "\(scenario) round \(round): \(report.problems.prefix(5))")
                guard alive(daemon) else {
                    Issue.record("depotd died in \(scenario) round \(round):\n\(daemon.log.suffix(3000))")
                    return
                }
            }
            try bystander.verify("\(scenario)")
        }
        #expect(pdus > 500, "\(pdus) hostile PDUs")
        // Claimed lengths (segments, expected transfers, Data-Out floods) never become allocations.
        #expect(peak(daemon) < before + (128 << 20), "depotd peak RSS \(before >> 20) → \(peak(daemon) >> 20) MiB")
        print(
            "hostile PDUs: \(pdus) on \(connections) connections (digests \(digests)), depotd peak \(peak(daemon) >> 20) MiB"
        )
    }
}
