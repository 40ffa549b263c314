import DepotCLI
import DepotCore
import Foundation
import Testing

/// kill -9 of depotd in the middle of a volume creation, then a restart that reconciles.
@Suite(.serialized) struct CrashRecoveryTests {
    struct Report: Decodable {
        var missingVolumes: [String]
        var unknownFiles: [String]
        var rolledBackCreates: [String]
    }

    @Test func killDuringCreateThenRestartReconciles() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        #expect(try daemon.depot(["volume", "create", "default/keep", "--size", "64M"]).status == 0)
        #expect(try daemon.depot(["volume", "create", "default/lost", "--size", "64M"]).status == 0)

        // Eager zeroing 8 GiB takes seconds: kill the daemon while the volume is
        // in state creating and its file exists (partly reserved or written).
        let cli = try daemon.depotAsync([
            "volume", "create", "default/big", "--size", "8G", "--provisioning", "eager-zeroed",
        ])
        let ref = VolumeRef(pool: "default", name: "big")
        let partial = daemon.data + "/pools/default/big.img"
        var seenCreating = false
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, cli.isRunning {
            if FileManager.default.fileExists(atPath: partial), let v = try? await daemon.client.volume(ref),
                v.state == .creating
            {
                seenCreating = true
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(seenCreating, "never saw default/big in state creating")
        #expect(FileManager.default.fileExists(atPath: partial))
        daemon.kill9()
        cli.waitUntilExit()
        #expect(cli.terminationStatus != 0, "the CLI must not report success for a create the daemon never finished")

        // While it is down: one volume's file vanishes, a stranger's file appears.
        try FileManager.default.removeItem(atPath: daemon.data + "/pools/default/lost.img")
        FileManager.default.createFile(atPath: daemon.data + "/pools/default/stranger.iso", contents: Data("x".utf8))

        try await daemon.start()
        let volumes = try await daemon.client.volumes(pool: "default")
        #expect(volumes.map(\.name).sorted() == ["keep", "lost"])
        #expect(volumes.first { $0.name == "lost" }?.state == .missing)
        #expect(volumes.first { $0.name == "keep" }?.state == .ready)
        #expect(!FileManager.default.fileExists(atPath: partial), "the half-made file is removed")
        #expect(
            FileManager.default.fileExists(atPath: daemon.data + "/pools/default/stranger.iso"),
            "unknown files are never deleted")
        let data = try await daemon.client.send("GET", "/v1/reconcile")
        let report = try JSONDecoder().decode(Report.self, from: data)
        #expect(report.rolledBackCreates == ["default/big"])
        #expect(report.missingVolumes == ["default/lost"])
        #expect(report.unknownFiles == [daemon.data + "/pools/default/stranger.iso"])
        #expect(daemon.log.contains("reconcile found drift"))
        // The name is free again and capacity no longer counts the rolled-back volume.
        let pool = try await daemon.client.pool("default")
        #expect(pool.provisionedBytes == 128 << 20)
        #expect(try daemon.depot(["volume", "create", "default/big", "--size", "64M"]).status == 0)
    }
}
