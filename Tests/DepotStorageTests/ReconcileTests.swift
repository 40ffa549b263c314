import DepotBackstores
import DepotCatalog
import DepotCore
import DepotStorage
import Foundation
import Testing

/// Crash states are made by writing the rows and files a crash would leave.
@Suite struct ReconcileTests {
    func record(_ poolId: Int64, _ name: String, state: VolumeState, size: Int64 = 1 << 20) -> VolumeRecord {
        VolumeRecord(
            poolId: poolId, name: name, uuid: UUID().uuidString, fileName: "\(name).img", sizeBytes: size,
            provisioning: .thin, blockSize: 512, state: state, createdAt: "t")
    }

    @Test func interruptedCreatesAndDeletesAreFinished() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        let pool = try await #require(try f.catalog.pool(named: "p"))
        _ = try await f.catalog.insertVolume(record(pool.id!, "half", state: .creating), poolName: "p")
        FileManager.default.createFile(atPath: pool.path + "/half.img", contents: Data([1, 2, 3]))
        _ = try await f.catalog.insertVolume(record(pool.id!, "going", state: .deleting), poolName: "p")
        FileManager.default.createFile(atPath: pool.path + "/going.img", contents: Data())
        _ = try await f.catalog.insertVolume(record(pool.id!, "nofile", state: .creating), poolName: "p")
        let report = try await f.storage.reconcile()
        #expect(report.rolledBackCreates.sorted() == ["p/half", "p/nofile"])
        #expect(report.finishedDeletes == ["p/going"])
        #expect(f.files(in: "p").isEmpty)
        await #expect(try f.catalog.volumes().isEmpty)
    }

    @Test func missingFilesAreMarkedAndUnknownFilesReported() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        let v = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "v", sizeBytes: 1 << 20))
        try FileManager.default.removeItem(atPath: v.path)
        FileManager.default.createFile(atPath: f.root + "/pools/p/stray.img", contents: Data([9]))
        let report = try await f.storage.reconcile()
        #expect(report.missingVolumes == ["p/v"])
        #expect(report.unknownFiles == [f.root + "/pools/p/stray.img"])
        #expect(try await f.storage.volume(VolumeRef(pool: "p", name: "v")).state == .missing)
        #expect(FileManager.default.contents(atPath: f.root + "/pools/p/stray.img") == Data([9]))
        // The file comes back: the volume is ready again.
        FileManager.default.createFile(atPath: v.path, contents: nil)
        try FileHandle(forWritingAtPath: v.path)!.truncate(atOffset: 1 << 20)
        _ = try await f.storage.reconcile()
        #expect(try await f.storage.volume(VolumeRef(pool: "p", name: "v")).state == .ready)
    }

    @Test func interruptedRenameAndResizeAreFinishedOrRolledBack() async throws {
        let f = try StorageFixture()
        defer { f.cleanup() }
        _ = try await f.storage.createPool(CreatePoolRequest(name: "p"))
        let pool = try await #require(try f.catalog.pool(named: "p"))
        _ = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "r1", sizeBytes: 1 << 20))
        _ = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "r2", sizeBytes: 1 << 20))
        _ = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "g1", sizeBytes: 1 << 20))
        _ = try await f.storage.createVolume(pool: "p", CreateVolumeRequest(name: "g2", sizeBytes: 1 << 20))
        for name in ["q1", "q2"] {
            _ = try await f.storage.createVolume(
                pool: "p", CreateVolumeRequest(name: name, sizeBytes: 1 << 20, format: .qcow2))
        }
        // r1: intent written and file renamed, then crash. r2: intent only.
        _ = try await f.catalog.beginRename(
            volumeId: try f.catalog.volume(poolId: pool.id!, name: "r1")!.id!, poolId: pool.id!, poolName: "p",
            newName: "r1-new")
        try FileManager.default.moveItem(atPath: pool.path + "/r1.img", toPath: pool.path + "/r1-new.img")
        _ = try await f.catalog.beginRename(
            volumeId: try f.catalog.volume(poolId: pool.id!, name: "r2")!.id!, poolId: pool.id!, poolName: "p",
            newName: "r2-new")
        // g1: intent and file grown, then crash. g2: intent only.
        var g1 = try await #require(try f.catalog.volume(poolId: pool.id!, name: "g1"))
        g1.pendingSizeBytes = 2 << 20
        try await f.catalog.updateVolume(g1)
        try FileHandle(forWritingAtPath: pool.path + "/g1.img")!.truncate(atOffset: 2 << 20)
        var g2 = try await #require(try f.catalog.volume(poolId: pool.id!, name: "g2"))
        g2.pendingSizeBytes = 2 << 20
        try await f.catalog.updateVolume(g2)
        // q1: intent and image grown (its header), then crash. q2: intent only.
        for name in ["q1", "q2"] {
            var q = try await #require(try f.catalog.volume(poolId: pool.id!, name: name))
            q.pendingSizeBytes = 2 << 20
            try await f.catalog.updateVolume(q)
        }
        let image = try QCOW2BlockDevice(path: pool.path + "/q1.qcow2", blockSize: 512, readOnly: false)
        try await image.grow(to: 2 << 20)
        try await image.close()

        let report = try await f.storage.reconcile()
        #expect(report.repairedIntents.count == 6, "\(report.repairedIntents)")
        #expect(report.repairedIntents.contains("p/q1: resize to \(2 << 20) finished"), "\(report.repairedIntents)")
        #expect(report.repairedIntents.contains("p/q2: resize to \(2 << 20) rolled back"), "\(report.repairedIntents)")
        let names = try await f.storage.listVolumes(pool: "p").map { "\($0.name):\($0.sizeBytes)" }.sorted()
        #expect(
            names == [
                "g1:\(2 << 20)", "g2:\(1 << 20)", "q1:\(2 << 20)", "q2:\(1 << 20)", "r1-new:\(1 << 20)",
                "r2:\(1 << 20)",
            ])
        #expect(f.files(in: "p") == ["g1.img", "g2.img", "q1.qcow2", "q2.qcow2", "r1-new.img", "r2.img"])
        await #expect(try f.catalog.volumes().allSatisfy { $0.pendingName == nil && $0.pendingSizeBytes == nil })
        #expect(try await f.storage.reconcile().isClean)
    }
}
