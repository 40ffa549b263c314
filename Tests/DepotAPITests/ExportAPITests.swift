import DepotCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

extension APITests {
    @Test func exportLifecyclePublishesFiles() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        _ = try await env.storage.createPool(CreatePoolRequest(name: "nfs1"))
        let body =
            #"{"pool":"nfs1","rules":[{"client":"*","access":"ro","squash":"all","anonuid":65534,"anongid":65534},{"client":"10.0.0.0/24","access":"rw","squash":"root"}]}"#
        try await env.app.test(.router) { client in
            try await client.execute(uri: "/v1/exports", method: .post, headers: auth, body: json(body)) { r throws in
                #expect(r.status == .created)
                let e = try decode(ExportInfo.self, r.body)
                #expect(e.pseudo == "/depot/nfs1" && e.fsid > 100)
                #expect(e.rules.map(\.client) == ["10.0.0.0/24", "*"], "specific rules first, '*' last")
            }
            try await client.execute(uri: "/v1/exports", method: .post, headers: auth, body: json(body)) { r throws in
                #expect(r.status == .conflict)
            }
            try await client.execute(uri: "/v1/exports/nfs1/render?format=ganesha", method: .get, headers: auth) {
                r throws in
                let text = String(buffer: r.body)
                #expect(
                    text.contains("Pseudo = \"/depot/nfs1\";")
                        && text.contains("CLIENT { Clients = *; Access_Type = RO; Squash = All_Squash"))
            }
            try await client.execute(uri: "/v1/exports/nfs1/render?format=xml", method: .get, headers: auth) {
                r throws in
                #expect(r.status == .badRequest)
            }
            try await client.execute(uri: "/v1/pools/nfs1", method: .delete, headers: auth) { r throws in
                #expect(r.status == .conflict, "an exported pool is not deleted without force")
            }
        }
        let kernelFile = env.root + "/exports.d/depot-nfs1.exports"
        let text = try String(contentsOfFile: kernelFile, encoding: .utf8)
        #expect(text.contains("10.0.0.0/24(rw,sync,no_subtree_check,root_squash,sec=sys,fsid="))
        try await env.app.test(.router) { client in
            try await client.execute(uri: "/v1/exports/nfs1", method: .delete, headers: auth) { r throws in
                #expect(r.status == .noContent)
            }
            try await client.execute(uri: "/v1/exports/nfs1", method: .get, headers: auth) { r throws in
                #expect(r.status == .notFound)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: kernelFile))
        let ganesha = try String(contentsOfFile: env.root + "/ganesha/depot-exports.conf", encoding: .utf8)
        #expect(!ganesha.contains("EXPORT {"))
    }

    @Test func badExportsAreRefused() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        _ = try await env.storage.createPool(CreatePoolRequest(name: "nfs2"))
        let cases: [(String, HTTPResponse.Status)] = [
            (#"{"pool":"nfs2","rules":[]}"#, .badRequest),
            (#"{"pool":"nope","rules":[{"client":"*","access":"ro","squash":"root"}]}"#, .notFound),
            (#"{"pool":"nfs2","rules":[{"client":"host\"; rm -rf","access":"ro","squash":"root"}]}"#, .badRequest),
            (#"{"pool":"nfs2","rules":[{"client":"*","access":"rw","squash":"none"}]}"#, .conflict),
            (
                #"{"pool":"nfs2","rules":[{"client":"10.0.0.0/8","access":"rw","squash":"root"},{"client":"10.1.2.3","access":"ro","squash":"root"}]}"#,
                .conflict
            ),
            (#"{"pool":"nfs2","rules":[{"client":"10.0.0.0/33","access":"rw","squash":"root"}]}"#, .badRequest),
            (
                #"{"pool":"nfs2","rules":[{"client":"a","access":"rw","squash":"root"},{"client":"A","access":"ro","squash":"root"}]}"#,
                .conflict
            ),
            (#"{"pool":"nfs2","rules":[{"client":"*","access":"rwx","squash":"root"}]}"#, .badRequest),
        ]
        try await env.app.test(.router) { client in
            for (body, status) in cases {
                try await client.execute(uri: "/v1/exports", method: .post, headers: auth, body: json(body)) {
                    r throws in
                    #expect(r.status == status, "\(body)")
                }
            }
            try await client.execute(
                uri: "/v1/exports", method: .post, headers: auth,
                body: json(#"{"pool":"nfs2","force":true,"rules":[{"client":"*","access":"rw","squash":"none"}]}"#)
            ) { r throws in
                #expect(r.status == .created)
                #expect(try decode(ExportInfo.self, r.body).warnings?.isEmpty == false)
            }
        }
    }
}
