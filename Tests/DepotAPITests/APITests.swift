import DepotAPI
import DepotCatalog
import DepotCore
import DepotExports
import DepotISCSI
import DepotStorage
import DepotTargets
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import Testing

/// The REST API through Hummingbird's test client, over a real
/// StorageManager on a temporary directory.
@Suite struct APITests {
    static let token = "test-token-0123456789"

    struct Env {
        let root: String
        let storage: StorageManager
        let app: any ApplicationProtocol
        let auditPath: String
        let tokens: TokenStore
        let catalog: Catalog
    }

    func makeEnv(throttle: AuthThrottle = AuthThrottle(), catalogOnDisk: Bool = false) async throws -> Env {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("depot-api-\(UUID())").path
        try FileManager.default.createDirectory(atPath: root + "/pools", withIntermediateDirectories: true)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let catalog = try catalogOnDisk ? Catalog.open(path: root + "/catalog.db") : Catalog.inMemory()
        let storage = StorageManager(catalog: catalog, poolsDirectory: root + "/pools", logger: logger)
        let tokens = try await TokenStore.open(catalog: catalog)
        try await tokens.install(name: "bootstrap", role: .admin, secret: Self.token)
        let publisher = ExportPublisher(
            configuration: ExportPublisherConfiguration(
                exportsDirectory: root + "/exports.d", ganeshaConfig: root + "/ganesha/depot-exports.conf",
                exportfsPath: "/nonexistent"),
            logger: logger)
        let router = DepotAPI.router(
            storage: storage, exports: ExportManager(catalog: catalog, publisher: publisher, logger: logger),
            targets: TargetManager(catalog: catalog, storage: storage, directory: TargetDirectory(), logger: logger),
            tokens: tokens, audit: AuditLog(path: root + "/audit.log"), registry: PrometheusCollectorRegistry(),
            throttle: throttle)
        let app = try DepotAPI.application(router: router, host: "127.0.0.1", port: 0, logger: logger)
        return Env(
            root: root, storage: storage, app: app, auditPath: root + "/audit.log", tokens: tokens, catalog: catalog)
    }

    var auth: HTTPFields { [.authorization: "Bearer \(Self.token)", .contentType: "application/json"] }

    func json(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    func decode<T: Decodable>(_ type: T.Type, _ buffer: ByteBuffer) throws -> T {
        try JSONDecoder().decode(type, from: Data(buffer.readableBytesView))
    }

    func errorCode(_ buffer: ByteBuffer) throws -> String { try decode(ErrorBody.self, buffer).error.code }

    @Test func healthIsOpenEverythingElseNeedsTheToken() async throws {
        // Many refusals from one address: the throttle (tested on its own) must not answer them first.
        let env = try await makeEnv(throttle: AuthThrottle(limit: 1000))
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { r throws in #expect(r.status == .ok) }
            for uri in ["/v1/pools", "/v1/capacity", "/metrics", "/v1/pools/x/volumes"] {
                try await client.execute(uri: uri, method: .get) { r throws in
                    #expect(r.status == .unauthorized)
                    #expect(try errorCode(r.body) == "unauthorized")
                }
                try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer nope"]) { r throws in
                    #expect(r.status == .unauthorized)
                }
                try await client.execute(uri: uri, method: .get, headers: [.authorization: "Basic \(Self.token)"]) {
                    r throws in
                    #expect(r.status == .unauthorized)
                }
            }
            try await client.execute(
                uri: "/v1/pools", method: .post, headers: [.contentType: "application/json"],
                body: json(#"{"name":"p"}"#)
            ) { r throws in
                #expect(r.status == .unauthorized)
            }
        }
        #expect(try await env.storage.listPools().isEmpty)
    }

    /// Path parameters are percent-decoded (RFC 3986 §2.1): a client that
    /// escapes an IQN's ':' reaches the same target (Schemathesis found it).
    @Test func percentEncodedPathParametersAreDecoded() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            try await client.execute(
                uri: "/v1/targets", method: .post, headers: auth, body: json(#"{"iqn":"iqn.2026-12.t:one"}"#)
            ) { r throws in #expect(r.status == .created) }
            for uri in [
                "/v1/targets/iqn.2026-12.t:one", "/v1/targets/iqn.2026-12.t%3Aone", "/v1/targets/iqn.2026-12.t%3aone",
            ] {
                try await client.execute(uri: uri, method: .get, headers: auth) { r throws in
                    #expect(r.status == .ok, "\(uri): \(String(buffer: r.body))")
                }
            }
            try await client.execute(uri: "/v1/targets/iqn.2026-12.t%ZZone", method: .get, headers: auth) { r throws in
                #expect(r.status == .badRequest && String(buffer: r.body).contains("percent-encoding"))
            }
            // An integer as JSON Schema counts one (1650.0 is 1650); a fraction or a word is 400.
            for (lun, status) in [
                ("5", HTTPResponse.Status.notFound), ("5.0", .notFound), ("5.5", .badRequest), ("x", .badRequest),
            ] {
                try await client.execute(
                    uri: "/v1/targets/iqn.2026-12.t:one/luns/\(lun)", method: .delete, headers: auth
                ) {
                    r throws in #expect(r.status == status, "LUN \(lun): \(String(buffer: r.body))")
                }
            }
        }
    }

    @Test func poolAndVolumeLifecycle() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            try await client.execute(
                uri: "/v1/pools", method: .post, headers: auth,
                body: json(#"{"name":"gold","capacityBytes":1073741824,"maxOvercommit":2}"#)
            ) { r throws in
                #expect(r.status == .created)
                let pool = try decode(PoolInfo.self, r.body)
                #expect(
                    pool.name == "gold" && pool.capacityBytes == 1 << 30 && pool.maxOvercommit == 2 && pool.state == .ok
                )
            }
            try await client.execute(
                uri: "/v1/pools/gold/volumes", method: .post, headers: auth,
                body: json(#"{"name":"vm1","sizeBytes":2147483648}"#)
            ) { r throws in
                #expect(r.status == .created)
                let v = try decode(VolumeInfo.self, r.body)
                #expect(
                    v.pool == "gold" && v.name == "vm1" && v.sizeBytes == 2 << 30 && v.provisioning == .thin
                        && v.blockSize == 512 && v.state == .ready)
            }
            try await client.execute(uri: "/v1/capacity", method: .get, headers: auth) { r throws in
                let report = try decode(CapacityReport.self, r.body)
                let gold = try #require(report.pools.first { $0.name == "gold" })
                #expect(gold.overprovisioned && gold.overcommitRatio == 2.0 && gold.provisionedBytes == 2 << 30)
            }
            try await client.execute(
                uri: "/v1/pools/gold/volumes/vm1", method: .patch, headers: auth, body: json(#"{"name":"vm2"}"#)
            ) { r throws in
                #expect(r.status == .ok)
                #expect(try decode(VolumeInfo.self, r.body).name == "vm2")
            }
            try await client.execute(
                uri: "/v1/pools/gold/volumes/vm2", method: .patch, headers: auth, body: json(#"{"sizeBytes":1048576}"#)
            ) { r throws in
                #expect(r.status == .conflict)
            }
            try await client.execute(
                uri: "/v1/pools/gold/volumes/vm2", method: .patch, headers: auth,
                body: json(#"{"sizeBytes":1048576,"force":true}"#)
            ) { r throws in
                #expect(r.status == .ok)
                #expect(try decode(VolumeInfo.self, r.body).sizeBytes == 1 << 20)
            }
            try await client.execute(uri: "/v1/volumes?pool=gold", method: .get, headers: auth) { r throws in
                #expect(try decode(VolumeList.self, r.body).volumes.map(\.name) == ["vm2"])
            }
            try await client.execute(uri: "/v1/pools/gold", method: .delete, headers: auth) { r throws in
                #expect(r.status == .conflict)
                #expect(try errorCode(r.body) == "conflict")
            }
            try await client.execute(uri: "/v1/pools/gold/volumes/vm2", method: .delete, headers: auth) { r throws in
                #expect(r.status == .noContent)
            }
            try await client.execute(uri: "/v1/pools/gold", method: .delete, headers: auth) { r throws in
                #expect(r.status == .noContent)
            }
            try await client.execute(uri: "/v1/pools/gold", method: .get, headers: auth) { r throws in
                #expect(r.status == .notFound)
            }
        }
    }

    @Test func badInputGetsTheRightStatusAndChangesNothing() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        _ = try await env.storage.createPool(CreatePoolRequest(name: "p", capacityBytes: 1 << 20))
        let cases: [(HTTPRequest.Method, String, String?, HTTPResponse.Status, String)] = [
            (.post, "/v1/pools", #"{"name":"Bad Name"}"#, .badRequest, "invalid_argument"),
            (.post, "/v1/pools", #"{"name":"p"}"#, .conflict, "conflict"),
            (.post, "/v1/pools", #"{"name":"x","path":"../../etc"}"#, .badRequest, "invalid_argument"),
            (.post, "/v1/pools", #"not json"#, .badRequest, "invalid_argument"),
            (.post, "/v1/pools/p/volumes", #"{"name":"v","sizeBytes":0}"#, .badRequest, "invalid_argument"),
            (.post, "/v1/pools/p/volumes", #"{"name":"v","sizeBytes":-5}"#, .badRequest, "invalid_argument"),
            (
                .post, "/v1/pools/p/volumes", #"{"name":"v","sizeBytes":4096,"provisioning":"fat"}"#, .badRequest,
                "invalid_argument"
            ),
            (
                .post, "/v1/pools/p/volumes", #"{"name":"v","sizeBytes":4096,"blockSize":520}"#, .badRequest,
                "invalid_argument"
            ),
            (
                .post, "/v1/pools/p/volumes", #"{"name":"v","sizeBytes":2097152,"provisioning":"thick"}"#,
                .conflict, "insufficient_space"
            ),
            (
                .post, "/v1/pools/p/volumes", #"{"name":"v","sizeBytes":1099511627776}"#,
                .conflict, "insufficient_space"
            ),
            (.post, "/v1/pools/nope/volumes", #"{"name":"v","sizeBytes":4096}"#, .notFound, "not_found"),
            (.get, "/v1/pools/p/volumes/nope", nil, .notFound, "not_found"),
            (.get, "/v1/pools/..%2Fetc", nil, .badRequest, "invalid_argument"),
            (.delete, "/v1/pools/p?force=maybe", nil, .badRequest, "invalid_argument"),
            (.patch, "/v1/pools/p", #"{}"#, .badRequest, "invalid_argument"),
        ]
        try await env.app.test(.router) { client in
            for (method, uri, body, status, code) in cases {
                try await client.execute(uri: uri, method: method, headers: auth, body: body.map(json)) { r throws in
                    #expect(r.status == status, "\(method) \(uri) \(body ?? "")")
                    #expect(try errorCode(r.body) == code, "\(method) \(uri)")
                }
            }
        }
        #expect(try await env.storage.listPools().map(\.name) == ["p"])
        #expect(try await env.storage.listVolumes(pool: nil).isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: env.root + "/pools/p")) ?? []).isEmpty)
    }

    /// `GET /v1/jobs/ID?wait=S` answers when the job ends (not after a
    /// client's polling interval), or after S seconds with the job running.
    @Test func aJobIsAwaitedWithALongPoll() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        let gate = CancelFlag()
        let job = try await env.storage.jobs.start(
            kind: "test", object: "p/v", bytesTotal: 0, limit: nil, parameters: ""
        ) { _ in
            while !gate.isSet { try await Task.sleep(for: .milliseconds(5)) }
        }
        try await env.app.test(.router) { client in
            // Bounded: the job is still held, so the answer after 0.2 s says running.
            try await client.execute(uri: "/v1/jobs/\(job.id)?wait=0.2", method: .get, headers: auth) { r throws in
                #expect(r.status == .ok)
                #expect(try decode(JobInfo.self, r.body).state == .running)
            }
            for bad in ["abc", "61", "-1", "nan"] {
                try await client.execute(uri: "/v1/jobs/\(job.id)?wait=\(bad)", method: .get, headers: auth) {
                    r throws in
                    #expect(r.status == .badRequest, "wait=\(bad)")
                    #expect(try errorCode(r.body) == "invalid_argument")
                }
            }
            // Released while the call waits: the answer is the end, not a snapshot of the job running.
            let releaser = Task {
                try await Task.sleep(for: .milliseconds(300))
                gate.cancel()
            }
            try await client.execute(uri: "/v1/jobs/\(job.id)?wait=30", method: .get, headers: auth) { r throws in
                #expect(r.status == .ok)
                #expect(try decode(JobInfo.self, r.body).state == .succeeded)
            }
            try await releaser.value
            try await client.execute(uri: "/v1/jobs/nope?wait=1", method: .get, headers: auth) { r throws in
                #expect(r.status == .notFound)
            }
        }
    }

    @Test func metricsAndAuditLog() async throws {
        let env = try await makeEnv()
        defer { try? FileManager.default.removeItem(atPath: env.root) }
        try await env.app.test(.router) { client in
            try await client.execute(
                uri: "/v1/pools", method: .post, headers: auth, body: json(#"{"name":"m","capacityBytes":1048576}"#)
            ) { r throws in
                #expect(r.status == .created)
            }
            try await client.execute(uri: "/v1/pools", method: .post, headers: auth, body: json(#"{"name":"m"}"#)) {
                r throws in
                #expect(r.status == .conflict)
            }
            try await client.execute(
                uri: "/v1/pools/m/volumes", method: .post, headers: auth,
                body: json(#"{"name":"v","sizeBytes":4194304}"#)
            ) { r throws in
                #expect(r.status == .created)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: auth) { r throws in
                let text = String(buffer: r.body)
                #expect(text.contains(#"depot_pool_capacity_bytes{pool="m"} 1048576"#))
                #expect(text.contains(#"depot_pool_provisioned_bytes{pool="m"} 4194304"#))
                #expect(text.contains(#"depot_pool_overcommit_ratio{pool="m"} 4"#))
                #expect(text.contains(#"depot_pool_overprovisioned{pool="m"} 1"#))
                #expect(text.contains(#"depot_pool_state{pool="m",state="ok"} 1"#))
            }
            try await client.execute(uri: "/v1/pools/m?force=true", method: .delete, headers: auth) { r throws in
                #expect(r.status == .noContent)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: auth) { r throws in
                #expect(!String(buffer: r.body).contains(#"pool="m""#))
            }
        }
        let lines = try String(contentsOfFile: env.auditPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        let entries = try lines.map { try JSONDecoder().decode(AuditLog.Entry.self, from: Data($0.utf8)) }
        #expect(entries.map(\.status) == [201, 409, 201, 204])
        #expect(entries[0].action == "POST /v1/pools" && entries[0].outcome == "ok")
        #expect(entries[1].outcome.hasPrefix("conflict:"))
        #expect(entries[3].object == "pool m")
        // Creates name what they create, refused ones too.
        #expect(entries.map(\.object) == ["pool m", "pool m", "volume m/v", "pool m"])
        #expect(!entries[0].time.isEmpty && !entries[0].client.isEmpty)
    }
}
