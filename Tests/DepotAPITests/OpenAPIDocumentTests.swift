import DepotCore
import Foundation
import Testing
import Yams

/// Docs/openapi.yaml is the API's contract: the objects the server encodes
/// carry exactly the documented fields.
@Suite struct OpenAPIDocumentTests {
    static var document: [String: Any] {
        get throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
            let text = try String(contentsOf: root.appendingPathComponent("Docs/openapi.yaml"), encoding: .utf8)
            return try #require(try Yams.load(yaml: text) as? [String: Any])
        }
    }

    func schema(_ name: String) throws -> [String: Any] {
        let components = try #require(try Self.document["components"] as? [String: Any])
        let schemas = try #require(components["schemas"] as? [String: Any])
        return try #require(schemas[name] as? [String: Any])
    }

    func keys(_ value: some Encodable) throws -> Set<String> {
        let object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value)) as? [String: Any]
        return Set(try #require(object).keys)
    }

    @Test func statusFieldsMatchTheDocument() throws {
        let status = DaemonStatus(
            version: "v", startedAt: "t", uptimeSeconds: 1, dataDirectory: "/d", api: "http://a", portals: ["p"],
            pools: [.init(name: "p", state: .ok, usedPercent: 1)], sessions: 0, reconcileFindings: 0)
        let documented = try schema("DaemonStatus")
        #expect(Set(try #require(documented["required"] as? [String])) == (try keys(status)))
        #expect(Set(try #require(documented["properties"] as? [String: Any]).keys) == (try keys(status)))
        let paths = try #require(try Self.document["paths"] as? [String: Any])
        #expect(paths["/v1/status"] != nil)
    }

    @Test func poolAndVolumeFieldsMatchTheDocument() throws {
        let figures = CapacityFigures(
            capacityBytes: 1, usedBytes: 0, provisionedBytes: 0, filesystemAvailableBytes: 1, thresholds: .defaults)
        var pool = PoolInfo(name: "p", path: "/p", capacityExplicit: true, figures: figures, volumeCount: 0)
        let poolSchema = try schema("Pool")
        #expect(Set(try #require(poolSchema["required"] as? [String])) == (try keys(pool)))
        pool.warnings = ["w"]
        #expect(Set(try #require(poolSchema["properties"] as? [String: Any]).keys) == (try keys(pool)))

        var volume = VolumeInfo(
            pool: "p", name: "v", sizeBytes: 512, allocatedBytes: 0, provisioning: .thin, blockSize: 512,
            state: .ready, uuid: "u", path: "/p/v.img", createdAt: "t")
        let volumeSchema = try schema("Volume")
        #expect(Set(try #require(volumeSchema["required"] as? [String])) == (try keys(volume)))
        volume.progress = 0.5
        volume.luns = [VolumeLUN(target: "iqn.x", lun: 0, readOnly: false)]
        volume.exported = true
        volume.base = "p/v@s"
        volume.snapshotBytes = 1
        volume.snapshotCount = 1
        volume.error = "fdatasync: EIO"
        #expect(Set(try #require(volumeSchema["properties"] as? [String: Any]).keys) == (try keys(volume)))
    }

    @Test func snapshotAndJobFieldsMatchTheDocument() throws {
        let snapshot = SnapshotInfo(
            pool: "p", volume: "v", name: "s", uuid: "u", state: "ready", sizeBytes: 1, allocatedBytes: 0,
            uniqueBytes: 0, parent: "p/v@r", dependents: [], clones: [], format: .qcow2, path: "/p/.layer-u.qcow2",
            createdAt: "t")
        let snapshotSchema = try schema("Snapshot")
        #expect(Set(try #require(snapshotSchema["properties"] as? [String: Any]).keys) == (try keys(snapshot)))
        #expect(
            Set(try #require(snapshotSchema["required"] as? [String])) == (try keys(snapshot)).subtracting(["parent"]))
        let job = JobInfo(
            id: "j", kind: "merge", object: "p/v@s", state: .running, bytesDone: 0, bytesTotal: 1, percent: 0,
            rateBytesPerSecond: 0, etaSeconds: 1, limitBytesPerSecond: 0, error: "e", createdAt: "t", updatedAt: "t",
            finishedAt: "t")
        let jobSchema = try schema("Job")
        #expect(Set(try #require(jobSchema["properties"] as? [String: Any]).keys) == (try keys(job)))
        #expect(
            Set(try #require(jobSchema["required"] as? [String]))
                == (try keys(job)).subtracting(["etaSeconds", "error", "finishedAt"]))
    }

    @Test func exportFieldsMatchTheDocument() throws {
        var export = ExportInfo(
            pool: "p", path: "/p", fsid: 101, pseudo: "/depot/p", rules: [ExportRule(client: "*")], createdAt: "t")
        let exportSchema = try schema("Export")
        #expect(Set(try #require(exportSchema["required"] as? [String])) == (try keys(export)))
        export.warnings = ["w"]
        #expect(Set(try #require(exportSchema["properties"] as? [String: Any]).keys) == (try keys(export)))
        let rule = ExportRule(client: "h", anonuid: 1, anongid: 2)
        #expect(Set(try #require(try schema("ExportRule")["properties"] as? [String: Any]).keys) == (try keys(rule)))
    }

    @Test func targetFieldsMatchTheDocument() throws {
        let target = TargetInfo(
            iqn: "iqn.2026-11.x:y", alias: "a", allowAnyInitiator: false, initiators: [], luns: [],
            createdAt: "t", chapUser: "u", mutualChap: false, portals: ["127.0.0.1:3260"],
            networks: ["iqn.x": ["10.0.0.0/24"]])
        #expect(Set(try #require(try schema("Target")["properties"] as? [String: Any]).keys) == (try keys(target)))
    }

    @Test func tokenFieldsMatchTheDocument() throws {
        let token = TokenInfo(
            name: "n", role: .operator, createdAt: "t", expiresAt: "t", lastUsedAt: "t", state: "active")
        let tokenSchema = try schema("Token")
        #expect(Set(try #require(tokenSchema["properties"] as? [String: Any]).keys) == (try keys(token)))
        #expect(
            Set(try #require(tokenSchema["required"] as? [String]))
                == (try keys(token)).subtracting(["expiresAt", "lastUsedAt"]))
        let created = CreatedToken(token: token, secret: "s")
        #expect(
            Set(try #require(try schema("CreatedToken")["properties"] as? [String: Any]).keys) == (try keys(created)))
        let request = CreateTokenRequest(name: "n", role: .readonly, expiresInSeconds: 1)
        #expect(
            Set(try #require(try schema("CreateTokenRequest")["properties"] as? [String: Any]).keys)
                == (try keys(request)))
    }

    @Test func auditFieldsMatchTheDocument() throws {
        let entry = AuditEntry(
            time: "t", client: "c", action: "a", object: "o", outcome: "ok", status: 200, token: "n")
        let entrySchema = try schema("AuditEntry")
        #expect(Set(try #require(entrySchema["properties"] as? [String: Any]).keys) == (try keys(entry)))
        #expect(Set(try #require(entrySchema["required"] as? [String])) == (try keys(entry)).subtracting(["token"]))
    }

    @Test func everyIssueRouteIsDocumented() throws {
        let paths = try #require(try Self.document["paths"] as? [String: Any])
        for path in [
            "/health", "/metrics", "/v1/pools", "/v1/pools/{pool}", "/v1/pools/{pool}/volumes",
            "/v1/pools/{pool}/volumes/{name}", "/v1/capacity", "/v1/volumes", "/v1/reconcile",
            "/v1/exports", "/v1/exports/publish", "/v1/exports/{pool}", "/v1/exports/{pool}/render",
            "/v1/targets", "/v1/targets/{iqn}", "/v1/targets/{iqn}/luns", "/v1/targets/{iqn}/luns/{lun}",
            "/v1/targets/{iqn}/acls", "/v1/targets/{iqn}/acls/{initiator}", "/v1/targets/{iqn}/chap",
            "/v1/pools/{pool}/volumes/{name}/snapshots", "/v1/pools/{pool}/volumes/{name}/snapshots/{snap}",
            "/v1/pools/{pool}/volumes/{name}/rollback", "/v1/pools/{pool}/volumes/{name}/clone",
            "/v1/pools/{pool}/volumes/{name}/flatten", "/v1/snapshots", "/v1/jobs", "/v1/jobs/{id}",
            "/v1/tokens", "/v1/tokens/{name}", "/v1/audit",
        ] {
            #expect(paths[path] != nil, "\(path) is not in Docs/openapi.yaml")
        }
    }
}
