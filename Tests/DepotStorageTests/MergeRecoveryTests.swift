import DepotBackstores
import DepotCatalog
import DepotCore
import DepotStorage
import Foundation
import Testing

/// A merge cut by a crash after the layer above was rebased but before the
/// catalog was committed: reconcile takes the volume's base from its file,
/// and the resumed job then finds nothing built on the snapshot — it must
/// finish the delete (not fail with the snapshot stuck in `merging`). The
/// volume reads the same data throughout.
@Suite struct MergeRecoveryTests {
    @Test func aMergeCutAfterItsRebaseFinishesAtTheNextStart() async throws {
        let fixture = try StorageFixture()
        defer { fixture.cleanup() }
        let storage = fixture.storage
        try await storage.ensureDefaultPool()
        let ref = VolumeRef(pool: "default", name: "vm")
        _ = try await storage.createVolume(pool: "default", CreateVolumeRequest(name: "vm", sizeBytes: 4 << 20))
        let raw = fixture.root + "/pools/default/vm.img"
        try fixture.write(raw, offset: 0, bytes: [UInt8](repeating: 0x42, count: 1 << 20))
        let snapshot = try await storage.createSnapshot(SnapshotRef(volume: ref, name: "s"))
        let active = fixture.root + "/pools/default/vm.qcow2"

        // What the merge did before the "crash": data pulled up, header rebased; the catalog untouched.
        let device = try QCOW2BlockDevice(path: active, blockSize: 512, readOnly: false)
        try device.pull(layers: 1) { _, _ in }
        try device.closeNow()
        try QCOW2BlockDevice.rebase(path: active, backing: nil)
        var record = try #require(try await fixture.catalog.snapshot(volumeId: 1, name: "s"))
        record.state = "merging"
        try await fixture.catalog.updateSnapshot(record)
        try await fixture.catalog.saveJob(
            JobRecord(
                id: "cut", kind: "merge", object: "default/vm@s", state: JobState.running.rawValue,
                bytesTotal: 4 << 20, rateBytes: 0, parameters: #"{"snapshotId":\#(record.id!)}"#,
                createdAt: Timestamp.now()))

        // The next start: reconcile, then the jobs.
        let report = try await storage.reconcile()
        #expect(report.repairedIntents.contains { $0.contains("base layer taken from its file") }, "\(report)")
        await storage.resumeJobs()
        let ended = try await storage.jobs.wait("cut")
        #expect(ended.state == .succeeded, "\(ended)")
        #expect(try await storage.listSnapshots(volume: ref).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: snapshot.path))
        #expect(try await storage.volume(ref).base == nil)
        let reopened = try QCOW2BlockDevice(path: active, blockSize: 512, readOnly: true)
        let bytes = try await reopened.read(offset: 0, length: 1 << 20)
        #expect(bytes.allSatisfy { $0 == 0x42 }, "the data pulled up is there")
    }
}
