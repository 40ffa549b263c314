import DepotCore
import Foundation
import Testing

/// A volume is one LU: mapping it twice on one target (two LUNs, one VPD
/// 83h identity) is refused with where it already is; on another target it
/// is allowed (multipath across targets).
@Suite(.serialized) struct LUNMapCLITests {
    @Test func aVolumeIsMappedOncePerTarget() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let a = "iqn.2026-11.dev.depot:map-a"
        let b = "iqn.2026-11.dev.depot:map-b"
        #expect(try daemon.depot(["volume", "create", "default/v", "--size", "16M"]).status == 0)
        #expect(try daemon.depot(["target", "create", a, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "create", b, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", a, "default/v", "--lun", "1"]).status == 0)
        var r = try daemon.depot(["target", "lun", "map", a, "default/v", "--lun", "2"])
        #expect(r.status != 0 && r.stderr.contains("already LUN 1 of \(a)"), "\(r.stderr)")
        r = try daemon.depot(["target", "lun", "map", a, "default/v"])
        #expect(r.status != 0, "without --lun too")
        #expect(try await daemon.client.target(a).luns.map(\.lun) == [1], "nothing was added")
        r = try daemon.depot(["target", "lun", "map", b, "default/v", "--read-only"])
        #expect(r.status == 0, "another target may map it: \(r.stderr)")
        // `volume show` says where the volume is served.
        r = try daemon.depot(["volume", "show", "default/v"])
        #expect(
            r.stdout.contains("\(a) LUN 1") && r.stdout.contains("\(b) LUN 0 (read-only)")
                && r.stdout.contains("nfs export"), "\(r.stdout)")
        r = try daemon.depot(["pool", "show", "default"])
        #expect(r.stdout.contains("volumes: v (16 MiB thin)"), "pool show lists its volumes: \(r.stdout)")
        let info = try await daemon.client.volume(VolumeRef(pool: "default", name: "v"))
        #expect(
            info.luns == [VolumeLUN(target: a, lun: 1, readOnly: false), VolumeLUN(target: b, lun: 0, readOnly: true)]
                && info.exported == false)
    }
}
