import DepotCLI
import DepotCore
import Foundation
import Testing

/// A qcow2 volume served as a LUN, with qemu-img as the oracle: what QEMU's
/// block layer writes over iSCSI reads back identical over iSCSI, and the
/// file Depot wrote passes `qemu-img check` and `qemu-img compare` — while
/// the daemon still runs (after the initiator's SYNCHRONIZE CACHE) and after
/// a kill -9 and restart.
@Suite(.serialized) struct QCOW2VolumeTests {
    static let iqn = "iqn.2026-12.dev.depot:qcow2"

    @Test func aQcow2LUNIsWrittenByQemuAndPassesQemuImgCheck() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        var r = try daemon.depot(["volume", "create", "default/vm", "--size", "96M", "--format", "qcow2"])
        #expect(r.status == 0 && r.stdout.contains("qcow2"), "\(r.stdout) \(r.stderr)")
        let info = try await daemon.client.volume(VolumeRef(pool: "default", name: "vm"))
        #expect(info.format == .qcow2 && info.path.hasSuffix("/vm.qcow2") && info.sizeBytes == 96 << 20)
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        // The new file is an image qemu-img accepts as it is.
        r = try Daemon.run(qemuImg, ["check", "-U", info.path])
        #expect(r.status == 0, "a new qcow2 volume: \(r.stdout) \(r.stderr)")
        r = try Daemon.run(qemuImg, ["info", "-U", "--output=json", info.path])
        #expect(
            r.stdout.contains("\"virtual-size\": 100663296") && r.stdout.contains("\"format\": \"qcow2\""),
            "\(r.stdout)")
        // Thick qcow2 is preallocated as qemu-img's preallocation=falloc: every cluster mapped, its space reserved.
        r = try daemon.depot([
            "volume", "create", "default/thick", "--size", "256M", "--format", "qcow2", "--provisioning", "thick",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let thick = try await daemon.client.volume(VolumeRef(pool: "default", name: "thick"))
        r = try Daemon.run(qemuImg, ["check", "-U", thick.path])
        #expect(r.status == 0 && r.stdout.contains("No errors"), "\(r.stdout)")
        r = try Daemon.run(qemuImg, ["map", "-U", "--output=json", thick.path])
        #expect(
            r.stdout.contains("\"length\": 268435456") && r.stdout.contains("\"data\": true")
                && !r.stdout.contains("\"data\": false"), "every cluster is allocated: \(r.stdout)")
        #expect(thick.allocatedBytes >= 256 << 20, "its space is reserved: \(thick.allocatedBytes)")
        r = try daemon.depot([
            "volume", "create", "default/eager", "--size", "16M", "--format", "qcow2", "--provisioning", "eager-zeroed",
        ])
        #expect(r.status != 0 && r.stderr.contains("eager-zeroed qcow2"), "\(r.stderr)")
        // A preallocated thick qcow2 volume does not grow, and no qcow2 volume shrinks: refused, naming why.
        r = try daemon.depot(["volume", "resize", "default/thick", "--size", "+1G"])
        #expect(r.status != 0 && r.stderr.contains("thick qcow2"), "\(r.stderr)")
        r = try daemon.depot(["volume", "resize", "default/vm", "--size", "64M", "--force"])
        #expect(r.status != 0 && r.stderr.contains("can grow, not shrink"), "\(r.stderr)")

        #expect(try daemon.depot(["target", "create", Self.iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn, "default/vm"]).status == 0)
        let work = (daemon.data as NSString).deletingLastPathComponent
        // 40 MiB of random data at the start, the rest left unallocated.
        var payload = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 40 << 20)
        payload.append(Data(count: (96 - 40) << 20))
        try payload.write(to: URL(fileURLWithPath: work + "/expected.raw"))
        try Data(payload.prefix(40 << 20)).write(to: URL(fileURLWithPath: work + "/head.raw"))
        let url = "iscsi://\(daemon.portal)/\(Self.iqn)/0"
        // -t writeback: qemu-img convert ends with SYNCHRONIZE CACHE (its default, unsafe, never flushes).
        r = try Daemon.run(
            qemuImg, ["convert", "-n", "-t", "writeback", "-f", "raw", "-O", "raw", work + "/head.raw", url])
        #expect(r.status == 0, "qemu-img into the qcow2 LUN: \(r.stderr)")
        r = try Daemon.run(qemuImg, ["convert", "-f", "raw", "-O", "raw", url, work + "/back.raw"])
        #expect(r.status == 0, "qemu-img out of the qcow2 LUN: \(r.stderr)")
        // Data compared as one Bool: a failed #expect on 96 MiB would diff it byte by byte for hours.
        let back = FileManager.default.contents(atPath: work + "/back.raw") == payload
        #expect(back, "the LUN reads back what was written")

        // qemu-img convert ended with SYNCHRONIZE CACHE: the file is consistent now.
        r = try Daemon.run(qemuImg, ["check", "-U", info.path])
        #expect(r.status == 0 && r.stdout.contains("No errors were found"), "\(r.stdout) \(r.stderr)")
        r = try Daemon.run(qemuImg, ["compare", "-U", "-f", "qcow2", "-F", "raw", info.path, work + "/expected.raw"])
        #expect(r.status == 0, "the image is what was written: \(r.stdout) \(r.stderr)")
        // Thin: 40 MiB written, not 96 MiB allocated.
        try await Task.sleep(for: .seconds(1))
        let allocated = try await daemon.client.volume(VolumeRef(pool: "default", name: "vm")).allocatedBytes
        #expect(allocated >= 40 << 20 && allocated < 60 << 20, "allocated \(allocated)")

        // kill -9 and restart: the flushed writes are there, the image is not corrupt.
        daemon.kill9()
        r = try Daemon.run(qemuImg, ["check", info.path])
        #expect(r.status == 0 || r.status == 3, "after kill -9 only leaks are allowed: \(r.stdout) \(r.stderr)")
        #expect(!r.stdout.contains("ERROR"), "\(r.stdout)")
        try await daemon.start()
        let restarted = "iscsi://\(daemon.portal)/\(Self.iqn)/0"
        r = try Daemon.run(qemuImg, ["convert", "-f", "raw", "-O", "raw", restarted, work + "/again.raw"])
        #expect(r.status == 0, "\(r.stderr)")
        let again = FileManager.default.contents(atPath: work + "/again.raw") == payload
        #expect(again, "flushed writes survive kill -9")

        // A write with no flush after it, then a clean stop: the image is written out, no leaks.
        try Data(repeating: 0x5A, count: 1 << 20).write(to: URL(fileURLWithPath: work + "/tail.raw"))
        r = try Daemon.run(
            qemuImg, ["convert", "-n", "-t", "unsafe", "-f", "raw", "-O", "raw", work + "/tail.raw", restarted])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await daemon.terminate() == 0)
        r = try Daemon.run(qemuImg, ["check", info.path])
        #expect(r.status == 0 && r.stdout.contains("No errors were found"), "after a clean stop: \(r.stdout)")
        payload.replaceSubrange(0..<(1 << 20), with: Data(repeating: 0x5A, count: 1 << 20))
        try payload.write(to: URL(fileURLWithPath: work + "/expected.raw"))
        r = try Daemon.run(qemuImg, ["compare", "-f", "qcow2", "-F", "raw", info.path, work + "/expected.raw"])
        #expect(r.status == 0, "the unflushed write is in the image after a clean stop: \(r.stdout)")
    }
}
