import DepotCatalog
import DepotCore
import DepotStorage
import Foundation
import Testing

@Suite struct VolumeLifecycleTests {
    @Test func provisioningKindsAllocateAsPromised() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        let size: UInt64 = 64 << 20
        let thin = try await f.storage.createVolume(
            pool: "p", CreateVolumeRequest(name: "thin", sizeBytes: size, provisioning: .thin))
        let thick = try await f.storage.createVolume(
            pool: "p", CreateVolumeRequest(name: "thick", sizeBytes: size, provisioning: .thick))
        let eager = try await f.storage.createVolume(
            pool: "p", CreateVolumeRequest(name: "eager", sizeBytes: size, provisioning: .eagerZeroed, blockSize: 4096))
        #expect(thin.allocatedBytes == 0)
        #expect(thick.allocatedBytes >= size)
        #expect(eager.allocatedBytes >= size)
        #expect(eager.blockSize == 4096)
        for v in [thin, thick, eager] {
            #expect(v.state == .ready)
            #expect(v.progress == nil)
            #expect(VolumeFile.status(path: v.path)?.sizeBytes == size)
        }
        // eager-zeroed data is really written: the range has data extents, all zero.
        #expect(try VolumeFile.lastNonZeroEnd(path: eager.path, from: 0, blockSize: 4096) == nil)
        let pool = try await f.storage.pool("p")
        #expect(pool.provisionedBytes == 3 * size)
        #expect(pool.usedBytes >= 2 * size && pool.usedBytes < 2 * size + (1 << 20))
        #expect(pool.volumeCount == 3)
    }

    @Test func refusalsChangeNothing() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p", capacityBytes: 100 << 20, maxOvercommit: 2))
        _ = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "a", sizeBytes: 150 << 20))
        await #expect(throws: DepotError.conflict("volume 'p/a' already exists")) {
            try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "a", sizeBytes: 1 << 20))
        }
        // 150 MiB + 51 MiB over 100 MiB > 2.0
        do {
            _ = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "b", sizeBytes: 51 << 20))
            Issue.record("thin admitted beyond max overcommit")
        } catch {
            #expect(error.code == .insufficientSpace)
        }
        do {
            _ = try await f.storage.createVolume(
                pool: "p", CreateVolumeRequest(name: "c", sizeBytes: 101 << 20, provisioning: .thick))
            Issue.record("thick admitted beyond free space")
        } catch {
            #expect(error.code == .insufficientSpace)
            #expect(error.message.contains("free 100 MiB"))
        }
        await #expect(throws: DepotError.self) {
            try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "odd", sizeBytes: 1000))
        }
        await #expect(throws: DepotError.self) {
            try await f.storage.createVolume(
                pool: "p", CreateVolumeRequest(name: "bs", sizeBytes: 4096, blockSize: 1024))
        }
        await #expect(throws: DepotError.self) {
            try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "../x", sizeBytes: 4096))
        }
        await #expect(throws: DepotError.notFound("pool 'nope' not found")) {
            try await f.storage.createVolume(pool: "nope", CreateVolumeRequest(name: "x", sizeBytes: 4096))
        }
        #expect(f.files(in: "p") == ["a.img"])
        #expect(try await f.storage.listVolumes(pool: "p").map(\.name) == ["a"])
    }

    @Test func resizeGrowsAndShrinksOnlyAboveWrittenData() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        let ref = VolumeRef(pool: "p", name: "v")
        let v = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "v", sizeBytes: 8 << 20))
        try f.write(v.path, offset: 3 << 20, bytes: [1, 2, 3])
        let grown = try await f.storage.resizeVolume(ref, sizeBytes: 16 << 20, force: false)
        #expect(grown.sizeBytes == 16 << 20 && VolumeFile.status(path: v.path)?.sizeBytes == 16 << 20)
        await #expect(throws: DepotError.self) {
            try await f.storage.resizeVolume(ref, sizeBytes: 4 << 20, force: false)
        }
        do {
            _ = try await f.storage.resizeVolume(ref, sizeBytes: 2 << 20, force: true)
            Issue.record("shrank below written data")
        } catch {
            #expect(error.code == .conflict)
            // Both sizes in human units, with the exact count (#21 item 14).
            #expect(error.message.contains("to 2 MiB (2097152 bytes)"), "\(error.message)")
            #expect(
                error.message.contains("smallest safe size is 3 MiB (\((3 << 20) + 512) bytes)"), "\(error.message)")
        }
        let shrunk = try await f.storage.resizeVolume(ref, sizeBytes: (3 << 20) + 512, force: true)
        #expect(shrunk.sizeBytes == (3 << 20) + 512)
        let data = try #require(FileManager.default.contents(atPath: v.path))
        #expect(data.count == (3 << 20) + 512 && data[3 << 20] == 1 && data[(3 << 20) + 2] == 3)
    }

    @Test func thickGrowReservesTheNewRange() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        _ = try await f.storage.createVolume(
            pool: "p", CreateVolumeRequest(name: "t", sizeBytes: 4 << 20, provisioning: .thick))
        let grown = try await f.storage.resizeVolume(VolumeRef(pool: "p", name: "t"), sizeBytes: 12 << 20, force: false)
        #expect(grown.allocatedBytes >= 12 << 20)
    }

    @Test func renameAndDeleteMoveTheFile() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        _ = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "a", sizeBytes: 1 << 20))
        _ = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "b", sizeBytes: 1 << 20))
        await #expect(throws: DepotError.self) {
            try await f.storage.renameVolume(VolumeRef(pool: "p", name: "a"), to: "b")
        }
        let renamed = try await f.storage.renameVolume(VolumeRef(pool: "p", name: "a"), to: "c")
        #expect(renamed.name == "c" && renamed.path.hasSuffix("/c.img"))
        #expect(f.files(in: "p") == ["b.img", "c.img"])
        try await f.storage.deleteVolume(VolumeRef(pool: "p", name: "c"))
        #expect(f.files(in: "p") == ["b.img"])
        await #expect(throws: DepotError.notFound("volume 'p/c' not found")) {
            try await f.storage.deleteVolume(VolumeRef(pool: "p", name: "c"))
        }
    }

    @Test func capacityFollowsWritesAfterRescan() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        let v = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "v", sizeBytes: 64 << 20))
        #expect(try await f.storage.pool("p").usedBytes == 0)
        try f.write(v.path, offset: 0, bytes: [UInt8](repeating: 7, count: 4 << 20))
        #expect(try await f.storage.rescan() == 1)
        let used = try await f.storage.pool("p").usedBytes
        #expect(used >= 4 << 20 && used < 5 << 20)
        #expect(try await f.storage.volume(VolumeRef(pool: "p", name: "v")).allocatedBytes == used)
    }

    @Test func concurrentThickCreatesCannotShareTheLastBytes() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p", capacityBytes: 100 << 20))
        let outcomes = await Self.createAtOnce(
            f.storage,
            (0..<4).map { CreateVolumeRequest(name: "t\($0)", sizeBytes: 40 << 20, provisioning: .eagerZeroed) })
        // 100 MiB holds two 40 MiB volumes, never three.
        #expect(outcomes.filter { $0 == nil }.count == 2)
        #expect(outcomes.compactMap { $0 }.allSatisfy { $0.code == .insufficientSpace })
        #expect(f.files(in: "p").count == 2)
        let pool = try await f.storage.pool("p")
        #expect(pool.provisionedBytes == 80 << 20 && pool.usedBytes >= 80 << 20)
    }

    /// The catalog is reached through GRDB's async API, so the actor is
    /// reentrant at each call: admission and the row it allows run as one
    /// change (`ChangeQueue`), or two creates admitted against the same
    /// figures would overcommit the pool past its limit, and two creates of
    /// one name would both pass the name check.
    @Test func concurrentThinCreatesStayWithinTheOvercommitLimit() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        // Capacity 100 MiB, max overcommit 2x: 200 MiB of thin volumes, never more.
        var request = CreatePoolRequest(name: "p", capacityBytes: 100 << 20)
        request.maxOvercommit = 2
        _ = try await f.storage.createPool(request)
        // Every other create repeats a name: one of each pair may exist.
        let outcomes = await Self.createAtOnce(
            f.storage, (0..<12).map { CreateVolumeRequest(name: "t\($0 / 2)", sizeBytes: 40 << 20) })
        #expect(outcomes.filter { $0 == nil }.count == 5)
        #expect(outcomes.compactMap { $0 }.allSatisfy { $0.code == .insufficientSpace || $0.code == .conflict })
        #expect(f.files(in: "p").count == 5)
        #expect(try await f.storage.pool("p").provisionedBytes == 200 << 20)
    }

    /// Runs every create at once in pool "p"; each one's refusal, or nil.
    static func createAtOnce(_ storage: StorageManager, _ requests: [CreateVolumeRequest]) async -> [DepotError?] {
        await withTaskGroup(of: DepotError?.self) { group in
            for request in requests {
                group.addTask {
                    do {
                        _ = try await storage.createVolume(pool: "p", request)
                        return nil
                    } catch {
                        return error as? DepotError ?? .internalError("\(error)")
                    }
                }
            }
            var all: [DepotError?] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
    }
}
