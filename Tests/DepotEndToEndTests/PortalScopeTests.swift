import DepotCore
import Foundation
import Testing

/// Storage VLANs: a target bound to some of the daemon's portals is neither
/// admitted nor listed through the others, and an ACL entry scoped by
/// network admits its initiator only from those addresses — with libiscsi
/// logging in and discovering over IPv4 and IPv6 loopback.
@Suite(.serialized) struct PortalScopeTests {
    static let iqn = "iqn.2026-12.dev.depot:scoped"
    static let initiator = "iqn.2026-12.dev.depot:vlan-host"

    func inquiry(_ portal: String) throws -> CommandResult {
        try Daemon.run(
            try NFSGaneshaTests.tool("iscsi-inq"), ["-i", Self.initiator, "iscsi://\(portal)/\(Self.iqn)/0"])
    }

    func discovery(_ portal: String) throws -> String {
        try Daemon.run(try NFSGaneshaTests.tool("iscsi-ls"), ["-i", Self.initiator, "iscsi://\(portal)"]).stdout
    }

    /// Starts depotd on 127.0.0.1 and [::1]; returns the two portals as bound.
    func startOnBothLoopbacks(_ daemon: Daemon) async throws -> (v4: String, v6: String) {
        try await daemon.start(extra: ["--portal", "[::1]:0"])
        let portals = try String(contentsOfFile: daemon.data + "/iscsi.portals", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        try #require(portals.count == 2, "\(portals)")
        return (portals[0], portals[1])
    }

    func shown(_ daemon: Daemon) throws -> TargetInfo {
        let r = try daemon.depot(["target", "show", Self.iqn, "--json"])
        return try JSONDecoder().decode(TargetInfo.self, from: Data(r.stdout.utf8))
    }

    @Test func portalBindingAndNetworkScopedACLs() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        let (v4, v6) = try await startOnBothLoopbacks(daemon)
        #expect(v4.hasPrefix("127.0.0.1:") && v6.hasPrefix("[::1]:"), "\(v4) \(v6)")
        #expect(try daemon.depot(["volume", "create", "default/s", "--size", "16M"]).status == 0)
        #expect(try daemon.depot(["target", "create", Self.iqn]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn, "default/s"]).status == 0)
        #expect(try daemon.depot(["target", "acl", "add", Self.iqn, Self.initiator]).status == 0)
        for portal in [v4, v6] {
            let r = try inquiry(portal)
            #expect(r.status == 0, "login via \(portal) before any binding: \(r.stderr)")
        }

        // Bound to the IPv6 portal: the IPv4 one neither admits nor lists it.
        var r = try daemon.depot(["target", "portal", "set", Self.iqn, "--portal", v6])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try shown(daemon).portals == [v6])
        #expect(try inquiry(v4).status != 0, "a target bound elsewhere must not admit a login through \(v4)")
        r = try inquiry(v6)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!(try discovery(v4)).contains(Self.iqn), "discovery through \(v4) must not list the target")
        let listed = try discovery(v6)
        #expect(listed.contains("Target:\(Self.iqn) Portal:\(v6),2"), "\(listed)")
        #expect(!listed.contains(v4), "only the portals the target is served on are offered: \(listed)")

        // A portal the daemon does not listen on, and neither or both options: refused, nothing changed.
        r = try daemon.depot(["target", "portal", "set", Self.iqn, "--portal", "127.0.0.1:1"])
        #expect(
            r.status != 0 && r.stderr.contains("not a portal of this daemon") && r.stderr.contains(v4), "\(r.stderr)")
        #expect(try daemon.depot(["target", "portal", "set", Self.iqn]).status != 0)
        #expect(try daemon.depot(["target", "portal", "set", Self.iqn, "--all", "--portal", v4]).status != 0)
        #expect(try shown(daemon).portals == [v6])
        r = try daemon.depot(["target", "portal", "set", Self.iqn, "--all"])
        #expect(r.status == 0 && r.stdout.contains("every portal"), "\(r.stdout)\(r.stderr)")
        #expect(try shown(daemon).portals == nil)
        #expect(try inquiry(v4).status == 0)

        // An ACL entry scoped to a network the initiator is not on: refused on both portals, and hidden.
        #expect(try daemon.depot(["target", "acl", "remove", Self.iqn, Self.initiator]).status == 0)
        r = try daemon.depot(["target", "acl", "add", Self.iqn, Self.initiator, "--network", "10.0.0.0/8"])
        #expect(r.status == 0 && r.stdout.contains("from 10.0.0.0/8"), "\(r.stdout)\(r.stderr)")
        for portal in [v4, v6] {
            #expect(try inquiry(portal).status != 0, "an initiator outside its networks must be refused via \(portal)")
            #expect(!(try discovery(portal)).contains(Self.iqn))
        }
        // Scoped to the IPv4 loopback network: admitted from 127.0.0.1, not from ::1.
        #expect(try daemon.depot(["target", "acl", "remove", Self.iqn, Self.initiator]).status == 0)
        r = try daemon.depot(["target", "acl", "add", Self.iqn, Self.initiator, "--network", "127.0.0.0/8"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try inquiry(v4).status == 0)
        #expect(try inquiry(v6).status != 0, "::1 is not in 127.0.0.0/8")
        // Both families; an IPv6 host given as a bare address is its /128.
        #expect(try daemon.depot(["target", "acl", "remove", Self.iqn, Self.initiator]).status == 0)
        r = try daemon.depot([
            "target", "acl", "add", Self.iqn, Self.initiator, "--network", "127.0.0.0/8", "--network", "::1",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try shown(daemon).networks == [Self.initiator: ["127.0.0.0/8", "::1/128"]])
        for portal in [v4, v6] { #expect(try inquiry(portal).status == 0, "via \(portal)") }
        r = try daemon.depot(["target", "show", Self.iqn])
        #expect(r.stdout.contains("\(Self.initiator) from 127.0.0.0/8 ::1/128"), "\(r.stdout)")

        // Bad networks are refused with the reason, and the entry stays as it was.
        for (bad, reason) in [("10.0.0.1/8", "host bits"), ("10.0.0.0/33", "prefix length"), ("vlan7", "not an IPv4")] {
            r = try daemon.depot(["target", "acl", "add", Self.iqn, "iqn.2026-12.dev.depot:other", "--network", bad])
            #expect(r.status != 0 && r.stderr.contains(reason), "\(bad): \(r.stderr)")
        }
        #expect(try shown(daemon).initiators == [Self.initiator])
        // Through the API with an operator token: portals and ACLs are the admin's.
        r = try daemon.depot(["token", "create", "ops", "--role", "operator"])
        let secret = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(r.status == 0 && secret.count == 64, "\(r.stderr)")
        r = try daemon.depot(["target", "portal", "set", Self.iqn, "--all"], env: ["DEPOT_TOKEN": secret])
        #expect(r.status != 0 && r.stderr.contains("admin"), "\(r.stderr)")
    }

    /// Access is checked at login; withdrawing it must reach the sessions
    /// already in: binding the target elsewhere or removing the ACL entry
    /// closes them, and a change that still admits them leaves them be.
    @Test func withdrawnAccessClosesSessionsAlreadyLoggedIn() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        let (v4, v6) = try await startOnBothLoopbacks(daemon)
        for args in [
            ["volume", "create", "default/w", "--size", "8M"], ["target", "create", Self.iqn],
            ["target", "lun", "map", Self.iqn, "default/w"], ["target", "acl", "add", Self.iqn, Self.initiator],
        ] {
            let r = try daemon.depot(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        func sessions() async throws -> Int {
            try await daemon.client.sessions().filter { $0.target == Self.iqn }.count
        }
        func gone(_ session: LibISCSIClient) async throws -> Bool {
            for _ in 0..<100 where try await sessions() > 0 { try await Task.sleep(for: .milliseconds(50)) }
            return try await sessions() == 0 && session.probe()?.status != 0
        }

        // Bound to the IPv6 portal: a session in through IPv4 is closed.
        var session = try LibISCSIClient(initiator: Self.initiator)
        #expect(session.login(portal: v4, target: Self.iqn), "\(session.lastError)")
        #expect(session.probe()?.status == 0)
        #expect(try daemon.depot(["target", "portal", "set", Self.iqn, "--portal", v4, "--portal", v6]).status == 0)
        #expect(session.probe()?.status == 0, "a binding that still serves its portal keeps the session")
        #expect(try daemon.depot(["target", "portal", "set", Self.iqn, "--portal", v6]).status == 0)
        #expect(try await gone(session), "the session through \(v4) outlived the binding to \(v6)")
        #expect(daemon.log.contains("session closed: its access was withdrawn"), "depotd says why")
        // Through IPv6, REPORT TARGET PORT GROUPS lists group 2 only: group 1 has no port of this LU now.
        let through6 = try LibISCSIClient(initiator: Self.initiator)
        #expect(through6.login(portal: v6, target: Self.iqn), "\(through6.lastError)")
        _ = through6.probe()
        func groups() -> [Int] {
            guard let r = through6.command([0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0], dataIn: 1024), r.good else {
                return []
            }
            return stride(from: 4, to: r.data.count - 11, by: 12).map { Int(r.data[$0 + 2]) << 8 | Int(r.data[$0 + 3]) }
        }
        #expect(groups() == [2])
        // SET TARGET PORT GROUPS naming the unlisted group: INVALID FIELD IN PARAMETER LIST (SPC-4 §6.42).
        let stpg = through6.command(
            [0xA4, 0x0A, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], dataOut: [0, 0, 0, 0, 0x02, 0, 0, 1])
        #expect(stpg?.key == 5 && stpg?.ascq == 0x2600, "\(stpg?.senseText ?? "")")
        #expect(try daemon.depot(["target", "portal", "set", Self.iqn, "--all"]).status == 0)
        _ = through6.probe()
        #expect(groups() == [1, 2], "served everywhere again, both groups are listed")
        through6.logout()

        // The ACL entry narrowed to another network, then removed: closed, and no new login.
        session = try LibISCSIClient(initiator: Self.initiator)
        #expect(session.login(portal: v4, target: Self.iqn), "\(session.lastError)")
        #expect(try daemon.depot(["target", "acl", "add", Self.iqn, "iqn.2026-12.dev.depot:someone-else"]).status == 0)
        #expect(session.probe()?.status == 0, "another initiator's entry leaves this session be")
        #expect(try daemon.depot(["target", "acl", "remove", Self.iqn, Self.initiator]).status == 0)
        #expect(try await gone(session), "the session outlived the removal of its ACL entry")
        #expect(!(try LibISCSIClient(initiator: Self.initiator).login(portal: v4, target: Self.iqn)))
    }
}
