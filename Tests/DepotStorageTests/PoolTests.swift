import DepotCore
import DepotStorage
import Foundation
import Testing

@Suite struct PoolTests {
    @Test func poolPathsAreCheckedAndDefaultToDataPools() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        let p = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        #expect(p.path == f.root + "/pools/p")
        #expect(!p.capacityExplicit && p.capacityBytes > 0)
        #expect(p.maxOvercommit == 20 && p.warnPercent == 75 && p.criticalPercent == 85 && p.reservedPercent == 0)
        for bad in ["relative/dir", f.root + "/x/../y", "/"] {
            await #expect(throws: DepotError.self) {
                try await f.storage.createPool(CreatePoolRequest(name: "q", path: bad))
            }
        }
        // Nested inside or around another pool is refused.
        await #expect(throws: DepotError.self) {
            try await f.storage.createPool(CreatePoolRequest(name: "q", path: f.root + "/pools/p/sub"))
        }
        await #expect(throws: DepotError.self) {
            try await f.storage.createPool(CreatePoolRequest(name: "q", path: f.root + "/pools"))
        }
        await #expect(throws: DepotError.self) { try await f.storage.createPool(CreatePoolRequest(name: "Q")) }
        await #expect(throws: DepotError.self) {
            try await f.storage.createPool(CreatePoolRequest(name: "q", warnPercent: 90, criticalPercent: 80))
        }
        await #expect(throws: DepotError.conflict("pool 'p' already exists")) {
            try await f.storage.createPool(CreatePoolRequest(name: "p"))
        }
        // A missing parent is refused (a typo must not become a directory tree) unless asked for.
        await #expect(throws: DepotError.self) {
            try await f.storage.createPool(CreatePoolRequest(name: "q", path: f.root + "/elsewhere/q"))
        }
        #expect(!FileManager.default.fileExists(atPath: f.root + "/elsewhere"))
        let custom = try await f.storage.createPool(
            CreatePoolRequest(name: "q", path: f.root + "/elsewhere/q", capacityBytes: 1 << 30, createParents: true))
        #expect(custom.capacityExplicit && custom.capacityBytes == 1 << 30)
        #expect(FileManager.default.fileExists(atPath: f.root + "/elsewhere/q"))
        #expect(try await f.storage.listPools().map(\.name) == ["p", "q"])
    }

    /// Deleting a pool removes only a directory Depot made; one the administrator gave stays.
    @Test func deletionKeepsADirectoryTheAdministratorGave() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        let given = f.root + "/mnt-ssd"
        try FileManager.default.createDirectory(atPath: given, withIntermediateDirectories: true)
        _ = try await f.storage.createPool(CreatePoolRequest(name: "g", path: given))
        try await f.storage.deletePool("g", force: false)
        #expect(FileManager.default.fileExists(atPath: given), "the given directory is kept")
        _ = try await f.storage.createPool(CreatePoolRequest(name: "m", path: f.root + "/made"))
        try await f.storage.deletePool("m", force: false)
        #expect(!FileManager.default.fileExists(atPath: f.root + "/made"), "the one Depot made goes")
    }

    @Test func deletingANonEmptyPoolNeedsForceAndKeepsUnknownFiles() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        _ = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "v", sizeBytes: 1 << 20))
        await #expect(throws: DepotError.self) { try await f.storage.deletePool("p", force: false) }
        #expect(f.files(in: "p") == ["v.img"])
        FileManager.default.createFile(atPath: f.root + "/pools/p/notes.txt", contents: Data("mine".utf8))
        try await f.storage.deletePool("p", force: true)
        #expect(f.files(in: "p") == ["notes.txt"])
        await #expect(throws: DepotError.notFound("pool 'p' not found")) { try await f.storage.pool("p") }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "e"))
        try await f.storage.deletePool("e", force: false)
        #expect(!FileManager.default.fileExists(atPath: f.root + "/pools/e"))
    }

    @Test func updateChangesThresholds() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        let updated = try await f.storage.updatePool(
            "p", UpdatePoolRequest(capacityBytes: 10 << 30, maxOvercommit: 3, warnPercent: 60))
        #expect(updated.capacityBytes == 10 << 30 && updated.maxOvercommit == 3 && updated.warnPercent == 60)
        await #expect(throws: DepotError.self) {
            try await f.storage.updatePool("p", UpdatePoolRequest(criticalPercent: 50))
        }
        await #expect(throws: DepotError.self) { try await f.storage.updatePool("p", UpdatePoolRequest()) }
    }
}
