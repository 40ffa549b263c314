import DepotAPI
import DepotCatalog
import DepotCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Named tokens and roles (issue 13): least privilege, hashes at rest,
/// expiry, revocation, and the throttling of failed authentications.
extension APITests {
    func bearer(_ secret: String) -> HTTPFields {
        [.authorization: "Bearer \(secret)", .contentType: "application/json"]
    }

    /// Makes a token through the API (as the bootstrap admin) and returns its secret.
    func makeToken(_ client: some TestClientProtocol, _ name: String, _ role: TokenRole) async throws -> String {
        try await client.execute(
            uri: "/v1/tokens", method: .post, headers: auth, body: json(#"{"name":"\#(name)","role":"\#(role)"}"#)
        ) { r throws -> String in
            #expect(r.status == .created)
            let created = try decode(CreatedToken.self, r.body)
            #expect(created.token.name == name && created.token.role == role && created.token.state == "active")
            return created.secret
        }
    }

    @Test func eachRoleMayDoWhatItIsForAndIsToldWhatItLacks() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        _ = try await env.storage.createPool(CreatePoolRequest(name: "p", capacityBytes: 1 << 30))
        try await env.app.test(.router) { client in
            let op = try await makeToken(client, "ops", .operator)
            let ro = try await makeToken(client, "viewer", .readonly)
            try await client.execute(
                uri: "/v1/targets", method: .post, headers: auth, body: json(#"{"iqn":"iqn.2026-12.t:one"}"#)
            ) { r throws in #expect(r.status == .created) }

            // (method, path, body, least role that may)
            let calls: [(HTTPRequest.Method, String, String?, TokenRole)] = [
                (.get, "/v1/pools", nil, .readonly),
                (.get, "/metrics", nil, .readonly),
                (.get, "/v1/targets/iqn.2026-12.t:one", nil, .readonly),
                (.post, "/v1/pools/p/volumes", #"{"name":"v","sizeBytes":1048576}"#, .operator),
                (.post, "/v1/targets/iqn.2026-12.t:one/luns", #"{"volume":"p/v"}"#, .operator),
                (.post, "/v1/pools/p/volumes/v/snapshots", #"{"name":"s"}"#, .operator),
                (.post, "/v1/pools", #"{"name":"q"}"#, .admin),
                (.post, "/v1/targets", #"{"iqn":"iqn.2026-12.t:two"}"#, .admin),
                (.put, "/v1/targets/iqn.2026-12.t:one/chap", #"{"user":"u","secret":"0123456789ab"}"#, .admin),
                (.post, "/v1/targets/iqn.2026-12.t:one/acls", #"{"initiator":"iqn.2026-12.i:x"}"#, .admin),
                (.put, "/v1/targets/iqn.2026-12.t:one/portal-groups/1", #"{"state":"active-non-optimized"}"#, .admin),
                (.get, "/v1/tokens", nil, .admin),
                (.post, "/v1/tokens", #"{"name":"x","role":"admin"}"#, .admin),
            ]
            for (method, uri, body, least) in calls {
                for (secret, role) in [(ro, TokenRole.readonly), (op, .operator)] where !role.allows(least) {
                    try await client.execute(uri: uri, method: method, headers: bearer(secret), body: body.map(json)) {
                        r throws in
                        #expect(r.status == .forbidden, "\(role) \(method) \(uri)")
                        let error = try decode(ErrorBody.self, r.body).error
                        #expect(error.code == "forbidden" && error.message.contains("needs the \(least.rawValue) role"))
                    }
                }
                // The least role it needs gets through (the first that may; admin for admin calls):
                // done, or refused by the call itself (portal group 1: this test daemon has no portals).
                let secret = least == .readonly ? ro : least == .operator ? op : Self.token
                try await client.execute(uri: uri, method: method, headers: bearer(secret), body: body.map(json)) {
                    r throws in
                    if uri.hasSuffix("portal-groups/1") {
                        #expect(r.status == .notFound && String(buffer: r.body).contains("does not exist"))
                    } else {
                        #expect((200..<300).contains(Int(r.status.code)), "\(least) \(method) \(uri): \(r.status)")
                    }
                }
            }
        }
        // Only the allowed create made a pool.
        #expect(try await env.storage.listPools().map(\.name) == ["p", "q"])
    }

    @Test func secretsAreNeverStoredOrListedAndRevocationAndExpiryEndThem() async throws {
        let env = try await makeEnv(catalogOnDisk: true)
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        let temp = try await env.app.test(.router) { client -> String in
            let temp = try await makeToken(client, "temp", .readonly)
            let secrets = [Self.token, temp]
            try await client.execute(uri: "/v1/pools", method: .get, headers: bearer(temp)) { r throws in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/v1/tokens", method: .get, headers: auth) { r throws in
                #expect(r.status == .ok)
                let text = String(buffer: r.body)
                #expect(!secrets.contains { text.contains($0) })
                let list = try decode(TokenList.self, r.body).tokens
                #expect(list.map(\.name) == ["bootstrap", "temp"])
                #expect(list.last?.lastUsedAt != nil)
            }
            try await client.execute(uri: "/v1/tokens/temp", method: .delete, headers: auth) { r throws in
                #expect(r.status == .noContent)
            }
            try await client.execute(uri: "/v1/pools", method: .get, headers: bearer(temp)) { r throws in
                #expect(r.status == .unauthorized)
            }
            // The last admin token stays: the daemon must stay manageable.
            try await client.execute(uri: "/v1/tokens/bootstrap", method: .delete, headers: auth) { r throws in
                #expect(r.status == .conflict)
            }
            try await client.execute(uri: "/v1/tokens/nope", method: .delete, headers: auth) { r throws in
                #expect(r.status == .notFound)
            }
            for bad in [
                #"{"name":"Bad Name","role":"admin"}"#, #"{"name":"x","role":"root"}"#,
                #"{"name":"x","role":"admin","expiresInSeconds":0}"#,
            ] {
                try await client.execute(uri: "/v1/tokens", method: .post, headers: auth, body: json(bad)) { r throws in
                    #expect(r.status == .badRequest, "\(bad)")
                }
            }
            return temp
        }
        var secrets = [Self.token, temp]
        // Expiry, at the store (a clock, not a sleep): valid before, 401-worthy after.
        let made = try await env.tokens.create(CreateTokenRequest(name: "soon", role: .operator, expiresInSeconds: 60))
        secrets.append(made.secret)
        #expect(env.tokens.verify(made.secret) == .valid(.init(name: "soon", role: .operator)))
        #expect(env.tokens.verify(made.secret, now: Date().addingTimeInterval(61)) == .expired("soon"))
        #expect(env.tokens.verify(made.secret + "x") == .unknown)
        // Only salted hashes reach the catalog's files (the database and its WAL).
        let rows = try await env.catalog.apiTokens()
        #expect(Set(rows.map(\.salt)).count == rows.count && rows.allSatisfy { $0.hash.count == 32 })
        for file in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
            guard let bytes = FileManager.default.contents(atPath: env.root + "/" + file) else { continue }
            for secret in secrets {
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "a secret is in \(file)")
            }
        }
    }

    @Test func repeatedFailuresAreAnswered429UntilTheWindowPasses() async throws {
        let env = try await makeEnv(throttle: AuthThrottle(limit: 5, window: 60))
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            for _ in 0..<5 {
                try await client.execute(uri: "/v1/pools", method: .get, headers: bearer("wrong")) { r throws in
                    #expect(r.status == .unauthorized)
                }
            }
            // Now even the right token is not looked at from this address (twice: one audit line).
            for _ in 0..<2 {
                try await client.execute(uri: "/v1/pools", method: .get, headers: auth) { r throws in
                    #expect(r.status == .tooManyRequests)
                    #expect(Int(r.headers[.retryAfter] ?? "") ?? 0 >= 1)
                    #expect(try errorCode(r.body) == "too_many_requests")
                }
            }
        }
        let audit = try String(contentsOfFile: env.auditPath, encoding: .utf8).split(separator: "\n")
        let entries = try audit.map { try JSONDecoder().decode(AuditLog.Entry.self, from: Data($0.utf8)) }
        #expect(entries.map(\.status) == [401, 401, 401, 401, 401, 429])
        #expect(entries.allSatisfy { $0.action == "GET /v1/pools" && $0.token == nil })
    }

    @Test func theThrottleCountsPerAddressAndForgets() {
        let throttle = AuthThrottle(limit: 5, window: 60)
        let start = Date()
        for i in 0..<4 { throttle.fail("192.0.2.1", now: start.addingTimeInterval(Double(i))) }
        #expect(throttle.retryAfter("192.0.2.1", now: start.addingTimeInterval(4)) == nil)
        throttle.fail("192.0.2.1", now: start.addingTimeInterval(4))
        #expect(throttle.retryAfter("192.0.2.1", now: start.addingTimeInterval(5)) == 55)
        #expect(throttle.retryAfter("192.0.2.2", now: start.addingTimeInterval(5)) == nil)
        // The oldest failure leaves the window: one more try is allowed.
        #expect(throttle.retryAfter("192.0.2.1", now: start.addingTimeInterval(60.5)) == nil)
    }

    /// `depotd --api-auth-failures 0`: the API throttle never refuses.
    @Test func aThrottleWithLimitZeroNeverRefuses() {
        let throttle = AuthThrottle(limit: 0, window: 60)
        let start = Date()
        for i in 0..<100 { throttle.fail("192.0.2.1", now: start.addingTimeInterval(Double(i) / 100)) }
        #expect(throttle.retryAfter("192.0.2.1", now: start.addingTimeInterval(1)) == nil)
        #expect(!throttle.firstRefusal("192.0.2.1", now: start.addingTimeInterval(1)))
    }

    @Test func theAuditLogRotatesWithoutLosingALineAndIsReadFiltered() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("depot-audit-\(UUID())").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let log = AuditLog(path: root + "/audit.log", maxBytes: 1000, keep: 50)
        for i in 0..<40 {
            await log.append(
                .init(
                    time: Timestamp.now(), client: "192.0.2.\(i)",
                    action: i % 4 == 0 ? "iscsi.login" : "POST /v1/pools",
                    object: "pool p\(i)", outcome: i % 2 == 0 ? "ok" : "conflict: no", status: i % 2 == 0 ? 201 : 409))
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix("audit.log") }
        #expect(files.count > 3, "\(files)")
        for file in files {
            let data = try #require(FileManager.default.contents(atPath: root + "/" + file))
            #expect(data.count <= 1000 && data.last == 0x0A, "\(file)")
            let mode = try FileManager.default.attributesOfItem(atPath: root + "/" + file)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
        let all = await log.read(since: nil, action: nil, failures: nil, limit: 1000)
        #expect(all.map(\.object) == (0..<40).map { "pool p\($0)" })
        #expect(await log.read(since: nil, action: "iscsi.login", failures: nil, limit: 1000).count == 10)
        #expect(await log.read(since: nil, action: nil, failures: true, limit: 1000).allSatisfy { $0.status == 409 })
        #expect(
            await log.read(since: nil, action: nil, failures: nil, limit: 3).map(\.object) == [
                "pool p37", "pool p38", "pool p39",
            ])
        #expect(await log.read(since: Date().addingTimeInterval(60), action: nil, failures: nil, limit: 1000).isEmpty)
        // Kept files are bounded: past `keep` the oldest go.
        let small = AuditLog(path: root + "/small.log", maxBytes: 300, keep: 2)
        for i in 0..<30 {
            await small.append(
                .init(time: Timestamp.now(), client: "c", action: "a", object: "o\(i)", outcome: "ok", status: 200))
        }
        let kept = await small.read(since: nil, action: nil, failures: nil, limit: 1000).map(\.object)
        #expect(!kept.isEmpty && kept.last == "o29" && kept.count < 30)
        #expect(!FileManager.default.fileExists(atPath: root + "/small.log.3"))
    }

    @Test func onlyAnAdminReadsTheAuditLogThroughTheAPI() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            let op = try await makeToken(client, "ops", .operator)
            try await client.execute(uri: "/v1/pools", method: .post, headers: bearer(op), body: json(#"{"name":"z"}"#))
            {
                r throws in #expect(r.status == .forbidden)
            }
            try await client.execute(uri: "/v1/audit?outcome=failure", method: .get, headers: bearer(op)) { r throws in
                #expect(r.status == .forbidden)
            }
            try await client.execute(uri: "/v1/audit?outcome=failure&since=3600", method: .get, headers: auth) {
                r throws in
                #expect(r.status == .ok)
                let entries = try decode(AuditList.self, r.body).entries
                // The refused change and the refused read, each with the token's name.
                #expect(entries.map(\.action) == ["POST /v1/pools", "GET /v1/audit"])
                #expect(entries.allSatisfy { $0.status == 403 && $0.token == "ops" })
            }
            try await client.execute(uri: "/v1/audit?action=tokens", method: .get, headers: auth) { r throws in
                let entries = try decode(AuditList.self, r.body).entries
                #expect(entries.count == 1 && entries[0].token == "bootstrap" && entries[0].succeeded)
            }
            for bad in ["since=0", "since=x", "outcome=maybe", "limit=0"] {
                try await client.execute(uri: "/v1/audit?\(bad)", method: .get, headers: auth) { r throws in
                    #expect(r.status == .badRequest, "\(bad)")
                }
            }
        }
    }
}
