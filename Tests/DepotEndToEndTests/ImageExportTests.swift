import DepotCLI
import DepotCore
import Foundation
import Testing

/// `depot volume export` with qemu-img as the oracle: a snapshot exported
/// while the volume takes writes over iSCSI is the snapshot, raw (sparse),
/// qcow2 (passing `qemu-img check`) and streamed; a live export is the
/// volume as it was, its implicit snapshot gone afterwards; an export
/// imported again is the volume; bad destinations are refused.
@Suite(.serialized) struct ImageExportTests {
    static let mib = 1 << 20

    @Test func exportsAreTheSnapshotOrTheVolume() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        let qemuIO = try NFSGaneshaTests.tool("qemu-io")
        let images = daemon.data + "/images"
        let work = (daemon.data as NSString).deletingLastPathComponent
        var r = try daemon.depot(["volume", "create", "default/vm", "--size", "64M"])
        #expect(r.status == 0, "\(r.stderr)")
        let iqn = "iqn.2026-12.dev.depot:export"
        #expect(try daemon.depot(["target", "create", iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", iqn, "default/vm"]).status == 0)
        let url = "iscsi://\(daemon.portal)/\(iqn)/0"
        // 8 MiB of random data at 4 MiB, the rest never written.
        try ImportTests.sparseRaw(work + "/at-s.raw", size: 64 * Self.mib, data: [4..<12])
        r = try Daemon.run(
            qemuImg, ["convert", "-n", "-t", "writeback", "-f", "raw", "-O", "raw", work + "/at-s.raw", url])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try daemon.depot(["snapshot", "create", "default/vm@s"]).status == 0)

        // A slow export of the snapshot while the LUN takes writes over the same range.
        r = try daemon.depot([
            "volume", "export", "default/vm@s", "--to", images + "/s.raw", "--rate", "2", "--json",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Daemon.run(
            qemuIO, ["-f", "raw", "-t", "writeback", "-c", "write -P 0x77 6M 4M", "-c", "write -P 0x66 40M 2M", url])
        #expect(r.status == 0, "writes during the export: \(r.stderr)")
        let job = try #require(try await daemon.client.jobs().first { $0.kind == "export" })
        #expect(job.state == .running, "the export was still running while the LUN was written: \(job)")
        r = try daemon.depot(["job", "show", job.id, "--wait"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        r = try Daemon.run(qemuImg, ["compare", "-f", "raw", "-F", "raw", work + "/at-s.raw", images + "/s.raw"])
        #expect(r.status == 0, "the export is the snapshot, not the writes after it: \(r.stdout) \(r.stderr)")
        #expect(try ImportTests.allocated(images + "/s.raw") <= UInt64(9 * Self.mib), "the raw export is sparse")

        r = try daemon.depot([
            "volume", "export", "default/vm@s", "--to", images + "/s.qcow2", "--format", "qcow2", "--wait",
        ])
        #expect(r.status == 0 && r.stdout.contains("exported"), "\(r.stdout) \(r.stderr)")
        r = try Daemon.run(qemuImg, ["check", images + "/s.qcow2"])
        #expect(r.status == 0 && r.stdout.contains("No errors"), "\(r.stdout)")
        r = try Daemon.run(qemuImg, ["compare", "-f", "raw", "-F", "qcow2", work + "/at-s.raw", images + "/s.qcow2"])
        #expect(r.status == 0, "qcow2 export: \(r.stdout) \(r.stderr)")

        // Streamed to standard output: the whole raw image, zeros included.
        r = try Daemon.run(
            "/bin/sh",
            [
                "-c", "\"$0\" volume export default/vm@s --to - > \"$1\"", try Binaries.path("depot"),
                work + "/streamed.raw",
            ],
            env: ["DEPOT_API": daemon.url, "DEPOT_TOKEN": daemon.token])
        #expect(r.status == 0, "\(r.stderr)")
        let streamed = FileManager.default.contents(atPath: work + "/streamed.raw")
        let expected = FileManager.default.contents(atPath: work + "/at-s.raw")
        #expect(streamed != nil && streamed == expected, "the stream is the snapshot")

        // The volume as it is now: an implicit snapshot, gone afterwards.
        try FileManager.default.copyItem(atPath: work + "/at-s.raw", toPath: work + "/now.raw")
        r = try Daemon.run(
            qemuIO, ["-f", "raw", "-c", "write -P 0x77 6M 4M", "-c", "write -P 0x66 40M 2M", work + "/now.raw"])
        #expect(r.status == 0)
        r = try daemon.depot([
            "volume", "export", "default/vm", "--to", images + "/now.qcow2", "--format", "qcow2", "--wait",
        ])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        r = try Daemon.run(qemuImg, ["compare", "-f", "raw", "-F", "qcow2", work + "/now.raw", images + "/now.qcow2"])
        #expect(r.status == 0, "a live export is the volume: \(r.stdout) \(r.stderr)")
        var snapshots: [String] = []
        for _ in 0..<100 {
            snapshots = try await daemon.client.snapshots(volume: VolumeRef(pool: "default", name: "vm")).map(\.name)
            if snapshots == ["s"] { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(snapshots == ["s"], "the implicit snapshot is deleted: \(snapshots)")
        r = try Daemon.run(qemuImg, ["compare", "-f", "raw", "-F", "raw", work + "/now.raw", url])
        #expect(r.status == 0, "the LUN still reads the volume: \(r.stdout) \(r.stderr)")

        // Round trip: the qcow2 export imported again is the snapshot.
        r = try daemon.depot(["volume", "import", "default/back", "--from", images + "/s.qcow2", "--wait"])
        #expect(r.status == 0, "\(r.stderr)")
        let back = try await daemon.client.volume(VolumeRef(pool: "default", name: "back"))
        r = try Daemon.run(qemuImg, ["compare", "-f", "raw", "-F", "raw", work + "/at-s.raw", back.path])
        #expect(r.status == 0, "import(export(s)) = s: \(r.stdout) \(r.stderr)")

        // Refused, naming why; nothing written.
        let outside = work + "/elsewhere"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let refused: [(args: [String], says: String)] = [
            (["default/vm@s", "--to", images + "/s.raw"], "exists"),
            (["default/vm@s", "--to", outside + "/x.raw"], "outside the directories"),
            (["default/vm@s", "--to", images + "/nodir/x.raw"], "cannot use the directory"),
            (["default/vm@nope", "--to", images + "/x.raw"], "nope"),
            (["default/none", "--to", images + "/x.raw"], "none"),
            (["default/vm@s", "--to", "-", "--format", "qcow2"], "streams raw only"),
            (["default/vm@s", "--to", "relative.raw"], "absolute path"),
        ]
        for c in refused {
            r = try daemon.depot(["volume", "export"] + c.args)
            #expect(r.status != 0 && r.stderr.contains(c.says), "\(c.args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: outside + "/x.raw"))
        #expect(!FileManager.default.fileExists(atPath: images + "/x.raw"))
        // A read-only token may not stream an export (a live one takes a snapshot).
        r = try daemon.depot(["token", "create", "viewer", "--role", "readonly"])
        let secret = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        r = try Daemon.run(
            "/usr/bin/curl",
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "authorization: Bearer \(secret)",
                "\(daemon.url)/v1/pools/default/volumes/vm/export?snapshot=s",
            ])
        #expect(r.stdout == "403", "readonly: \(r.stdout)")
    }

    @Test func anExportCutByKill9LeavesNoFileAndNoSnapshot() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let images = daemon.data + "/images"
        try ImportTests.sparseRaw(images + "/src.raw", size: 32 * Self.mib, data: [0..<32])
        var r = try daemon.depot(["volume", "import", "default/vm", "--from", images + "/src.raw", "--wait"])
        #expect(r.status == 0, "\(r.stderr)")
        // 1 MiB/s over 32 MiB: cut after 2 s, the live volume's implicit snapshot still there.
        r = try daemon.depot([
            "volume", "export", "default/vm", "--to", images + "/out.qcow2", "--format", "qcow2", "--rate", "1",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        try await Task.sleep(for: .seconds(2))
        let vm = VolumeRef(pool: "default", name: "vm")
        let during = try await daemon.client.snapshots(volume: vm).map(\.name)
        #expect(during.count == 1 && during[0].hasPrefix("export-"), "\(during)")
        daemon.kill9()
        #expect(FileManager.default.fileExists(atPath: images + "/out.qcow2"), "the partial file was there")
        try await daemon.start()
        var jobs: [JobInfo] = []
        var snapshots: [String] = during
        for _ in 0..<100 {
            jobs = try await daemon.client.jobs()
            snapshots = try await daemon.client.snapshots(volume: vm).map(\.name)
            if snapshots.isEmpty, jobs.allSatisfy({ $0.state != .running }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let export = try #require(jobs.first { $0.kind == "export" })
        #expect(export.state == .failed && (export.error ?? "").contains("start the export again"), "\(export)")
        #expect(!FileManager.default.fileExists(atPath: images + "/out.qcow2"), "the partial file is removed")
        #expect(snapshots.isEmpty, "the implicit snapshot is deleted: \(snapshots)")
        let info = try await daemon.client.volume(vm)
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        r = try Daemon.run(
            qemuImg,
            [
                "compare", "-U", "-f", "raw", "-F", info.format == .qcow2 ? "qcow2" : "raw", images + "/src.raw",
                info.path,
            ])
        #expect(r.status == 0, "the volume is unchanged: \(r.stdout) \(r.stderr)")
    }
}
