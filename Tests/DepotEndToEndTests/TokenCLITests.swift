import DepotCore
import Foundation
import Testing

/// Named API tokens through the real CLI and daemon (issue 13): a role's
/// limits, a secret printed once and stored nowhere, revocation, and the
/// bootstrap token surviving a restart.
@Suite(.serialized) struct TokenCLITests {
    @Test func tokensAreMadeUsedLimitedAndRevokedThroughTheCLI() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        var r = try daemon.depot(["token", "create", "viewer", "--role", "readonly", "--expires", "30d"])
        #expect(r.status == 0, "\(r.stderr)")
        let secret = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.count == 64 && r.stderr.contains("shown once"))
        let asViewer = ["DEPOT_TOKEN": secret]
        r = try daemon.depot(["pool", "list"], env: asViewer)
        #expect(r.status == 0, "\(r.stderr)")
        r = try daemon.depot(["pool", "create", "x"], env: asViewer)
        #expect(r.status != 0 && r.stderr.contains("needs the admin role"), "\(r.stderr)")
        r = try daemon.depot(["volume", "create", "default/v", "--size", "1M"], env: asViewer)
        #expect(r.status != 0 && r.stderr.contains("needs the operator role"), "\(r.stderr)")
        r = try daemon.depot(["token", "list"], env: asViewer)
        #expect(r.status != 0 && r.stderr.contains("needs the admin role"), "\(r.stderr)")
        #expect(try await daemon.client.volumes(pool: nil).isEmpty)

        r = try daemon.depot(["token", "list", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains(secret) && !r.stdout.contains(daemon.token))
        let list = try JSONDecoder().decode(TokenList.self, from: Data(r.stdout.utf8)).tokens
        #expect(list.map(\.name) == ["bootstrap", "viewer"] && list.map(\.role) == [.admin, .readonly])
        #expect(list[1].expiresAt != nil && list[1].lastUsedAt != nil)
        #expect(try daemon.depot(["token", "create", "bad", "--role", "root"]).status != 0)
        #expect(try daemon.depot(["token", "create", "bad", "--role", "readonly", "--expires", "soon"]).status != 0)

        // Restart: the bootstrap token (the file is unchanged) and the viewer still work.
        #expect(try await daemon.terminate() == 0)
        try await daemon.start()
        #expect(try daemon.depot(["pool", "list"], env: asViewer).status == 0)
        #expect(try daemon.depot(["token", "revoke", "viewer"]).status == 0)
        r = try daemon.depot(["pool", "list"], env: asViewer)
        #expect(r.status != 0 && r.stderr.contains("invalid bearer token"), "\(r.stderr)")
        r = try daemon.depot(["token", "revoke", "bootstrap"])
        #expect(r.status != 0 && r.stderr.contains("last admin token"), "\(r.stderr)")
        #expect(try await daemon.terminate() == 0)

        // No secret in the catalog or its WAL, nor in the audit log.
        for file in ["catalog.sqlite", "catalog.sqlite-wal", "audit.log"] {
            guard let bytes = FileManager.default.contents(atPath: daemon.data + "/" + file) else { continue }
            for s in [secret, daemon.token] { #expect(bytes.range(of: Data(s.utf8)) == nil, "a secret is in \(file)") }
        }
        // The audit log names the token behind each change and records the refusals.
        let audit = try String(contentsOfFile: daemon.data + "/audit.log", encoding: .utf8)
        #expect(audit.contains(#""status":403"#) && audit.contains(#""token":"viewer""#))
        #expect(audit.contains(#""status":401"#) && audit.contains(#""token":"bootstrap""#))
        // The same through `depot audit` (admin only).
        try await daemon.start()
        r = try daemon.depot(["audit", "--outcome", "failure", "--since", "1h", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let failures = try JSONDecoder().decode(AuditList.self, from: Data(r.stdout.utf8)).entries
        #expect(!failures.isEmpty && failures.allSatisfy { !$0.succeeded })
        #expect(failures.contains { $0.status == 403 && $0.token == "viewer" })
        r = try daemon.depot(["audit", "--action", "tokens"])
        #expect(r.status == 0 && r.stdout.contains("POST /v1/tokens") && r.stdout.contains("bootstrap"), "\(r.stdout)")
        #expect(try daemon.depot(["audit", "--since", "soon"]).status != 0)
    }
}
