import DepotCore
import Foundation
import Testing

/// The flush-error latch with a real file system failing fsync: a pool on
/// faultfs (scripts/faultfs.py, a FUSE passthrough that fails fsync and
/// fdatasync with EIO while a control file exists), libiscsi as initiator.
/// The SYNCHRONIZE CACHE that meets the failure gets MEDIUM ERROR / WRITE
/// ERROR; once the file system would answer success again the LU stays
/// latched — SYNCHRONIZE CACHE and FUA writes fail the same way, across a
/// restart — the volume shows `state: error`, another volume keeps working,
/// and `depot volume clear-error` ends it.
@Suite(.serialized) struct FlushErrorTests {
    static let iqn = "iqn.2026-12.dev.depot:latch"

    static let syncCache: [UInt8] = [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    static func fuaWrite(lba: UInt8) -> [UInt8] { [0x2A, 0x08, 0, 0, 0, lba, 0, 0, 8, 0] }
    static let block = [UInt8](repeating: 0xC3, count: 4096)

    func isWriteError(_ o: LibISCSIClient.Outcome?) -> Bool { o?.status == 2 && o?.key == 3 && o?.ascq == 0x0C00 }

    func login(_ daemon: Daemon) throws -> LibISCSIClient {
        let client = try LibISCSIClient(initiator: "iqn.2026-12.dev.depot:db-host")
        try #require(client.login(portal: daemon.portal, target: Self.iqn), "\(client.lastError)")
        return client
    }

    func volume(_ daemon: Daemon, _ name: String) throws -> VolumeInfo {
        let r = try daemon.depot(["volume", "show", name, "--json"])
        return try JSONDecoder().decode(VolumeInfo.self, from: Data(r.stdout.utf8))
    }

    func metrics(_ daemon: Daemon) throws -> String {
        try Daemon.run(
            "/usr/bin/curl", ["-sf", "-H", "Authorization: Bearer \(daemon.token)", daemon.url + "/metrics"]
        ).stdout
    }

    @Test func aFailedFsyncLatchesTheVolumeUntilTheOperatorClearsIt() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        let fs = try await FaultFS(under: (daemon.data as NSString).deletingLastPathComponent)
        defer {
            daemon.kill9()
            fs.stop()
            daemon.cleanup()
        }
        try await daemon.start()
        var r = try daemon.depot(["pool", "create", "faulty", "--path", fs.mountpoint + "/pool"])
        #expect(r.status == 0, "\(r.stderr)")
        for (volume, lun) in [("faulty/db", "0"), ("default/other", "1")] {
            #expect(try daemon.depot(["volume", "create", volume, "--size", "16M"]).status == 0)
            #expect(try daemon.depot(["target", "create", Self.iqn, "--allow-any"]).status == (lun == "0" ? 0 : 1))
            #expect(try daemon.depot(["target", "lun", "map", Self.iqn, volume, "--lun", lun]).status == 0)
        }
        var client = try login(daemon)
        #expect(client.command(Self.fuaWrite(lba: 0), dataOut: Self.block)?.good == true, "\(client.lastError)")
        #expect(client.command(Self.syncCache)?.good == true)

        // The disk loses written data: the flush that sees it fails.
        #expect(client.write(lba: 8, Self.block), "a plain write is not a flush: \(client.lastError)")
        fs.failFsync(true)
        var outcome = client.command(Self.syncCache)
        #expect(isWriteError(outcome), "\(outcome?.senseText ?? client.lastError)")
        // The file system would now say success (as Linux does once it dropped the pages): still latched.
        fs.failFsync(false)
        outcome = client.command(Self.syncCache)
        #expect(isWriteError(outcome), "latched SYNCHRONIZE CACHE: \(outcome?.senseText ?? client.lastError)")
        outcome = client.command(Self.fuaWrite(lba: 16), dataOut: Self.block)
        #expect(isWriteError(outcome), "latched FUA write: \(outcome?.senseText ?? client.lastError)")
        // Reads and the other volume go on.
        #expect(client.read(lba: 0, length: 4096) == Self.block)
        // LUN 1's first command reports its power-on unit attention (SAM-5 §5.14), as it should.
        outcome = client.command(lun: 1, [0, 0, 0, 0, 0, 0])
        #expect(outcome?.key == 6 && (outcome?.ascq ?? 0) >> 8 == 0x29, "\(outcome?.senseText ?? client.lastError)")
        outcome = client.command(lun: 1, Self.fuaWrite(lba: 0), dataOut: Self.block)
        #expect(outcome?.good == true, "the other volume: \(outcome?.senseText ?? client.lastError)")
        #expect(client.command(lun: 1, Self.syncCache)?.good == true)
        client.logout()

        var info = try volume(daemon, "faulty/db")
        #expect(info.state == .error && info.error?.contains("Input/output error") == true, "\(info)")
        #expect(try volume(daemon, "default/other").state == .ready)
        r = try daemon.depot(["volume", "show", "faulty/db"])
        #expect(r.stdout.contains("error (") && r.stdout.contains("depot volume clear-error"), "\(r.stdout)")

        #expect(try metrics(daemon).contains(#"depot_pool_volumes_in_error{pool="faulty"} 1"#))
        #expect(try metrics(daemon).contains(#"depot_pool_volumes_in_error{pool="default"} 0"#))

        // The latch is in the catalog: a restart does not clear it.
        #expect(try await daemon.terminate() == 0)
        try await daemon.start()
        #expect(try volume(daemon, "faulty/db").state == .error)
        client = try login(daemon)
        outcome = client.command(Self.syncCache)
        #expect(isWriteError(outcome), "latched after a restart: \(outcome?.senseText ?? client.lastError)")

        // Cleared after checking (operator role suffices): flushes reach the file again.
        r = try daemon.depot(["volume", "clear-error", "faulty/db"])
        #expect(r.status == 0 && r.stdout.contains("ready"), "\(r.stdout)\(r.stderr)")
        info = try volume(daemon, "faulty/db")
        #expect(info.state == .ready && info.error == nil)
        #expect(try metrics(daemon).contains(#"depot_pool_volumes_in_error{pool="faulty"} 0"#))
        #expect(client.command(Self.syncCache)?.good == true)
        #expect(client.command(Self.fuaWrite(lba: 16), dataOut: Self.block)?.good == true)
        r = try daemon.depot(["volume", "clear-error", "faulty/db"])
        #expect(r.status != 0 && r.stderr.contains("not in error"), "\(r.stderr)")

        // A write the file system refuses (EIO) is a WRITE ERROR, never GOOD; it does not latch.
        fs.failWrite(true)
        outcome = client.command([0x2A, 0, 0, 0, 0, 24, 0, 0, 8, 0], dataOut: Self.block)
        #expect(isWriteError(outcome), "EIO on write: \(outcome?.senseText ?? client.lastError)")
        fs.failWrite(false)
        #expect(client.write(lba: 24, Self.block), "\(client.lastError)")
        #expect(client.command(Self.syncCache)?.good == true)
        #expect(client.read(lba: 24, length: 4096) == Self.block)
        client.logout()
    }
}
