import DepotCore
import DepotInitiator
import Foundation
import Testing

/// Capacity that tells the truth about the filesystem: a pool shows the
/// filesystem's free space beside Depot's accounting, a capacity beyond what
/// the filesystem can give is accepted with a warning and flagged, one below
/// what the volumes use is refused without --force, and pools sharing a
/// filesystem are said to share it.
@Suite(.serialized) struct CapacityTruthCLITests {
    @Test func poolFiguresFaceTheFilesystem() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let fsFree = try await daemon.client.pool("default").filesystemFreeBytes
        #expect(fsFree > 0)
        // Far beyond the filesystem: accepted, with a warning and a flag.
        var r = try daemon.depot(["pool", "create", "silver", "--capacity", "1P"])
        #expect(
            r.status == 0 && r.stdout.contains("warning: capacity 1 PiB is more than the filesystem"),
            "\(r.stdout)\(r.stderr)")
        let silver = try await daemon.client.pool("silver")
        #expect(silver.exceedsFilesystem && silver.freeBytes <= silver.filesystemFreeBytes)
        r = try daemon.depot(["capacity"])
        #expect(r.stdout.contains("EXCEEDS-FILESYSTEM") && r.stdout.contains("FS-FREE"), "\(r.stdout)")
        #expect(r.stdout.contains("note: pools default, silver share one filesystem"), "\(r.stdout)")
        #expect(try await daemon.client.pool("default").sharesFilesystemWith == ["silver"])
        // Below what the volumes already use: refused without --force, nothing changed.
        #expect(
            try daemon.depot(["volume", "create", "silver/t", "--size", "8M", "--provisioning", "thick"]).status == 0)
        r = try daemon.depot(["pool", "set", "silver", "--capacity", "4M"])
        #expect(
            r.status != 0 && r.stderr.contains("below the 8 MiB") && r.stderr.contains("nothing was changed"),
            "\(r.stderr)")
        #expect(try await daemon.client.pool("silver").capacityBytes == 1 << 50)
        r = try daemon.depot(["pool", "set", "silver", "--capacity", "4M", "--force"])
        let lowered = try await daemon.client.pool("silver").capacityBytes
        #expect(r.status == 0 && lowered == 4 << 20, "\(r.stderr)")
        r = try daemon.depot(["pool", "show", "silver"])
        #expect(r.stdout.contains("filesystem") && r.stdout.contains("shared with pools default"), "\(r.stdout)")
    }

    /// Blocks written over iSCSI show in `volume show` at once (it reads the
    /// file), and `depot capacity` says how old its figures are.
    @Test func writesOverISCSIShowAtOnceInVolumeShow() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start(defaults: true)  // the 30 s rescan: no rescan during the test
        let iqn = "iqn.2026-11.dev.depot:alloc"
        #expect(try daemon.depot(["volume", "create", "default/t", "--size", "64M"]).status == 0)
        #expect(try daemon.depot(["target", "create", iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", iqn, "default/t"]).status == 0)
        let raw = try RawInitiator.session(
            portal: daemon.portal, isid: [0x80, 7, 7, 7, 7, 7], initiator: "iqn.2026-11.dev.depot:alloc-i", target: iqn)
        let block = [UInt8](repeating: 0x5A, count: 65536)
        for k in 0..<16 { #expect(try raw.writeBlocks(lba: UInt32(k * 128), block, immediate: 65536) == 0) }
        #expect(try raw.run([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).status == 0)  // SYNCHRONIZE CACHE: on disk
        let info = try await daemon.client.volume(VolumeRef(pool: "default", name: "t"))
        #expect(info.allocatedBytes >= 1 << 20, "allocated \(info.allocatedBytes) right after 1 MiB written")
        let r = try daemon.depot(["capacity"])
        #expect(r.stdout.contains("as of the last rescan"), "\(r.stdout)")
    }
}
