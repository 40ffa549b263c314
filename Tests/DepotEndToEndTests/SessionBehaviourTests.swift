import DepotCore
import DepotISCSI
import DepotInitiator
import NIOCore
import Foundation
import Testing

/// Session and task behaviour seen from the wire with a PDU-level initiator:
/// pipelined commands, ABORT TASK of a task in flight, NOP-In pings and dead
/// peers, session reinstatement, the logout request at shutdown.
@Suite(.serialized) struct SessionBehaviourTests {
    static let iqn = "iqn.2026-11.dev.depot:raw"
    static let initiator = "iqn.2026-11.dev.depot:raw-initiator"

    func setUp(_ daemon: Daemon) throws {
        #expect(try daemon.depot(["volume", "create", "default/raw", "--size", "16M"]).status == 0)
        #expect(try daemon.depot(["target", "create", Self.iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn, "default/raw"]).status == 0)
    }

    /// Logs in and takes the POWER ON unit attention every new nexus meets first.
    func loggedIn(_ daemon: Daemon, isid: [UInt8] = [0x80, 1, 2, 3, 4, 5], receiveBuffer: Int32? = nil) throws
        -> RawInitiator
    {
        let raw = try RawInitiator(portal: daemon.portal, isid: isid, receiveBuffer: receiveBuffer)
        let login = try raw.login(initiator: Self.initiator, target: Self.iqn)
        try #require(login.bhs[36] == 0, "login status \(login.bhs[36])/\(login.bhs[37])")
        let tag = try raw.command([0, 0, 0, 0, 0, 0])
        let (response, _) = try raw.receive(until: { $0.initiatorTaskTag == tag })
        #expect(response.bhs[3] == 0x02, "first command after login reports the power-on unit attention")
        let sense = Array(response.data.dropFirst(2))
        #expect(
            sense.count >= 14 && sense[2] & 0x0F == 0x06 && sense[12] == 0x29 && sense[13] == 0x00, "29h/00h: \(sense)")
        return raw
    }

    /// SCSI commands served so far by the fast lane and by the general path
    /// (`depot_iscsi_commands_total` on /metrics).
    func commandCounts(_ daemon: Daemon) throws -> (fast: Int, general: Int) {
        let r = try Daemon.run(
            "/usr/bin/curl", ["-sf", "-H", "Authorization: Bearer \(daemon.token)", daemon.url + "/metrics"])
        func count(_ path: String) -> Int {
            let line = r.stdout.split(separator: "\n").first {
                $0.hasPrefix("depot_iscsi_commands_total") && $0.contains("path=\"\(path)\"")
            }
            return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { Int($0) } ?? 0
        }
        return (count("fast"), count("general"))
    }

    @Test func pipelinedCommandsAreAllAnsweredInStatSNOrder() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let raw = try loggedIn(daemon)
        // 96 commands without waiting, interleaved: reads and writes with all their data
        // as immediate data, some FUA (the fast lane), and writes that need an R2T (the
        // general path).
        var reads: Set<UInt32> = []
        var writes: [UInt32: [UInt8]] = [:]
        var immediateWrites: [UInt32: [UInt8]] = [:]
        for k in 0..<96 {
            if k % 6 == 1 {
                let pattern = [UInt8](repeating: UInt8(k), count: 4096)
                var cdb = RawInitiator.write10(lba: UInt32(8192 + k * 8), blocks: 8)
                if k % 12 == 7 { cdb[1] |= 0x08 }  // FUA: answered after the flush
                let tag = try raw.command(cdb, write: 4096, data: pattern)
                immediateWrites[tag] = pattern
            } else if k % 3 == 2 {
                let pattern = [UInt8](repeating: UInt8(k), count: 8192)
                let tag = try raw.command(
                    RawInitiator.write10(lba: UInt32(k * 16), blocks: 16), write: 8192, data: Array(pattern[0..<512]))
                writes[tag] = pattern
            } else {
                reads.insert(try raw.command(RawInitiator.read10(lba: UInt32(k * 8), blocks: 8), read: 4096))
            }
        }
        var answered: Set<UInt32> = []
        var lastStatSN: UInt32?
        while answered.count < 96 {
            guard let pdu = try raw.receive() else {
                Issue.record("connection closed")
                return
            }
            switch pdu.opcodeByte {
            case 0x31:  // R2T: send the rest of that write
                let pattern = try #require(writes[pdu.initiatorTaskTag])
                let offset = Int(pdu.u32(40))
                try raw.dataOut(for: pdu, bytes: Array(pattern[offset..<(offset + Int(pdu.u32(44)))]))
            case 0x25 where pdu.flags & 0x01 != 0, 0x21:
                #expect(pdu.bhs[3] == 0, "status of \(pdu.initiatorTaskTag)")
                #expect(answered.insert(pdu.initiatorTaskTag).inserted, "one answer per task")
                if let lastStatSN { #expect(pdu.u32(24) == lastStatSN &+ 1, "StatSN in order") }
                lastStatSN = pdu.u32(24)
            case 0x25:
                continue
            default:
                Issue.record("unexpected opcode \(pdu.opcodeByte)")
            }
        }
        #expect(answered == reads.union(writes.keys).union(immediateWrites.keys))
        // With every command answered the window is fully open again: 128 commands.
        #expect(raw.maxCmdSN == raw.cmdSN &+ 127, "MaxCmdSN \(raw.maxCmdSN) for next CmdSN \(raw.cmdSN)")
        // Reads and immediate-data writes went through the fast lane, R2T writes (32) and the
        // TEST UNIT READY that met the power-on unit attention through the general path.
        let counts = try commandCounts(daemon)
        #expect(counts.fast >= 48 && counts.general >= 33, "\(counts)")
        for pattern in writes.values {
            let k = Int(pattern[0])
            #expect(try raw.readBlocks(lba: UInt32(k * 16), length: 8192) == pattern, "write \(k) read back")
        }
        for pattern in immediateWrites.values {
            let k = Int(pattern[0])
            #expect(
                try raw.readBlocks(lba: UInt32(8192 + k * 8), length: 4096) == pattern, "immediate write \(k) read back"
            )
        }
        #expect(try raw.logout()?.bhs[2] == 0)
    }

    @Test func headerAndDataDigestsCarryBurstEdgeTransfers() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let raw = try RawInitiator(portal: daemon.portal, isid: [0x80, 4, 4, 4, 4, 4], digests: true)
        let login = try raw.login(initiator: Self.initiator, target: Self.iqn)
        let answer = String(decoding: login.data, as: UTF8.self)
        try #require(
            login.bhs[36] == 0 && answer.contains("HeaderDigest=CRC32C") && answer.contains("DataDigest=CRC32C"),
            "\(answer)")
        let tur = try raw.command([0, 0, 0, 0, 0, 0])
        _ = try raw.receive(until: { $0.initiatorTaskTag == tur })
        // Around the 256 KiB burst and segment lengths, up to 1 MiB + 512.
        var lba: UInt32 = 0
        for length in [512, 262_144 - 512, 262_144, 262_144 + 512, 1 << 20, (1 << 20) + 512] {
            let payload = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: length)
            #expect(try raw.writeBlocks(lba: lba, [UInt8](payload)) == 0, "write \(length)")
            #expect(try raw.readBlocks(lba: lba, length: length) == [UInt8](payload), "read back \(length)")
            lba += UInt32(length / 512)
        }
        // Small reads and the all-immediate 512-byte write went through the fast lane, digests included.
        #expect(try commandCounts(daemon).fast >= 3)
        // A data digest error closes the connection (ErrorRecoveryLevel 0): the write is not acknowledged.
        let before = try raw.readBlocks(lba: 0, length: 8192)
        let tag = try raw.command(RawInitiator.write10(lba: 0, blocks: 16), write: 8192)
        let (r2t, _) = try raw.receive(until: { $0.initiatorTaskTag == tag && $0.opcodeByte == 0x31 })
        try raw.dataOut(for: r2t, bytes: [UInt8](repeating: 0xEE, count: 8192), corrupt: true)
        #expect(try raw.receive() == nil, "connection closed after a data digest error")
        // The other sessions and the data are untouched.
        let check = try loggedIn(daemon)
        #expect(
            try check.readBlocks(lba: 0, length: 8192) == before,
            "blocks changed by a write whose data failed its digest")
        // The same for a write the fast lane would take (all data immediate): nothing written.
        let fast = try RawInitiator(portal: daemon.portal, isid: [0x80, 4, 4, 4, 4, 5], digests: true)
        try #require(try fast.login(initiator: Self.initiator, target: Self.iqn).bhs[36] == 0)
        _ = try fast.command(
            RawInitiator.write10(lba: 0, blocks: 8), write: 4096, data: [UInt8](repeating: 0xEE, count: 4096),
            corruptDataDigest: true)
        #expect(try fast.receive() == nil, "connection closed after a data digest error on an immediate-data write")
        #expect(
            try check.readBlocks(lba: 0, length: 8192) == before,
            "blocks changed by an immediate-data write whose data failed its digest")
    }

    @Test func resetsAndModeChangesReachTheOtherNexuses() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let a = try loggedIn(daemon, isid: [0x80, 0xA, 0xA, 0xA, 0xA, 0xA])
        let b = try loggedIn(daemon, isid: [0x80, 0xB, 0xB, 0xB, 0xB, 0xB])
        let tur: [UInt8] = [0, 0, 0, 0, 0, 0]
        func asc(_ sense: [UInt8]) -> [UInt8] { sense.count >= 14 ? [sense[2] & 0x0F, sense[12], sense[13]] : [] }
        // LUN RESET from A: every nexus, A's too (SAM-5 §6.3.3), meets BUS DEVICE RESET
        // FUNCTION OCCURRED (29h/03h) once.
        _ = try a.taskManagement(function: 5)
        #expect(try a.receive(until: { $0.opcodeByte == 0x22 }).0.bhs[2] == 0)
        var r = try a.run(tur)
        #expect(r.status == 2 && asc(r.sense) == [6, 0x29, 0x03], "\(r.sense)")
        #expect(try a.run(tur).status == 0)
        r = try b.run(tur)
        #expect(r.status == 2 && asc(r.sense) == [6, 0x29, 0x03], "\(r.sense)")
        #expect(try b.run(tur).status == 0)
        // MODE SELECT from A (D_SENSE on): B meets MODE PARAMETERS CHANGED (2Ah/01h); A does not.
        let sensed = try a.run([0x5A, 0x08, 0x0A, 0, 0, 0, 0, 0, 0xFF, 0], read: 255)
        #expect(sensed.status == 0 && sensed.dataIn.count == 20)
        var list = sensed.dataIn
        list[0] = 0
        list[1] = 0
        list[8 + 2] |= 0x04
        r = try a.run([0x55, 0x10, 0, 0, 0, 0, 0, 0, UInt8(list.count), 0], data: list)
        #expect(r.status == 0, "\(r.sense)")
        #expect(try a.run(tur).status == 0)
        r = try b.run(tur)
        #expect(
            r.status == 2 && r.sense.first == 0x72 && Array(r.sense[1..<4]) == [6, 0x2A, 0x01],
            "descriptor sense now: \(r.sense)")
        // And a bad CDB field now comes back in descriptor format with the field pointer.
        r = try b.run([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x01], read: 512)
        #expect(r.status == 2 && r.sense.first == 0x72 && r.sense[2] == 0x24, "\(r.sense)")
    }

    @Test func aStalledOrHalfSentConnectionDoesNotHoldUpOthers() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start(extra: ["--nop-interval", "0"])
        try setUp(daemon)
        // One session leaves a write waiting for its data; another sends half a PDU.
        let stalled = try loggedIn(daemon, isid: [0x80, 0xC, 0xC, 0xC, 0xC, 0xC])
        _ = try stalled.command(RawInitiator.write10(lba: 0, blocks: 2048), write: 1 << 20)
        _ = try stalled.receive(until: { $0.opcodeByte == 0x31 })
        let half = try RawInitiator(portal: daemon.portal, isid: [0x80, 0xD, 0xD, 0xD, 0xD, 0xD])
        var partial = ISCSIFrame(opcode: .loginRequest)
        partial.bhs[0] = 0x43
        var framed = ByteBufferAllocator().buffer(capacity: 64)
        ISCSIFrameEncoder.frame(partial, into: &framed)
        try half.sendRaw(Array(framed.readableBytesView.prefix(20)))
        // A third session does 200 reads and writes meanwhile, unhindered.
        let busy = try loggedIn(daemon, isid: [0x80, 0xE, 0xE, 0xE, 0xE, 0xE])
        for k in 0..<100 {
            let block = [UInt8](repeating: UInt8(k), count: 4096)
            #expect(try busy.writeBlocks(lba: UInt32(4096 + k * 8), block) == 0)
            #expect(try busy.readBlocks(lba: UInt32(4096 + k * 8), length: 4096) == block)
        }
        // The stalled write is still waiting for its data, not failed.
        #expect(stalled.isQuiet(milliseconds: 100))
    }

    /// What was answered GOOD survives kill -9 of depotd: plain and FUA writes
    /// the fast lane made, a SYNCHRONIZE CACHE it answered from the flush's
    /// completion, and a write the general path made after an R2T.
    @Test func acknowledgedWritesSurviveAKilledDaemon() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let raw = try loggedIn(daemon)
        let plain = [UInt8](repeating: 0xA1, count: 4096)
        let fua = [UInt8](repeating: 0xB2, count: 4096)
        let solicited = (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try raw.writeBlocks(lba: 100, plain) == 0)
        var cdb = RawInitiator.write10(lba: 200, blocks: 8)
        cdb[1] |= 0x08
        let tag = try raw.command(cdb, write: 4096, data: fua)
        let (answer, _) = try raw.receive(until: { $0.initiatorTaskTag == tag })
        #expect(answer.opcodeByte == 0x21 && answer.bhs[3] == 0, "FUA write answered GOOD")
        #expect(try raw.writeBlocks(lba: 300, solicited, immediate: 512) == 0)
        // SYNCHRONIZE CACHE (10) over the whole medium: the fast lane's, answered GOOD after the flush.
        let before = try commandCounts(daemon)
        let sync = try raw.command([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        let (synced, _) = try raw.receive(until: { $0.initiatorTaskTag == sync })
        #expect(synced.opcodeByte == 0x21 && synced.bhs[3] == 0, "SYNCHRONIZE CACHE answered GOOD")
        let after = try commandCounts(daemon)
        #expect(after.fast == before.fast + 1 && after.general == before.general, "\(before) -> \(after)")
        daemon.kill9()
        try await daemon.start()
        let again = try loggedIn(daemon, isid: [0x80, 9, 9, 9, 9, 9])
        #expect(try again.readBlocks(lba: 100, length: 4096) == plain)
        #expect(try again.readBlocks(lba: 200, length: 4096) == fua)
        #expect(try again.readBlocks(lba: 300, length: 8192) == solicited)
    }

    @Test func commandsAheadOfACmdSNGapWaitForIt() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let raw = try loggedIn(daemon)
        let gap = raw.cmdSN
        // CmdSN gap+1 and gap+2 arrive first: held, not run (RFC 7143 §4.2.2.1).
        let later = try raw.command([0, 0, 0, 0, 0, 0], cmdSN: gap &+ 1)
        let latest = try raw.command(RawInitiator.read10(lba: 0, blocks: 1), read: 512, cmdSN: gap &+ 2)
        #expect(raw.isQuiet(milliseconds: 400), "a command ahead of the gap was answered")
        // The missing command, a READ the fast lane serves, fills the gap: all three run.
        let first = try raw.command(RawInitiator.read10(lba: 8, blocks: 1), read: 512, cmdSN: gap)
        raw.cmdSN = gap &+ 3
        var answered: Set<UInt32> = []
        while answered.count < 3 {
            let (pdu, _) = try raw.receive(until: {
                $0.opcodeByte == 0x21 || ($0.opcodeByte == 0x25 && $0.flags & 0x01 != 0)
            })
            #expect(pdu.bhs[3] == 0)
            answered.insert(pdu.initiatorTaskTag)
        }
        #expect(answered == [first, later, latest])
        #expect(raw.maxCmdSN == raw.cmdSN &+ 127)
    }

    @Test func abortTaskEndsAWriteWaitingForDataAndAnswersForGoneTasks() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let raw = try loggedIn(daemon)
        let writeCmdSN = raw.cmdSN
        let write = try raw.command(RawInitiator.write10(lba: 100, blocks: 16), write: 8192)
        let (r2t, _) = try raw.receive(until: { $0.opcodeByte == 0x31 })
        #expect(r2t.initiatorTaskTag == write)
        // ABORT TASK of the write still waiting for its data: function complete (RFC 7143 §11.6.1 a).
        let abort = try raw.taskManagement(function: 1, referencedTag: write, refCmdSN: writeCmdSN)
        let (tmf, skipped) = try raw.receive(until: { $0.opcodeByte == 0x22 })
        #expect(tmf.initiatorTaskTag == abort && tmf.bhs[2] == 0, "TMF response \(tmf.bhs[2])")
        #expect(skipped.isEmpty, "no response for the aborted write: \(skipped.map(\.opcodeByte))")
        // Its Data-Out now names no task: Reject.
        try raw.dataOut(for: r2t, bytes: [UInt8](repeating: 1, count: 8192))
        let (reject, _) = try raw.receive(until: { $0.opcodeByte == 0x3F })
        #expect(reject.bhs[2] == 0x04)
        // The aborted tag names no task now, and its CmdSN is behind the window: task does not exist (c).
        let again = try raw.taskManagement(function: 1, referencedTag: write, refCmdSN: writeCmdSN)
        let (second, _) = try raw.receive(until: { $0.opcodeByte == 0x22 })
        #expect(second.initiatorTaskTag == again && second.bhs[2] == 1, "TMF response \(second.bhs[2])")
        // Nothing was written, and the session goes on; the tag can be used again.
        #expect(try raw.readBlocks(lba: 100, length: 8192, tag: write) == [UInt8](repeating: 0, count: 8192))
        // A second command with a tag still in use is a protocol error: Reject.
        let pending = try raw.command(RawInitiator.write10(lba: 0, blocks: 16), write: 8192)
        _ = try raw.receive(until: { $0.opcodeByte == 0x31 })
        try raw.command([0, 0, 0, 0, 0, 0], tag: pending)
        let (duplicate, _) = try raw.receive(until: { $0.opcodeByte == 0x3F })
        #expect(duplicate.bhs[2] == 0x04)
    }

    @Test func quietPeersArePingedAndDeadOnesDropped() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start(extra: ["--nop-interval", "1", "--nop-timeout", "2"])
        try setUp(daemon)
        let raw = try loggedIn(daemon)
        // Alive: answer three pings; the session stays.
        for _ in 0..<3 {
            let (ping, _) = try raw.receive(until: { $0.opcodeByte == 0x20 })
            #expect(
                ping.initiatorTaskTag == 0xFFFF_FFFF && ping.u32(20) != 0xFFFF_FFFF,
                "NOP-In ping: ITT reserved, TTT set")
            try raw.answer(ping: ping)
        }
        var r = try daemon.depot(["session", "list"])
        #expect(r.stdout.contains(Self.initiator), "\(r.stdout)")
        // The default table fits 120 columns; --wide has the negotiated parameters.
        #expect(r.stdout.split(separator: "\n").allSatisfy { $0.count <= 120 }, "\(r.stdout)")
        let wide = try daemon.depot(["session", "list", "--wide"])
        #expect(wide.stdout.contains("MaxBurstLength=") && wide.stdout.contains("ISID"), "\(wide.stdout)")
        // Dead: stop answering. The target closes the connection within interval + timeout.
        let start = ContinuousClock.now
        while let pdu = try raw.receive() {
            #expect(pdu.opcodeByte == 0x20, "only pings while quiet, got \(pdu.opcodeByte)")
        }
        #expect(ContinuousClock.now - start < .seconds(6))
        try await Task.sleep(for: .milliseconds(300))
        r = try daemon.depot(["session", "list"])
        #expect(!r.stdout.contains(Self.initiator), "dead session still listed: \(r.stdout)")
        #expect(daemon.log.contains("did not answer a NOP-In ping"))
    }

    /// #21 item 12: the fast lane's commands count in INFLIGHT until the socket
    /// has taken their answers (they were never counted before).
    @Test func fastLaneCommandsCountAsInFlightUntilTheSocketTakesTheirAnswers() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        // A 32 KiB receive buffer that the test does not read from: the kernel takes
        // at most its 4 MiB send buffer and this, the rest waits in the target.
        let raw = try loggedIn(daemon, receiveBuffer: 32768)
        let block = [UInt8](repeating: 0x5A, count: 262_144)
        for k in 0..<24 { #expect(try raw.writeBlocks(lba: UInt32(k * 512), block) == 0) }  // in the page cache
        func inFlight() throws -> Int {
            let r = try daemon.depot(["session", "list", "--json"])
            let sessions = try JSONDecoder().decode(SessionList.self, from: Data(r.stdout.utf8)).sessions
            return try #require(sessions.first { $0.initiator == Self.initiator }).commandsInFlight
        }
        #expect(try inFlight() == 0)
        let fastBefore = try commandCounts(daemon).fast
        // 24 reads of 256 KiB (6 MiB of answers), not read, sent 8 at a time: the
        // lane queues a read batch's answers before flushing them, so 24 that
        // arrive in one batch would reach the 4 MiB high-water mark after 16 and
        // leave the rest to the general path. Each group waits for the last.
        var tags: [UInt32] = []
        for group in 0..<3 {
            for k in (group * 8)..<(group * 8 + 8) {
                tags.append(try raw.command(RawInitiator.read10(lba: UInt32(k * 512), blocks: 512), read: 262_144))
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while try commandCounts(daemon).fast - fastBefore < group * 8 + 8, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try commandCounts(daemon).fast - fastBefore == 24, "all 24 reads took the fast lane")
        let held = try inFlight()
        // ≥ 6 MiB − 4 MiB − 32 KiB still in the target: at least 7 answers.
        #expect(held >= 7 && held <= 24, "INFLIGHT \(held) with 24 fast-lane reads unanswered on the wire")
        // Read every answer: the count falls back to 0.
        var answered: Set<UInt32> = []
        while answered.count < 24 {
            let (pdu, _) = try raw.receive(until: { $0.opcodeByte == 0x25 && $0.bhs[1] & 0x01 != 0 })
            answered.insert(pdu.initiatorTaskTag)
            #expect(pdu.bhs[3] == 0 && pdu.data == block)
        }
        #expect(answered == Set(tags))
        try await Task.sleep(for: .milliseconds(100))
        #expect(try inFlight() == 0)
    }

    /// #20, the login window: a command pipelined right behind the final Login
    /// Request — in the same write, framed with the digests that request asks for —
    /// is decoded only once the answer is settled: with those digests, in full
    /// feature phase, for the named nexus (so its first command meets the nexus's
    /// power-on unit attention), answered after the Login Response.
    @Test func aCommandPipelinedBehindTheFinalLoginRequestRunsInFullFeaturePhase() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        for digests in [false, true] {
            let raw = try RawInitiator(
                portal: daemon.portal, isid: [0x80, 9, 9, 9, 9, digests ? 1 : 0], digests: digests)
            // Login Requests are immediate: the command takes the CmdSN they carry.
            let tur = raw.commandPDU([0, 0, 0, 0, 0, 0], cmdSN: raw.cmdSN)
            let login = try raw.login(initiator: Self.initiator, target: Self.iqn, pipelined: [tur])
            raw.cmdSN &+= 1
            try #require(
                login.bhs[36] == 0 && login.flags & 0x83 == 0x83,
                "final Login Response (digests \(digests)): \(login.bhs[36])/\(login.bhs[37])")
            let (response, skipped) = try raw.receive(until: { $0.initiatorTaskTag == tur.initiatorTaskTag })
            #expect(skipped.isEmpty, "nothing before the command's answer: \(skipped.map(\.opcodeByte))")
            #expect(
                response.opcodeByte == 0x21 && response.u32(24) == login.u32(24) &+ 1,
                "SCSI Response right after the Login Response in StatSN")
            let sense = Array(response.data.dropFirst(2))
            #expect(
                response.bhs[3] == 0x02 && sense.count >= 14 && sense[12] == 0x29 && sense[13] == 0x00,
                "the nexus's first command meets POWER ON (29h/00h), digests \(digests): status \(response.bhs[3]) \(sense.prefix(14))"
            )
            #expect(try raw.readBlocks(lba: 0, length: 4096)?.count == 4096, "the session goes on (digests \(digests))")
            #expect(try raw.logout()?.bhs[2] == 0)
        }
    }

    /// #20: after a Logout Request the initiator must not send new requests on
    /// the connection (RFC 7143 §11.14); one that does is rejected (04h) and
    /// never runs, and the Logout Response still comes.
    @Test func aCommandAfterTheLogoutRequestIsRejectedNotRun() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let raw = try loggedIn(daemon)
        #expect(try raw.writeBlocks(lba: 64, [UInt8](repeating: 0x11, count: 4096)) == 0)
        var logout = ISCSIFrame(bhs: [UInt8](repeating: 0, count: 48))
        logout.bhs[0] = 0x46  // immediate Logout Request, close the session
        logout.bhs[1] = 0x80
        logout.initiatorTaskTag = 0x7000
        logout.put32(raw.cmdSN, 24)
        logout.put32(raw.expStatSN, 28)
        let late = raw.commandPDU(
            RawInitiator.write10(lba: 64, blocks: 8), write: 4096, data: [UInt8](repeating: 0x22, count: 4096))
        var out = ByteBufferAllocator().buffer(capacity: 8192)
        ISCSIFrameEncoder.frame(logout, into: &out)
        ISCSIFrameEncoder.frame(late, into: &out)
        try raw.sendRaw(out.readBytes(length: out.readableBytes) ?? [])
        var answers: [ISCSIFrame] = []
        while let pdu = try raw.receive() { answers.append(pdu) }
        let reject = answers.first { $0.opcodeByte == 0x3F }
        // The Reject carries the late command's header: opcode and Initiator Task Tag.
        #expect(
            reject?.bhs[2] == 0x04
                && reject.map { Array($0.data.prefix(48)) }.map {
                    $0[0] & 0x3F == 0x01 && Array($0[16..<20]) == Array(late.bhs[16..<20])
                } == true,
            "Reject 04h carrying the late command: \(reject.map { Array($0.data.prefix(20)) } ?? [])")
        #expect(
            answers.contains { $0.opcodeByte == 0x26 && $0.bhs[2] == 0 },
            "Logout Response: \(answers.map(\.opcodeByte))")
        #expect(
            !answers.contains { $0.opcodeByte == 0x21 && $0.initiatorTaskTag == late.initiatorTaskTag },
            "the late write never ran")
        // The data is the first write's.
        let check = try loggedIn(daemon, isid: [0x80, 4, 4, 4, 4, 4])
        #expect(try check.readBlocks(lba: 64, length: 4096) == [UInt8](repeating: 0x11, count: 4096))
    }

    /// Peers that send a Login Request and vanish before its answer (reset, or
    /// close) while others log in: no session is left registered, nothing
    /// crashes, and a normal login still works.
    @Test func peersThatVanishDuringALoginStepLeaveNothingBehind() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        for k in 0..<120 {
            let raw = try RawInitiator(portal: daemon.portal, isid: [0x80, 5, 5, 5, UInt8(k >> 8), UInt8(k & 0xFF)])
            var request = LoginRequest()
            (request.transit, request.currentStage, request.nextStage) = (true, k % 2 == 0 ? 0 : 1, 3)
            request.isid = [0x80, 5, 5, 5, UInt8(k >> 8), UInt8(k & 0xFF)]
            request.data = TextKeys.encode([
                ("InitiatorName", Self.initiator), ("TargetName", Self.iqn), ("SessionType", "Normal"),
                ("AuthMethod", "None"),
            ])
            try raw.send(request.frame)
            if k % 3 == 0 { raw.reset() }  // RST, or a plain close when raw goes
        }
        try await Task.sleep(for: .milliseconds(500))
        let listed = try daemon.depot(["session", "list", "--json"])
        let sessions = try JSONDecoder().decode(SessionList.self, from: Data(listed.stdout.utf8)).sessions
        #expect(sessions.isEmpty, "sessions left behind: \(sessions.map(\.isid))")
        let healthy = try loggedIn(daemon)
        #expect(try healthy.readBlocks(lba: 0, length: 4096)?.count == 4096)
    }

    @Test func reusedISIDReinstatesTheSession() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let isid: [UInt8] = [0x80, 9, 9, 9, 9, 9]
        let first = try loggedIn(daemon, isid: isid)
        // Same initiator port (name + ISID), TSIH 0: the old session is replaced (RFC 7143 §6.3.5).
        let second = try RawInitiator(portal: daemon.portal, isid: isid)
        let login = try second.login(initiator: Self.initiator, target: Self.iqn)
        #expect(login.bhs[36] == 0)
        #expect(try first.receive() == nil, "old connection closed")
        let sessions = try daemon.depot(["session", "list", "--json"]).stdout
        #expect(sessions.components(separatedBy: Self.initiator).count - 1 == 1, "\(sessions)")
        // The same nexus was already told of the power-on: the new session's first command is GOOD.
        let tag = try second.command([0, 0, 0, 0, 0, 0])
        #expect(try second.receive(until: { $0.initiatorTaskTag == tag }).0.bhs[3] == 0)
        // Another ISID is another session.
        let third = try RawInitiator(portal: daemon.portal, isid: [0x80, 7, 7, 7, 7, 7])
        #expect(try third.login(initiator: Self.initiator, target: Self.iqn).bhs[36] == 0)
        // A login naming a session by TSIH would add a connection: 02/0A.
        let fourth = try RawInitiator(portal: daemon.portal, isid: [0x80, 6, 6, 6, 6, 6])
        let refused = try fourth.login(initiator: Self.initiator, target: Self.iqn, tsih: login.u16(14))
        #expect(refused.bhs[36] == 0x02 && refused.bhs[37] == 0x0A, "status \(refused.bhs[36])/\(refused.bhs[37])")
    }

    /// #20, StatSN order with a sender on another thread: shutdown's logout
    /// request (Async Message) is sent while reads and their answers are in
    /// flight; every status-bearing PDU on the wire, the Async Message
    /// included, carries the next StatSN (RFC 7143 §4.2.2.2).
    @Test func theShutdownLogoutRequestKeepsStatSNInOrderWithResponsesInFlight() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let raw = try loggedIn(daemon)
        let pid = try #require(daemon.pid)
        var statSNs: [UInt32] = []
        var asyncAt: Int?
        var burst = 0
        // Bursts of 32 reads (fast lane and, for the 64 KiB ones, the general path);
        // SIGTERM after the second; on until the Async Message and four more bursts.
        while burst < 200, asyncAt.map({ burst < $0 + 4 }) ?? true {
            var waiting: Set<UInt32> = []
            for k in 0..<32 {
                let length = k % 4 == 3 ? 65536 : 4096
                waiting.insert(
                    try raw.command(
                        RawInitiator.read10(lba: UInt32((burst * 32 + k) % 256 * 128), blocks: UInt16(length / 512)),
                        read: length))
            }
            if burst == 1 { kill(pid, SIGTERM) }
            while !waiting.isEmpty {
                guard let pdu = try raw.receive() else { break }
                let status =
                    pdu.opcodeByte == 0x21 || pdu.opcodeByte == 0x32
                    || (pdu.opcodeByte == 0x25 && pdu.flags & 0x01 != 0)
                if status { statSNs.append(pdu.u32(24)) }
                if pdu.opcodeByte == 0x32, asyncAt == nil { asyncAt = burst }
                if status, pdu.opcodeByte != 0x32 { waiting.remove(pdu.initiatorTaskTag) }
            }
            burst += 1
        }
        #expect(asyncAt != nil, "the logout request came")
        #expect(statSNs.count > 100)
        let gaps = zip(statSNs, statSNs.dropFirst()).enumerated().filter { $0.element.1 != $0.element.0 &+ 1 }
        #expect(
            gaps.isEmpty,
            "StatSN out of order at \(gaps.prefix(5).map { "#\($0.offset): \($0.element.0) then \($0.element.1)" })")
        _ = try? raw.logout()
        _ = try? await daemon.terminate()
    }

    @Test func shutdownAsksSessionsToLogOut() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let raw = try loggedIn(daemon)
        let pid = try #require(daemon.pid)
        kill(pid, SIGTERM)
        // Async Message, AsyncEvent 1: logout requested (RFC 7143 §11.9.1).
        let (message, _) = try raw.receive(until: { $0.opcodeByte == 0x32 })
        #expect(message.bhs[36] == 1 && message.u16(42) > 0, "event \(message.bhs[36]), Parameter3 \(message.u16(42))")
        #expect(try raw.logout()?.bhs[2] == 0)
        #expect(try await daemon.terminate() == 0)
    }
}
