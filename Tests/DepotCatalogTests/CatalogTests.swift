import DepotCatalog
import DepotCore
import Foundation
import Testing

@Suite struct CatalogTests {
    func pool(_ name: String, path: String? = nil) -> PoolRecord {
        PoolRecord(name: name, path: path ?? "/srv/\(name)", capacityBytes: nil, thresholds: .defaults, createdAt: "t")
    }

    @Test func migratesAndRecordsMigrationNames() async throws {
        let catalog = try Catalog.inMemory()
        #expect(
            try await catalog.appliedMigrations == [
                "2026-11-25-pools-volumes", "2026-11-25-exports", "2026-11-25-iscsi-targets", "2026-11-25-target-chap",
                "2026-11-25-persistent-reservations", "2026-11-26-portal-groups", "2026-12-01-pool-created-directory",
                "2026-12-02-volume-format", "2026-12-03-snapshots-jobs", "2026-12-04-api-tokens",
                "2026-12-05-portal-network-scope", "2026-12-06-volume-flush-error",
            ])
    }

    @Test func fileCatalogUsesWALAndMode0600() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-cat-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let catalog = try Catalog.open(path: dir + "/catalog.sqlite")
        #expect(try await catalog.journalMode == "wal")
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/catalog.sqlite")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func duplicatePoolNamesAndPathsConflict() async throws {
        let catalog = try Catalog.inMemory()
        _ = try await catalog.insertPool(pool("a"))
        await #expect(throws: DepotError.conflict("pool 'a' already exists")) {
            try await catalog.insertPool(pool("a", path: "/x"))
        }
        await #expect(throws: DepotError.self) { try await catalog.insertPool(pool("b", path: "/srv/a")) }
        #expect(try await catalog.pools().map(\.name) == ["a"])
    }

    @Test func volumesAreUniquePerPoolAndBlockPoolDeletion() async throws {
        let catalog = try Catalog.inMemory()
        let p = try await catalog.insertPool(pool("a"))
        let v = VolumeRecord(
            poolId: p.id!, name: "v", uuid: "u1", fileName: "v.img", sizeBytes: 512, provisioning: .thin,
            blockSize: 512, state: .ready, createdAt: "t")
        let inserted = try await catalog.insertVolume(v, poolName: "a")
        var dup = v
        dup.uuid = "u2"
        await #expect(throws: DepotError.self) { try await catalog.insertVolume(dup, poolName: "a") }
        await #expect(throws: DepotError.self) { try await catalog.deletePool(id: p.id!) }
        try await catalog.deleteVolume(id: inserted.id!)
        try await catalog.deletePool(id: p.id!)
        #expect(try await catalog.pools().isEmpty)
    }

    @Test func renameIntentReservesTheNewName() async throws {
        let catalog = try Catalog.inMemory()
        let p = try await catalog.insertPool(pool("a"))
        let v = try await catalog.insertVolume(
            VolumeRecord(
                poolId: p.id!, name: "v", uuid: "u1", fileName: "v.img", sizeBytes: 512, provisioning: .thin,
                blockSize: 512, state: .ready, createdAt: "t"), poolName: "a")
        let pending = try await catalog.beginRename(volumeId: v.id!, poolId: p.id!, poolName: "a", newName: "w")
        #expect(pending.pendingName == "w")
        let other = VolumeRecord(
            poolId: p.id!, name: "w", uuid: "u2", fileName: "w.img", sizeBytes: 512, provisioning: .thin,
            blockSize: 512, state: .ready, createdAt: "t")
        await #expect(throws: DepotError.self) { try await catalog.insertVolume(other, poolName: "a") }
    }
}

/// #20: the catalog owns its queries — no module but DepotCatalog imports
/// GRDB, and the catalog's writer is not reachable from outside it.
@Suite struct CatalogOwnershipTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Sources")

    @Test func onlyTheCatalogImportsGRDB() throws {
        let files = try #require(FileManager.default.enumerator(at: Self.sources, includingPropertiesForKeys: nil))
            .compactMap { $0 as? URL }
            .filter { $0.pathExtension == "swift" }
        #expect(files.count > 50)
        for file in files where !file.path.contains("/DepotCatalog/") {
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(!text.contains("import GRDB"), "\(file.lastPathComponent) imports GRDB")
        }
        for file in files where file.path.contains("/DepotCatalog/") {
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(
                !text.contains("public func write") && !text.contains("public let writer")
                    && !text.contains("public var writer"),
                "\(file.lastPathComponent) exposes the writer")
        }
    }
}
