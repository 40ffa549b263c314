import DepotCore
import Foundation
import Testing

/// Logins with no auth, one-way and mutual CHAP, a wrong secret and an
/// initiator outside the ACL; reads and writes across burst boundaries; task
/// management — all from libiscsi, driven from Swift.
@Suite(.serialized) struct LibISCSILoginTests {
    static let iqn = "iqn.2026-11.dev.depot:chap"
    static let initiator = "iqn.2026-11.dev.depot:swift-initiator"

    @Test func chapACLAndBurstEdges() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        #expect(try daemon.depot(["volume", "create", "default/c", "--size", "16M"]).status == 0)
        #expect(try daemon.depot(["target", "create", Self.iqn]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn, "default/c"]).status == 0)

        // Not in the ACL: authorization failure.
        var client = try LibISCSIClient(initiator: Self.initiator)
        #expect(!client.login(portal: daemon.portal, target: Self.iqn))
        #expect(try daemon.depot(["target", "acl", "add", Self.iqn, Self.initiator]).status == 0)
        client = try LibISCSIClient(initiator: Self.initiator)
        #expect(client.login(portal: daemon.portal, target: Self.iqn), "AuthMethod=None login: \(client.lastError)")

        // Reads and writes at and across the burst limits: 256 KiB bursts, 1 MiB + one block.
        var rng = SystemRandomNumberGenerator()
        for length in [512, 8192, 262_144, 262_144 + 512, (1 << 20) + 512] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(client.write(lba: 7, bytes), "write of \(length) bytes: \(client.lastError)")
            #expect(client.read(lba: 7, length: length) == bytes, "read back of \(length) bytes differs")
        }
        // Map changes and resizes reach the live session as unit attentions (SPC-4 §5.14).
        #expect(try daemon.depot(["volume", "create", "default/d", "--size", "1M"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn, "default/d", "--lun", "1"]).status == 0)
        var probe = client.probe()
        #expect(
            probe?.status == 2 && probe?.key == 6 && probe?.ascq == 0x3F0E,
            "REPORTED LUNS DATA HAS CHANGED: \(String(describing: probe))")
        #expect(client.probe()?.status == 0, "a unit attention is reported once")
        #expect(try daemon.depot(["volume", "resize", "default/c", "--size", "32M"]).status == 0)
        probe = client.probe()
        #expect(
            probe?.status == 2 && probe?.key == 6 && probe?.ascq == 0x2A09,
            "CAPACITY DATA HAS CHANGED: \(String(describing: probe))")
        #expect(client.probe()?.status == 0)
        #expect(client.lunReset(), "LUN RESET")
        // The same reads and writes with CRC32C header digests.
        let digested = try LibISCSIClient(initiator: Self.initiator)
        #expect(digested.login(portal: daemon.portal, target: Self.iqn, headerDigest: true), "\(digested.lastError)")
        for length in [512, 262_144 + 512, (1 << 20) + 512] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(digested.write(lba: 9, bytes), "digested write of \(length) bytes: \(digested.lastError)")
            #expect(digested.read(lba: 9, length: length) == bytes, "digested read back of \(length) bytes differs")
        }
        let digestSessions = try await daemon.client.sessions()
        #expect(
            digestSessions.contains { $0.parameters["HeaderDigest"] == "CRC32C" }, "\(digestSessions.map(\.parameters))"
        )
        digested.logout()
        // The LUN reset's unit attention reaches the session that asked too (SAM-5 §6.3.3), once.
        #expect(client.probe()?.ascq == 0x2903, "BUS DEVICE RESET FUNCTION OCCURRED")
        #expect(client.read(lba: 0, length: 512) != nil, "the session works after a LUN reset")
        client.logout()

        // One-way CHAP: right secret in, wrong secret and no CHAP out.
        var r = try daemon.depot(["target", "chap", "set", Self.iqn, "--user", "alice", "--secret", "alice-secret-1"])
        #expect(r.status == 0, "\(r.stderr)")
        client = try LibISCSIClient(initiator: Self.initiator)
        #expect(!client.login(portal: daemon.portal, target: Self.iqn), "login without CHAP must fail")
        client = try LibISCSIClient(initiator: Self.initiator)
        #expect(
            !client.login(
                portal: daemon.portal, target: Self.iqn, chap: .init(user: "alice", secret: "wrong-secret-12")))
        client = try LibISCSIClient(initiator: Self.initiator)
        #expect(
            client.login(portal: daemon.portal, target: Self.iqn, chap: .init(user: "alice", secret: "alice-secret-1")),
            "one-way CHAP: \(client.lastError)")
        client.logout()

        // Mutual CHAP: the initiator checks the target's answer too.
        r = try daemon.depot([
            "target", "chap", "set", Self.iqn, "--user", "alice", "--secret", "alice-secret-1",
            "--mutual-user", "depot", "--mutual-secret", "target-secret-2",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        client = try LibISCSIClient(initiator: Self.initiator)
        #expect(
            client.login(
                portal: daemon.portal, target: Self.iqn,
                chap: .init(
                    user: "alice", secret: "alice-secret-1", mutualUser: "depot", mutualSecret: "target-secret-2")),
            "mutual CHAP: \(client.lastError)")
        #expect(client.read(lba: 0, length: 4096) != nil)
        // The live session is listed, and it keeps the target from being deleted unless forced.
        r = try daemon.depot(["session", "list", "--json"])
        let sessions = try JSONDecoder().decode(SessionList.self, from: Data(r.stdout.utf8)).sessions
        #expect(
            sessions.count == 1 && sessions.first?.initiator == Self.initiator && sessions.first?.target == Self.iqn)
        #expect(sessions.first?.parameters["AuthMethod"] == "CHAP" && sessions.first?.portal == daemon.portal)
        r = try daemon.depot(["target", "delete", Self.iqn])
        #expect(r.status != 0 && r.stderr.contains("session(s) logged in"), "\(r.stderr)")
        client.logout()
        client = try LibISCSIClient(initiator: Self.initiator)
        #expect(
            !client.login(
                portal: daemon.portal, target: Self.iqn,
                chap: .init(
                    user: "alice", secret: "alice-secret-1", mutualUser: "depot", mutualSecret: "not-the-secret")),
            "the initiator must reject a target that does not know the mutual secret")
        // Secrets never leave the daemon.
        r = try daemon.depot(["target", "show", Self.iqn, "--json"])
        #expect(
            !r.stdout.contains("alice-secret-1") && !r.stdout.contains("target-secret-2")
                && r.stdout.contains("\"mutualChap\" : true"))
        let mode =
            try FileManager.default.attributesOfItem(atPath: daemon.data + "/catalog.sqlite")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // --force closes logged-in sessions.
        #expect(try daemon.depot(["target", "chap", "clear", Self.iqn]).status == 0)
        client = try LibISCSIClient(initiator: Self.initiator)
        #expect(client.login(portal: daemon.portal, target: Self.iqn), "\(client.lastError)")
        #expect(try daemon.depot(["target", "delete", Self.iqn, "--force"]).status == 0)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await daemon.client.sessions().isEmpty)
        #expect(client.read(lba: 0, length: 512) == nil, "the forced-out session no longer reads")
    }

    /// Login throttling (issue 13): after `--auth-failures` failed logins of
    /// one initiator from one address within 60 s, that pair is refused for
    /// `--auth-lockout` seconds even with the right secret; another
    /// initiator is not; the refusals are counted and audited.
    @Test func repeatedLoginFailuresLockThePairOutForAWhile() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start(extra: ["--auth-failures", "3", "--auth-lockout", "3"])
        let other = "iqn.2026-11.dev.depot:other-initiator"
        #expect(try daemon.depot(["volume", "create", "default/c", "--size", "16M"]).status == 0)
        #expect(try daemon.depot(["target", "create", Self.iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn, "default/c"]).status == 0)
        let set = try daemon.depot(["target", "chap", "set", Self.iqn, "--user", "alice", "--secret", "alice-secret-1"])
        #expect(set.status == 0, "\(set.stderr)")
        let right = LibISCSIClient.Credentials(user: "alice", secret: "alice-secret-1")
        let wrong = LibISCSIClient.Credentials(user: "alice", secret: "wrong-secret-12")
        for _ in 0..<3 {
            #expect(
                !(try LibISCSIClient(initiator: Self.initiator)).login(
                    portal: daemon.portal, target: Self.iqn, chap: wrong))
        }
        // Locked out: the right secret is not even looked at (twice: counted twice, audited once).
        for _ in 0..<2 {
            let locked = try LibISCSIClient(initiator: Self.initiator)
            #expect(
                !locked.login(portal: daemon.portal, target: Self.iqn, chap: right), "a locked-out pair must be refused"
            )
        }
        // Another initiator from the same address is not affected.
        let bystander = try LibISCSIClient(initiator: other)
        #expect(bystander.login(portal: daemon.portal, target: Self.iqn, chap: right), "\(bystander.lastError)")
        bystander.logout()
        // The lockout ends by itself.
        try await Task.sleep(for: .seconds(3.5))
        let after = try LibISCSIClient(initiator: Self.initiator)
        #expect(after.login(portal: daemon.portal, target: Self.iqn, chap: right), "\(after.lastError)")
        after.logout()

        let metrics = try Daemon.run(
            "/usr/bin/curl", ["-sf", "-H", "Authorization: Bearer \(daemon.token)", daemon.url + "/metrics"]
        ).stdout
        func count(_ reason: String) -> String? {
            metrics.split(separator: "\n").first {
                $0.hasPrefix("depot_iscsi_login_failures_total{") && $0.contains(#"reason="\#(reason)""#)
                    && $0.contains(#"target="\#(Self.iqn)""#)
            }?.split(separator: " ").last.map(String.init)
        }
        #expect(count("authentication") == "3" && count("locked-out") == "2", "\(metrics)")
        let audit = try String(contentsOfFile: daemon.data + "/audit.log", encoding: .utf8)
        let logins = audit.split(separator: "\n").filter { $0.contains(#""action":"iscsi.login""#) }
        #expect(logins.count == 4 && logins.allSatisfy { $0.contains(Self.initiator) && $0.contains("127.0.0.1") })
        #expect(logins.filter { $0.contains("locked-out") }.count == 1)
    }
}
