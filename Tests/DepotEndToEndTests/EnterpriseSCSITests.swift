import DepotCore
import DepotInitiator
import Foundation
import Testing

/// What hypervisor clusters need from the SAN, with two real initiators
/// (libiscsi contexts with their own IQNs): persistent reservation fencing
/// that survives a restart, ATS contention, XCOPY and ODX across LUNs,
/// UNMAP giving space back, and the thin-provisioning signals.
@Suite(.serialized) struct EnterpriseSCSITests {
    static let hostA = "iqn.2026-11.dev.depot:host-a"
    static let hostB = "iqn.2026-11.dev.depot:host-b"

    /// Starts a daemon with `count` targets "t0"… each with the given volumes as LUNs.
    func daemon(volumes: [[String]], size: String = "64M", extra: [String] = []) async throws -> Daemon {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        try await daemon.start(extra: extra)
        for (t, names) in volumes.enumerated() {
            let iqn = "iqn.2026-11.dev.depot:t\(t)"
            #expect(try daemon.depot(["target", "create", iqn, "--allow-any"]).status == 0)
            for (lun, name) in names.enumerated() {
                let ref = name.contains("/") ? name : "default/\(name)"
                if !name.contains("/") {
                    #expect(try daemon.depot(["volume", "create", ref, "--size", size]).status == 0)
                }
                #expect(try daemon.depot(["target", "lun", "map", iqn, ref, "--lun", "\(lun)"]).status == 0)
            }
        }
        return daemon
    }

    /// Logs in with the host's own fixed initiator port (ISID), as a real host
    /// does: persistent reservations belong to that I_T nexus.
    func login(_ daemon: Daemon, _ initiator: String, target: Int = 0) throws -> LibISCSIClient {
        let client = try LibISCSIClient(initiator: initiator, isid: initiator == Self.hostA ? 0xA : 0xB)
        #expect(
            client.login(portal: daemon.portal, target: "iqn.2026-11.dev.depot:t\(target)"),
            "\(initiator): \(client.lastError)")
        // The first command meets POWER ON (29h/00h); take it out of the way.
        _ = client.command([0, 0, 0, 0, 0, 0])
        return client
    }

    static func be(_ v: UInt64, _ n: Int) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64(n - 1 - $0))) }
    }

    /// PERSISTENT RESERVE OUT with the basic 24-byte parameter list.
    func prOut(_ c: LibISCSIClient, action: UInt8, type: UInt8 = 0, key: UInt64, sark: UInt64 = 0, aptpl: Bool = false)
        -> LibISCSIClient.Outcome?
    {
        c.command(
            [0x5F, action, type, 0, 0, 0, 0, 0, 24, 0],
            dataOut: Self.be(key, 8) + Self.be(sark, 8) + [0, 0, 0, 0, aptpl ? 1 : 0, 0, 0, 0])
    }

    func write10(_ c: LibISCSIClient, lun: Int32 = 0, lba: UInt32, _ bytes: [UInt8]) -> LibISCSIClient.Outcome? {
        c.command(
            lun: lun, [0x2A, 0] + Self.be(UInt64(lba), 4) + [0] + Self.be(UInt64(bytes.count / 512), 2) + [0],
            dataOut: bytes)
    }

    func read10(_ c: LibISCSIClient, lun: Int32 = 0, lba: UInt32, blocks: Int) -> LibISCSIClient.Outcome? {
        c.command(
            lun: lun, [0x28, 0] + Self.be(UInt64(lba), 4) + [0] + Self.be(UInt64(blocks), 2) + [0], dataIn: blocks * 512
        )
    }

    static func random(_ count: Int) throws -> [UInt8] {
        let handle = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        defer { try? handle.close() }
        return [UInt8](handle.readData(ofLength: count))
    }

    static func checksum(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    @Test func reservationsFenceTheLoserAndSurviveARestart() async throws {
        let daemon = try await daemon(volumes: [["shared"]])
        defer { daemon.cleanup() }
        var a = try login(daemon, Self.hostA)
        var b = try login(daemon, Self.hostB)
        let block = [UInt8](repeating: 0xAB, count: 512)
        // Both hosts register (APTPL); A takes EXCLUSIVE ACCESS.
        #expect(prOut(a, action: 6, key: 0, sark: 0xA1, aptpl: true)?.good == true)
        #expect(prOut(b, action: 6, key: 0, sark: 0xB2, aptpl: true)?.good == true)
        #expect(prOut(a, action: 1, type: 0x03, key: 0xA1, aptpl: true)?.good == true)
        #expect(write10(a, lba: 8, block)?.good == true)
        #expect(write10(b, lba: 8, block)?.status == 0x18, "B is fenced: RESERVATION CONFLICT")
        #expect(read10(b, lba: 8, blocks: 1)?.status == 0x18, "exclusive access fences reads too")
        // B (the surviving node) preempts A and aborts its tasks: A is fenced now.
        #expect(prOut(b, action: 5, type: 0x03, key: 0xB2, sark: 0xA1, aptpl: true)?.good == true)
        let fenced = write10(a, lba: 8, block)
        #expect(
            fenced?.status == 2 && fenced?.key == 6 && fenced?.ascq == 0x2A05,
            "REGISTRATIONS PREEMPTED first: \(fenced?.senseText ?? a.lastError)")
        #expect(write10(a, lba: 8, block)?.status == 0x18)
        #expect(write10(b, lba: 8, block)?.good == true)

        // APTPL: the registration and the reservation outlive the daemon.
        a.logout()
        b.logout()
        #expect(try await daemon.terminate() == 0)
        try await daemon.start()
        a = try login(daemon, Self.hostA)
        b = try login(daemon, Self.hostB)
        let keys = try #require(b.command([0x5E, 0x00, 0, 0, 0, 0, 0, 0x10, 0, 0], dataIn: 4096))
        #expect(
            keys.good && keys.data.count >= 16 && Array(keys.data[8..<16]) == Self.be(0xB2, 8),
            "READ KEYS after restart: \(keys.data.prefix(16))")
        let reservation = try #require(b.command([0x5E, 0x01, 0, 0, 0, 0, 0, 0x10, 0, 0], dataIn: 4096))
        #expect(
            reservation.data.count >= 22 && reservation.data[21] == 0x03
                && Array(reservation.data[8..<16]) == Self.be(0xB2, 8))
        #expect(write10(a, lba: 8, block)?.status == 0x18, "still fenced after the restart")
        #expect(write10(b, lba: 8, block)?.good == true)
        // CLEAR by the holder gives the LU back to everyone, and nothing is kept.
        #expect(prOut(b, action: 3, key: 0xB2)?.good == true)
        _ = a.command([0, 0, 0, 0, 0, 0])  // RESERVATIONS PREEMPTED
        #expect(write10(a, lba: 8, block)?.good == true)
        a.logout()
        b.logout()
    }

    /// PREEMPT AND ABORT fences a node with a write in flight: the write, still
    /// waiting for its data, ends before the preempt's GOOD and never lands.
    @Test func preemptAndAbortEndsTheFencedNodesWriteInFlight() async throws {
        let daemon = try await daemon(volumes: [["fence"]])
        defer { daemon.cleanup() }
        let a = try RawInitiator(portal: daemon.portal, isid: [0x80, 0, 0, 0, 0, 0x0A])
        _ = try a.login(initiator: Self.hostA, target: "iqn.2026-11.dev.depot:t0")
        _ = try a.run([0, 0, 0, 0, 0, 0])
        let b = try login(daemon, Self.hostB)
        let register = Self.be(0, 8) + Self.be(0xA1, 8) + [UInt8](repeating: 0, count: 8)
        #expect(try a.run([0x5F, 0x06, 0, 0, 0, 0, 0, 0, 24, 0], data: register).status == 0)
        #expect(
            try a.run(
                [0x5F, 0x01, 0x03, 0, 0, 0, 0, 0, 24, 0], data: Self.be(0xA1, 8) + [UInt8](repeating: 0, count: 16)
            ).status == 0)
        #expect(prOut(b, action: 6, key: 0, sark: 0xB2)?.good == true)
        // A's write of 16 blocks gets its R2T and then waits for the data.
        let write = try a.command(RawInitiator.write10(lba: 40, blocks: 16), write: 8192)
        let (r2t, _) = try a.receive(until: { $0.opcodeByte == 0x31 })
        #expect(r2t.initiatorTaskTag == write)
        // B preempts A and aborts its tasks.
        #expect(prOut(b, action: 5, type: 0x03, key: 0xB2, sark: 0xA1)?.good == true)
        // A's data comes too late: its task is gone (Reject), no status for the write, nothing written.
        try a.dataOut(for: r2t, bytes: [UInt8](repeating: 0xEE, count: 8192))
        let (answer, skipped) = try a.receive(until: { $0.opcodeByte == 0x3F || $0.initiatorTaskTag == write })
        #expect(
            answer.opcodeByte == 0x3F && skipped.allSatisfy { $0.initiatorTaskTag != write },
            "the aborted write got \(answer.opcodeByte)")
        let medium = try #require(read10(b, lba: 40, blocks: 16))
        #expect(medium.good && !medium.data.contains(0xEE), "the fenced write never reached the medium")
        // A learns it was preempted, then is fenced.
        let told = try a.run([0x28, 0, 0, 0, 0, 40, 0, 0, 1, 0], read: 512)
        #expect(
            told.status == 2 && told.sense.count >= 14 && told.sense[12] == 0x2A && told.sense[13] == 0x05,
            "\(told.sense)")
        #expect(
            try a.run(RawInitiator.write10(lba: 40, blocks: 1), data: [UInt8](repeating: 1, count: 512)).status == 0x18)
        b.logout()
    }

    @Test func atomicTestAndSetContentionLosesNoUpdate() async throws {
        let daemon = try await daemon(volumes: [["ats"]])
        defer { daemon.cleanup() }
        let portal = daemon.portal
        // Two hosts increment one counter block with COMPARE AND WRITE, as ESXi's
        // ATS heartbeat and locking do; a miscompare means "read again".
        let rounds = 25
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for host in [Self.hostA, Self.hostB] {
                group.addTask {
                    try await Self.inThread {
                        let c = try LibISCSIClient(initiator: host)
                        guard c.login(portal: portal, target: "iqn.2026-11.dev.depot:t0") else {
                            throw HarnessError("login: \(c.lastError)")
                        }
                        _ = c.command([0, 0, 0, 0, 0, 0])
                        var won = 0
                        var lost = 0
                        while won < rounds {
                            guard let current = c.command([0x28, 0, 0, 0, 0, 100, 0, 0, 1, 0], dataIn: 512),
                                current.good
                            else {
                                throw HarnessError("read: \(c.lastError)")
                            }
                            var next = current.data
                            let value = next.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                            next.replaceSubrange(0..<8, with: Self.be(value + 1, 8))
                            let caw = c.command(
                                [0x89, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 1, 0, 0], dataOut: current.data + next)
                            if caw?.good == true {
                                won += 1
                            } else if caw?.status == 2, caw?.key == 0x0E, caw?.ascq == 0x1D00 {
                                lost += 1
                            } else {
                                throw HarnessError("COMPARE AND WRITE: \(caw?.senseText ?? c.lastError)")
                            }
                        }
                        c.logout()
                        return (won, lost)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let check = try login(daemon, Self.hostA)
        let counter = try #require(check.command([0x28, 0, 0, 0, 0, 100, 0, 0, 1, 0], dataIn: 512))
        let value = counter.data.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(results.map(\.0).reduce(0, +) == 2 * rounds)
        #expect(
            value == UInt64(2 * rounds),
            "every successful test-and-set counted once: \(value), miscompares \(results.map(\.1))")
        check.logout()
    }

    /// Runs blocking libiscsi calls on a thread of their own.
    static func inThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// The NAA designator of VPD 83h of one LUN.
    func naa(_ c: LibISCSIClient, lun: Int32 = 0) throws -> [UInt8] {
        let page = try #require(c.command(lun: lun, [0x12, 0x01, 0x83, 0x01, 0x00, 0], dataIn: 256))
        try #require(page.good && page.data.count >= 24 && page.data[5] & 0x0F == 0x03)
        return Array(page.data[8..<(8 + Int(page.data[7]))])
    }

    static func identificationDescriptor(_ naa: [UInt8]) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 32)
        d[0] = 0xE4
        d[4] = 0x01
        d[5] = 0x03
        d[7] = UInt8(naa.count)
        d.replaceSubrange(8..<(8 + naa.count), with: naa)
        d[30] = 0x02  // block length 512
        return d
    }

    @Test func extendedCopyAndODXCopyAcrossLUNsAndTargets() async throws {
        // t0: LUN 0 source, LUN 1 ODX destination; t1: LUN 0 XCOPY destination (same initiator may log into both).
        let daemon = try await daemon(volumes: [["src", "odx"], ["dst"]])
        defer { daemon.cleanup() }
        let c = try login(daemon, Self.hostA)
        let data = try Self.random(1 << 20)
        #expect(write10(c, lba: 2048, data)?.good == true)

        // EXTENDED COPY(LID1): 2048 blocks from t0/LUN 0 at 2048 to t1/LUN 0 at 4096.
        let other = try login(daemon, Self.hostA, target: 1)
        let targets = Self.identificationDescriptor(try naa(c)) + Self.identificationDescriptor(try naa(other))
        let segment: [UInt8] =
            [0x02, 0, 0, 0x18, 0, 0, 0, 1, 0, 0] + Self.be(2048, 2) + Self.be(2048, 8) + Self.be(4096, 8)
        var header = [UInt8](repeating: 0, count: 16)
        header[0] = 7
        header[1] = 0x00  // LIST ID USAGE 00b: keep the status for RECEIVE COPY RESULTS
        header[3] = UInt8(targets.count)
        header[11] = UInt8(segment.count)
        let list = header + targets + segment
        let xcopy = c.command(
            [0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0] + Self.be(UInt64(list.count), 4) + [0, 0], dataOut: list)
        #expect(xcopy?.good == true, "EXTENDED COPY: \(xcopy?.senseText ?? c.lastError)")
        let copied = try #require(read10(other, lba: 4096, blocks: 2048))
        #expect(Self.checksum(copied.data) == Self.checksum(data) && copied.data == data, "XCOPY checksum")
        let status = try #require(c.command([0x84, 0x00, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0], dataIn: 1024))
        #expect(
            status.good && status.data[4] == 0x01 && status.data[6] == 1,
            "COPY STATUS: completed, one segment: \(status.data.prefix(12))")

        // ODX: POPULATE TOKEN over the same range, token from RECEIVE ROD TOKEN INFORMATION, WRITE USING TOKEN to LUN 1.
        let populate: [UInt8] =
            Self.be(30, 2) + [0, 0] + [0, 0, 0, 0] + [0, 0, 0, 0] + [0, 0, 0, 16] + Self.be(2048, 8) + Self.be(2048, 4)
            + [0, 0, 0, 0]
        #expect(
            c.command([0x83, 0x10, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, UInt8(populate.count), 0, 0], dataOut: populate)?
                .good == true)
        let info = try #require(c.command([0x84, 0x07, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0], dataIn: 1024))
        let tokenAt = 32 + Int(info.data[13]) + 6
        try #require(info.good && info.data.count >= tokenAt + 512, "RRTI: \(info.senseText)")
        let token = Array(info.data[tokenAt..<(tokenAt + 512)])
        func writeUsingToken(_ token: [UInt8], lba: UInt64) -> LibISCSIClient.Outcome? {
            let params: [UInt8] =
                Self.be(550, 2) + [UInt8](repeating: 0, count: 14) + token + [UInt8](repeating: 0, count: 6) + [0, 16]
                + Self.be(lba, 8) + Self.be(2048, 4) + [0, 0, 0, 0]
            return c.command(
                lun: 1, [0x83, 0x11, 0, 0, 0, 0, 0, 0, 0, 10] + Self.be(UInt64(params.count), 4) + [0, 0],
                dataOut: params)
        }
        _ = c.command(lun: 1, [0, 0, 0, 0, 0, 0])  // LUN 1's POWER ON unit attention
        let wut = writeUsingToken(token, lba: 512)
        #expect(wut?.good == true, "WRITE USING TOKEN: \(wut?.senseText ?? c.lastError)")
        let odx = try #require(read10(c, lun: 1, lba: 512, blocks: 2048))
        #expect(Self.checksum(odx.data) == Self.checksum(data) && odx.data == data, "ODX checksum")
        // A write into the token's range cancels it (change-vulnerable token): INVALID TOKEN OPERATION, TOKEN CANCELLED.
        #expect(write10(c, lba: 2050, [UInt8](repeating: 1, count: 512))?.good == true)
        let cancelled = writeUsingToken(token, lba: 8192)
        #expect(
            cancelled?.status == 2 && cancelled?.key == 5 && cancelled?.ascq == 0x2308, "\(cancelled?.senseText ?? "")")
        // A made-up token is unknown.
        let unknown = writeUsingToken(try Self.random(512), lba: 8192)
        #expect(unknown?.status == 2 && unknown?.key == 5 && unknown?.ascq == 0x2304, "\(unknown?.senseText ?? "")")
        c.logout()
        other.logout()
    }

    /// Copy scope (issue 13; CVE-2020-28374's lesson): an EXTENDED COPY
    /// descriptor or a ROD token resolves only LUs the requesting nexus may
    /// reach — its own target's, and those of targets it is logged in to.
    /// Host A (on t0) names host B's LUN on t1 by its NAA identity: COPY
    /// ABORTED, COPY TARGET DEVICE NOT REACHABLE, either way, and B's token is
    /// unknown to A; neither LUN's data is read or changed.
    @Test func copiesReachOnlyTheLUsTheNexusMayReach() async throws {
        let daemon = try await daemon(volumes: [["a"], ["b"]])
        defer { daemon.cleanup() }
        let a = try login(daemon, Self.hostA)
        let b = try login(daemon, Self.hostB, target: 1)
        let secret = try Self.random(1 << 20)
        let mine = try Self.random(1 << 20)
        #expect(write10(b, lba: 0, secret)?.good == true)
        #expect(write10(a, lba: 0, mine)?.good == true)
        let theirs = try naa(b)
        let own = try naa(a)
        func xcopy(from source: [UInt8], to destination: [UInt8]) -> LibISCSIClient.Outcome? {
            let targets = Self.identificationDescriptor(source) + Self.identificationDescriptor(destination)
            let segment: [UInt8] =
                [0x02, 0, 0, 0x18, 0, 0, 0, 1, 0, 0] + Self.be(2048, 2) + Self.be(0, 8) + Self.be(0, 8)
            var header = [UInt8](repeating: 0, count: 16)
            header[0] = 9
            header[3] = UInt8(targets.count)
            header[11] = UInt8(segment.count)
            let list = header + targets + segment
            return a.command(
                [0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0] + Self.be(UInt64(list.count), 4) + [0, 0], dataOut: list)
        }
        // Reading B's LUN into A's, and writing A's over B's: both unreachable.
        for (source, destination) in [(theirs, own), (own, theirs)] {
            let refused = xcopy(from: source, to: destination)
            #expect(
                refused?.status == 2 && refused?.key == 0x0A && refused?.ascq == 0x0D02,
                "\(refused?.senseText ?? a.lastError)")
        }
        // B's ROD token (POPULATE TOKEN on t1) redeemed by A on t0: unknown.
        let populate: [UInt8] =
            Self.be(30, 2) + [0, 0] + [0, 0, 0, 0] + [0, 0, 0, 0] + [0, 0, 0, 16] + Self.be(0, 8) + Self.be(2048, 4)
            + [0, 0, 0, 0]
        #expect(
            b.command([0x83, 0x10, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, UInt8(populate.count), 0, 0], dataOut: populate)?
                .good == true)
        let info = try #require(b.command([0x84, 0x07, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0], dataIn: 1024))
        let tokenAt = 32 + Int(info.data[13]) + 6
        try #require(info.good && info.data.count >= tokenAt + 512, "RRTI: \(info.senseText)")
        let token = Array(info.data[tokenAt..<(tokenAt + 512)])
        let params: [UInt8] =
            Self.be(550, 2) + [UInt8](repeating: 0, count: 14) + token + [UInt8](repeating: 0, count: 6) + [0, 16]
            + Self.be(0, 8) + Self.be(2048, 4) + [0, 0, 0, 0]
        let wut = a.command(
            [0x83, 0x11, 0, 0, 0, 0, 0, 0, 0, 11] + Self.be(UInt64(params.count), 4) + [0, 0], dataOut: params)
        #expect(wut?.status == 2 && wut?.key == 5 && wut?.ascq == 0x2304, "\(wut?.senseText ?? a.lastError)")
        // Nothing moved.
        let aUnchanged = read10(a, lba: 0, blocks: 2048)?.data == mine
        let bUnchanged = read10(b, lba: 0, blocks: 2048)?.data == secret
        #expect(aUnchanged, "A's LUN changed")
        #expect(bUnchanged, "B's LUN changed")
        a.logout()
        b.logout()
    }

    /// #21 item 18: every bit and page ESXi (VAAI: ATS, Clone, Zero, Delete) and
    /// Windows (ODX, thin provisioning) read before they use an offload, as the
    /// standards place them — one failing line names what a host would turn off.
    @Test func everySignalESXiAndWindowsReadBeforeUsingOffloadsIsSet() async throws {
        let daemon = try await daemon(volumes: [["v"]])
        defer { daemon.cleanup() }
        let c = try login(daemon, Self.hostA)
        _ = c.command([0, 0, 0, 0, 0, 0])
        func u16(_ d: [UInt8], _ at: Int) -> Int { d.count >= at + 2 ? Int(d[at]) << 8 | Int(d[at + 1]) : -1 }
        func u32(_ d: [UInt8], _ at: Int) -> Int { d.count >= at + 4 ? u16(d, at) << 16 | u16(d, at + 2) : -1 }
        // Standard INQUIRY 3PC (SPC-4 §6.6.2): ESXi's Clone (XCOPY), Windows ODX.
        let inquiry = try #require(c.command([0x12, 0, 0, 0, 96, 0], dataIn: 96))
        #expect(inquiry.data.count > 5 && inquiry.data[5] & 0x08 != 0, "3PC")
        // Supported VPD pages (SPC-4 §7.8.16): third-party copy, block limits, logical block provisioning.
        let pages = try #require(c.command([0x12, 1, 0x00, 0, 255, 0], dataIn: 255)).data.dropFirst(4)
        for page: UInt8 in [0x80, 0x83, 0x8F, 0xB0, 0xB2] {
            #expect(pages.contains(page), "VPD \(String(page, radix: 16))h listed")
        }
        // Block Limits (SBC-3 §6.6.4): ATS needs MAXIMUM COMPARE AND WRITE LENGTH ≥ 1; Delete
        // needs MAXIMUM UNMAP LBA COUNT and BLOCK DESCRIPTOR COUNT; Windows reads OPTIMAL UNMAP GRANULARITY.
        let limits = try #require(c.command([0x12, 1, 0xB0, 0, 64, 0], dataIn: 64)).data
        #expect(
            limits.count >= 64 && limits[5] >= 1, "MAXIMUM COMPARE AND WRITE LENGTH \(limits.count > 5 ? limits[5] : 0)"
        )
        #expect(
            u32(limits, 20) > 0 && u32(limits, 24) > 0,
            "MAXIMUM UNMAP LBA COUNT \(u32(limits, 20)), DESCRIPTORS \(u32(limits, 24))")
        #expect(u32(limits, 28) > 0, "OPTIMAL UNMAP GRANULARITY")
        #expect(u32(limits, 8) > 0, "MAXIMUM TRANSFER LENGTH")
        // Logical Block Provisioning (SBC-3 §6.6.7): LBPU (UNMAP), LBPWS and LBPWS10 (WRITE SAME with UNMAP), thin.
        let provisioning = try #require(c.command([0x12, 1, 0xB2, 0, 8, 0], dataIn: 8)).data
        #expect(provisioning.count >= 7 && provisioning[5] & 0xE0 == 0xE0, "LBPU LBPWS LBPWS10 \(provisioning)")
        #expect(provisioning.count >= 7 && provisioning[6] & 0x07 == 0x02, "PROVISIONING TYPE thin")
        // READ CAPACITY(16) LBPME (SBC-3 §5.16.2): without it neither host unmaps.
        let capacity = try #require(
            c.command([0x9E, 0x10] + [UInt8](repeating: 0, count: 8) + [0, 0, 0, 32, 0, 0], dataIn: 32)
        ).data
        #expect(capacity.count >= 15 && capacity[14] & 0x80 != 0, "LBPME")
        // REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35), all commands: each offload's command and service action.
        let report = try #require(c.command([0xA3, 0x0C, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], dataIn: 65536)).data
        var supported: Set<[Int]> = []
        var at = 4
        while at + 8 <= report.count {
            supported.insert(report[at + 5] & 0x01 != 0 ? [Int(report[at]), u16(report, at + 2)] : [Int(report[at])])
            at += 8 + (report[at + 5] & 0x02 != 0 ? 12 : 0)
        }
        let needed: [(String, [Int])] = [
            ("COMPARE AND WRITE (ATS)", [0x89]), ("WRITE SAME(16) (Zero)", [0x93]), ("WRITE SAME(10)", [0x41]),
            ("UNMAP (Delete)", [0x42]),
            ("EXTENDED COPY LID1 (Clone)", [0x83, 0x00]), ("RECEIVE COPY RESULTS: OPERATING PARAMETERS", [0x84, 0x03]),
            ("POPULATE TOKEN (ODX)", [0x83, 0x10]), ("WRITE USING TOKEN (ODX)", [0x83, 0x11]),
            ("RECEIVE ROD TOKEN INFORMATION", [0x84, 0x07]),
        ]
        for (name, code) in needed { #expect(supported.contains(code), "\(name) reported") }
        // RECEIVE COPY RESULTS operating parameters (SPC-4 §6.22.4): ESXi's XCOPY uses the
        // block→block segment (02h) and the identification CSCD descriptor (E4h).
        let operating = try #require(
            c.command([0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0], dataIn: 1024))
        // IMPLEMENTED DESCRIPTOR LIST LENGTH at byte 43, the type codes from byte 44.
        let implemented =
            operating.data.count > 43
            ? Array(operating.data[44..<min(operating.data.count, 44 + Int(operating.data[43]))]) : []
        #expect(
            operating.good && implemented.contains(0x02) && implemented.contains(0xE4),
            "descriptor codes \(implemented)")
        #expect(
            u16(operating.data, 8) >= 2 && u16(operating.data, 10) >= 1 && u32(operating.data, 16) > 0,
            "CSCD/segment counts, segment length")
        // Third-Party Copy VPD (SPC-4 §7.8.17): supported commands, Block Device ROD Token
        // Limits (SBC-3 §6.6.6, Windows ODX reads it), supported ROD types.
        let tpc = try #require(c.command([0x12, 1, 0x8F, 0x04, 0x00, 0], dataIn: 1024)).data
        var descriptors: [Int: [UInt8]] = [:]
        at = 4
        while at + 4 <= tpc.count {
            let length = u16(tpc, at + 2)
            descriptors[u16(tpc, at)] = Array(tpc[(at + 4)..<min(tpc.count, at + 4 + length)])
            at += 4 + length
        }
        #expect(
            descriptors[0x0001] != nil && descriptors[0x0000] != nil && descriptors[0x0108] != nil,
            "descriptors \(descriptors.keys.sorted())")
        if let rod = descriptors[0x0000] {
            #expect(
                u16(rod, 6) > 0 && rod.count >= 28 && rod[16..<24].contains { $0 != 0 },
                "MAXIMUM RANGE DESCRIPTORS, MAXIMUM TOKEN TRANSFER SIZE")
        }
        c.logout()
    }

    @Test func unmapGivesSpaceBackAndThePoolSignalsThresholdAndExhaustion() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        #expect(
            try daemon.depot(["pool", "create", "small", "--capacity", "32M", "--warn", "50", "--critical", "90"])
                .status == 0)
        #expect(try daemon.depot(["volume", "create", "small/thin", "--size", "64M"]).status == 0)
        #expect(try daemon.depot(["target", "create", "iqn.2026-11.dev.depot:t0", "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", "iqn.2026-11.dev.depot:t0", "small/thin"]).status == 0)
        let c = try login(daemon, Self.hostA)
        func used() async throws -> UInt64 {
            try await daemon.client.capacity().pools.first { $0.name == "small" }?.usedBytes ?? 0
        }
        func waitFor(_ what: String, _ condition: () async throws -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(15)
            while try await !condition() {
                guard ContinuousClock.now < deadline else { throw HarnessError("timed out waiting for \(what)") }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        // 20 MiB written: past the 50 % soft threshold of the 32 MiB pool.
        let chunk = try Self.random(1 << 20)
        for i in 0..<20 { #expect(write10(c, lba: UInt32(i * 2048), chunk)?.good == true) }
        try await waitFor("usedBytes ≥ 20 MiB") { try await used() >= 20 << 20 }
        // THIN PROVISIONING SOFT THRESHOLD REACHED, to this initiator on its next command.
        try await waitFor("38h/07h") {
            let r = c.command([0, 0, 0, 0, 0, 0])
            return r?.status == 2 && r?.key == 6 && r?.ascq == 0x3807
        }
        // LOG SENSE, logical block provisioning page: used resources in 1 MiB units.
        let log = try #require(c.command([0x4D, 0, 0x4C, 0, 0, 0, 0, 0x01, 0, 0], dataIn: 256))
        // (st_blocks may count a block of extent tree beside the 20 MiB of data.)
        let usedUnits = log.data.count >= 28 ? log.data[20..<24].reduce(0) { $0 << 8 | Int($1) } : -1
        #expect(log.good && log.data[0] == 0x0C && (20...21).contains(usedUnits), "LBP log page: \(log.data)")

        // 14 MiB more: the pool is full; a write that needs new blocks is refused with
        // SPACE ALLOCATION FAILED WRITE PROTECT, one to blocks it has still works.
        for i in 20..<34 { _ = write10(c, lba: UInt32(i * 2048), chunk) }
        try await waitFor("pool exhausted") { try await used() >= 32 << 20 }
        // The API shows a rescan's figures a moment before the LUs are given them, so an
        // early probe may still be accepted and allocate its blocks: every probe goes to
        // blocks never written, so each one needs new space.
        var probe: UInt32 = 0
        try await waitFor("27h/07h") {
            defer { probe += 1 }
            let r = write10(c, lba: 60 * 2048 + probe * 8, [UInt8](repeating: 7, count: 4096))
            return r?.status == 2 && r?.key == 7 && r?.ascq == 0x2707
        }
        #expect(
            write10(c, lba: 0, [UInt8](repeating: 9, count: 4096))?.good == true,
            "overwriting allocated blocks needs no space")

        // UNMAP 24 MiB: usedBytes goes down and the LU takes new writes again by itself.
        let before = try await used()
        let descriptor = Self.be(0, 8) + Self.be(24 * 2048, 4) + [0, 0, 0, 0]
        let unmap = [0, 22, 0, 16, 0, 0, 0, 0] + descriptor
        #expect(c.command([0x42, 0, 0, 0, 0, 0, 0, 0, UInt8(unmap.count), 0], dataOut: unmap)?.good == true)
        try await waitFor("usedBytes down by 24 MiB") { try await used() <= before - (24 << 20) }
        try await waitFor("writes accepted again") {
            write10(c, lba: 60 * 2048, [UInt8](repeating: 7, count: 4096))?.good == true
        }
        let reread = try #require(read10(c, lba: 60 * 2048, blocks: 8))
        #expect(reread.data == [UInt8](repeating: 7, count: 4096))
        c.logout()
    }
}

/// ALUA with two portals, as dm-multipath, ESXi's NMP/SATP_ALUA and Windows
/// MPIO use it: REPORT TARGET PORT GROUPS, the port designators of VPD 83h,
/// maintenance through `depot target portal-group set-state`, and SET
/// TARGET PORT GROUPS from an initiator.
@Suite(.serialized) struct ALUATests {
    @Test func portalGroupsReportMaintenanceAndExplicitChanges() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start(extra: ["--portal", "127.0.0.1:0"])
        let portals = try String(contentsOfFile: daemon.data + "/iscsi.portals", encoding: .utf8).split(separator: "\n")
            .map(String.init)
        try #require(portals.count == 2)
        let iqn = "iqn.2026-11.dev.depot:alua"
        #expect(try daemon.depot(["volume", "create", "default/a", "--size", "16M"]).status == 0)
        #expect(try daemon.depot(["target", "create", iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", iqn, "default/a"]).status == 0)
        // One host, two paths (two initiator ports), one per portal.
        var paths: [LibISCSIClient] = []
        for (index, portal) in portals.enumerated() {
            let c = try LibISCSIClient(initiator: EnterpriseSCSITests.hostA, isid: UInt32(index + 1))
            #expect(c.login(portal: portal, target: iqn), "path \(index + 1): \(c.lastError)")
            _ = c.command([0, 0, 0, 0, 0, 0])
            paths.append(c)
        }
        // Standard INQUIRY: TPGS 11b (implicit and explicit ALUA) and 3PC (third-party
        // copy: ESXi's VAAI full copy is used only with it).
        #expect(paths[0].command([0x12, 0, 0, 0, 96, 0], dataIn: 96)?.data[5] == 0x38)
        // REPORT TARGET PORT GROUPS: two groups, active/optimized, relative ports 1 and 2.
        func groups(_ c: LibISCSIClient) -> [(state: UInt8, group: Int, port: Int)] {
            guard let r = c.command([0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0], dataIn: 1024), r.good else {
                return []
            }
            var found: [(state: UInt8, group: Int, port: Int)] = []
            for at in stride(from: 4, to: r.data.count - 11, by: 12) {
                let group = Int(r.data[at + 2]) << 8 | Int(r.data[at + 3])
                let port = Int(r.data[at + 10]) << 8 | Int(r.data[at + 11])
                found.append((r.data[at] & 0x0F, group, port))
            }
            return found
        }
        #expect(groups(paths[0]).map { [$0.state, UInt8($0.group), UInt8($0.port)] } == [[0, 1, 1], [0, 2, 2]])
        // VPD 83h through path 2 names relative target port 2 and target port group 2.
        let vpd = try #require(paths[1].command([0x12, 0x01, 0x83, 0x01, 0x00, 0], dataIn: 256))
        var designators: [UInt8: [UInt8]] = [:]
        var at = 4
        while at + 4 <= vpd.data.count {
            let length = Int(vpd.data[at + 3])
            designators[vpd.data[at + 1] & 0x0F] = Array(vpd.data[(at + 4)..<min(vpd.data.count, at + 4 + length)])
            at += 4 + length
        }
        #expect(designators[0x04] == [0, 0, 0, 2] && designators[0x05] == [0, 0, 0, 2], "\(designators)")

        // Maintenance on portal 2: standby. Path 2 is told, then refused; path 1 carries on.
        var r = try daemon.depot(["target", "portal-group", "set-state", iqn, "2", "standby"])
        #expect(r.status == 0, "\(r.stderr)")
        var probe = paths[1].command([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], dataIn: 512)
        #expect(probe?.key == 6 && probe?.ascq == 0x2A06, "ASYMMETRIC ACCESS STATE CHANGED: \(probe?.senseText ?? "")")
        probe = paths[1].command([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], dataIn: 512)
        #expect(
            probe?.status == 2 && probe?.key == 2 && probe?.ascq == 0x040B,
            "TARGET PORT IN STANDBY STATE: \(probe?.senseText ?? "")")
        #expect(paths[1].command([0x12, 0, 0, 0, 96, 0], dataIn: 96)?.good == true, "INQUIRY stays open in standby")
        _ = paths[0].command([0, 0, 0, 0, 0, 0])  // path 1 hears of the change too
        #expect(paths[0].command([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], dataIn: 512)?.good == true)
        #expect(groups(paths[0]).map(\.state) == [0, 2])
        // A bad group or state is refused by the CLI with a message.
        r = try daemon.depot(["target", "portal-group", "set-state", iqn, "3", "standby"])
        #expect(r.status != 0 && r.stderr.contains("does not exist"), "\(r.stderr)")
        r = try daemon.depot(["target", "portal-group", "set-state", iqn, "1", "sleepy"])
        #expect(r.status != 0)
        // Standby on group 1 too would leave no active path: refused without --force, nothing changed.
        r = try daemon.depot(["target", "portal-group", "set-state", iqn, "1", "standby"])
        #expect(
            r.status != 0 && r.stderr.contains("no active portal group") && r.stderr.contains("nothing was changed"),
            "\(r.stderr)")
        #expect(groups(paths[0]).map(\.state) == [0, 2])
        r = try daemon.depot(["target", "portal-group", "set-state", iqn, "1", "standby", "--force"])
        #expect(
            r.status == 0 && r.stdout.contains("warning: \(iqn) has no active portal group"), "\(r.stdout)\(r.stderr)")
        #expect(try daemon.depot(["target", "portal-group", "set-state", iqn, "1", "active-optimized"]).status == 0)
        _ = paths[0].command([0, 0, 0, 0, 0, 0])  // ASYMMETRIC ACCESS STATE CHANGED, twice over
        _ = paths[0].command([0, 0, 0, 0, 0, 0])

        // SET TARGET PORT GROUPS from the initiator (explicit ALUA): group 2 active/non-optimized.
        let list: [UInt8] = [0, 0, 0, 0, 0x01, 0, 0, 2]
        let set = paths[0].command([0xA4, 0x0A, 0, 0, 0, 0, 0, 0, 0, UInt8(list.count), 0, 0], dataOut: list)
        #expect(set?.good == true, "SET TARGET PORT GROUPS: \(set?.senseText ?? paths[0].lastError)")
        r = try daemon.depot(["target", "portal-group", "list", iqn])
        #expect(r.stdout.contains("active-non-optimized"), "\(r.stdout)")
        _ = paths[1].command([0, 0, 0, 0, 0, 0])
        #expect(
            paths[1].command([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], dataIn: 512)?.good == true,
            "active/non-optimized serves I/O")
        // A state an initiator may not ask for (transitioning) is INVALID FIELD IN PARAMETER LIST.
        let bad = paths[0].command([0xA4, 0x0A, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], dataOut: [0, 0, 0, 0, 0x0F, 0, 0, 2])
        #expect(bad?.key == 5 && bad?.ascq == 0x2600)
        // Unavailable: even TEST UNIT READY is refused, with its own code.
        #expect(try daemon.depot(["target", "portal-group", "set-state", iqn, "2", "unavailable"]).status == 0)
        _ = paths[1].command([0, 0, 0, 0, 0, 0])
        probe = paths[1].command([0, 0, 0, 0, 0, 0])
        #expect(probe?.key == 2 && probe?.ascq == 0x040C, "TARGET PORT IN UNAVAILABLE STATE: \(probe?.senseText ?? "")")
        for c in paths { c.logout() }
    }
}
