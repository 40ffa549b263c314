import DepotCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// What Schemathesis holds the API to (Docs/openapi.yaml): bodies with no
/// unknown keys or stray nulls, 405 with Allow for a method a path lacks,
/// 409 (not a 5xx) for too little space, and client numbers that cannot trap.
extension APITests {
    @Test func bodiesWithUnknownKeysOrNullsAreRefusedNamingTheKey() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            try await client.execute(uri: "/v1/pools", method: .post, headers: auth, body: json(#"{"name":"p"}"#)) {
                r throws in #expect(r.status == .created)
            }
            let refused: [(String, String)] = [
                // A misspelt optional field would otherwise make a thin volume without a word.
                (#"{"name":"v","sizeBytes":1048576,"provisoning":"thick"}"#, "'provisoning' is not a field"),
                (#"{"name":"v","sizeBytes":1048576,"format":null}"#, "'format' is null"),
            ]
            for (body, said) in refused {
                try await client.execute(uri: "/v1/pools/p/volumes", method: .post, headers: auth, body: json(body)) {
                    r throws in
                    #expect(r.status == .badRequest, "\(body)")
                    #expect(String(buffer: r.body).contains(said), "\(String(buffer: r.body))")
                }
            }
            try await client.execute(
                uri: "/v1/pools/p/volumes", method: .get, headers: auth
            ) { r throws in #expect(try decode(VolumeList.self, r.body).volumes.isEmpty) }
            // Nested: an export rule's keys are held to the same rule.
            try await client.execute(
                uri: "/v1/exports", method: .post, headers: auth,
                body: json(
                    #"{"pool":"p","rules":[{"client":"10.0.0.0/8","access":"rw","squash":"root","anonuid":null}]}"#)
            ) { r throws in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("'rules[0].anonuid' is null"))
            }
            // A null the type means (every portal) is kept; a missing key is not taken for it.
            try await client.execute(
                uri: "/v1/targets", method: .post, headers: auth, body: json(#"{"iqn":"iqn.2026-12.t:p"}"#)
            ) { r throws in #expect(r.status == .created) }
            try await client.execute(
                uri: "/v1/targets/iqn.2026-12.t:p/portals", method: .put, headers: auth,
                body: json(#"{"portals":null}"#)
            ) { r throws in #expect(r.status == .ok, "\(String(buffer: r.body))") }
            try await client.execute(
                uri: "/v1/targets/iqn.2026-12.t:p/portals", method: .put, headers: auth, body: json("{}")
            ) { r throws in #expect(r.status == .badRequest) }
        }
    }

    @Test func aMethodThePathLacksIs405WithAllow() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            // RFC 9110 §15.5.6; the literal route wins over exports/:pool, as in the router.
            for (uri, method, allow) in [
                ("/v1/exports/publish", HTTPRequest.Method.get, "POST"),
                ("/v1/exports/p", .post, "DELETE, GET, PUT"),
                ("/v1/pools", .delete, "GET, POST"),
            ] {
                try await client.execute(uri: uri, method: method, headers: auth) { r throws in
                    #expect(r.status == .methodNotAllowed, "\(method) \(uri)")
                    #expect(r.headers[.allow] == allow, "\(method) \(uri)")
                    #expect(try errorCode(r.body) == "http_405")
                }
            }
            // A path no route has stays 404, and so does a missing object on a served path.
            try await client.execute(uri: "/v1/nothing/here", method: .get, headers: auth) { r throws in
                #expect(r.status == .notFound)
            }
            try await client.execute(uri: "/v1/pools/nope", method: .get, headers: auth) { r throws in
                #expect(r.status == .notFound && r.headers[.allow] == nil)
            }
        }
    }

    @Test func aHugeJobRateIsRefusedNotATrap() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            for (uri, body) in [
                ("/v1/pools", #"{"name":"p"}"#),
                ("/v1/pools/p/volumes", #"{"name":"v","sizeBytes":1048576,"format":"qcow2"}"#),
                ("/v1/pools/p/volumes/v/snapshots", #"{"name":"s"}"#),
                ("/v1/pools/p/volumes/v/clone", #"{"snapshot":"s","target":"p/linked"}"#),
            ] {
                try await client.execute(uri: uri, method: .post, headers: auth, body: json(body)) { r throws in
                    #expect(r.status == .created, "\(uri): \(String(buffer: r.body))")
                }
            }
            // 2^43 MiB/s is 2^63 bytes/s: the catalog's Int64 of it trapped and took depotd down.
            for (uri, body) in [
                (
                    "/v1/pools/p/volumes/v/clone",
                    #"{"snapshot":"s","target":"p/full","full":true,"rateMiB":8796093022208}"#
                ),
                ("/v1/pools/p/volumes/linked/flatten", #"{"rateMiB":8796093022208}"#),
                ("/v1/pools/p/volumes/linked/flatten", #"{"rateMiB":-1}"#),
            ] {
                try await client.execute(uri: uri, method: .post, headers: auth, body: json(body)) { r throws in
                    #expect(r.status == .badRequest, "\(uri) \(body): \(String(buffer: r.body))")
                    #expect(String(buffer: r.body).contains("rateMiB"))
                }
            }
            try await client.execute(uri: "/v1/jobs", method: .get, headers: auth) { r throws in
                #expect(r.status == .ok && !String(buffer: r.body).contains("full-clone"))
            }
        }
    }
}

extension APITests {
    @Test func anUnknownKeyIsQuotedShort() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            let key = String(repeating: "k", count: 100_000)
            try await client.execute(
                uri: "/v1/pools", method: .post, headers: auth, body: json(#"{"name":"p","\#(key)":1}"#)
            ) { r throws in
                #expect(r.status == .badRequest)
                #expect(r.body.readableBytes < 400, "the answer quotes at most 100 characters of the key")
            }
        }
    }
}
