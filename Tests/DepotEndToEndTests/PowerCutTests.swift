import DepotCore
import Foundation
import Testing

/// Lost unsynced writes at a power cut (the idea of LazyFS): depotd serves a
/// raw and a qcow2 volume from a file system that records every change
/// (scripts/faultfs.py --record) while libiscsi runs a random workload of
/// writes, FUA writes, SYNCHRONIZE CACHEs and UNMAPs, marking each
/// acknowledgement in the record. scripts/powercut.py then rebuilds what a
/// disk could hold after a cut at many random points (synced changes kept,
/// any subset of the rest) and checks that every write acknowledged as
/// durable (SBC-3 §5.20 FUA, §5.27 SYNCHRONIZE CACHE) reads back, no block
/// holds data it never held, qcow2 images have no corruption (`qemu-img
/// check`), and the catalog passes `PRAGMA integrity_check` with every
/// acknowledged volume. At a few cuts depotd itself starts on the rebuilt
/// disk and serves the same guarantees through iSCSI.
///
/// POWERCUT_SEED replays a run (the seed is printed); POWERCUT_CUTS and
/// POWERCUT_COMMANDS size it (`make powercut` runs thousands of cuts).
@Suite(.serialized) struct PowerCutTests {
    static let iqn = "iqn.2026-12.dev.depot:powercut"
    static let blockSize = 4096
    static let blocks = 512
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/powercut.py").path

    static func setting(_ name: String, _ fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? fallback
    }

    struct Command: Codable {
        var op: String
        var lun: Int32
        var blk: Int = 0
        var n: Int = 0
        var fua: Bool? = nil
    }

    struct Volume: Codable {
        var lun: Int32
        var name: String
        var path: String
        var format: String
        var blocks: Int
    }

    struct Workload: Codable {
        var blockSize: Int
        var setupMark: String
        var volumes: [Volume]
        var commands: [Command]
    }

    /// powercut.py's pattern(k, lun, blk): a header naming the write, then bytes that depend on it.
    static func pattern(_ k: Int, lun: Int32, blk: Int) -> [UInt8] {
        var block = Array("PWRCUT".utf8)
        block += [UInt8(lun >> 8 & 0xFF), UInt8(lun & 0xFF)]
        for v in [k, blk] { block += (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
        for i in block.count..<blockSize { block.append(UInt8(truncatingIfNeeded: k &* 7 &+ blk &* 31 &+ i)) }
        return block
    }

    static func cdb(_ opcode: UInt8, blk: Int, n: Int, fua: Bool = false) -> [UInt8] {
        let lba = UInt32(blk * blockSize / 512)
        let length = UInt16(n * blockSize / 512)
        return [
            opcode, fua ? 0x08 : 0, UInt8(lba >> 24), UInt8(lba >> 16 & 0xFF), UInt8(lba >> 8 & 0xFF),
            UInt8(lba & 0xFF), 0, UInt8(length >> 8), UInt8(length & 0xFF), 0,
        ]
    }

    func execute(_ c: Command, _ k: Int, on client: LibISCSIClient) -> LibISCSIClient.Outcome? {
        switch c.op {
        case "write":
            let data = (c.blk..<c.blk + c.n).flatMap { Self.pattern(k, lun: c.lun, blk: $0) }
            return client.command(lun: c.lun, Self.cdb(0x2A, blk: c.blk, n: c.n, fua: c.fua == true), dataOut: data)
        case "sync":
            return client.command(lun: c.lun, [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        default:  // UNMAP (SBC-3 §5.28): one block descriptor
            let lba = UInt64(c.blk * Self.blockSize / 512)
            let count = UInt32(c.n * Self.blockSize / 512)
            var list: [UInt8] = [0, 22, 0, 16, 0, 0, 0, 0]
            list += (0..<8).map { UInt8(truncatingIfNeeded: lba >> (56 - 8 * $0)) }
            list += (0..<4).map { UInt8(truncatingIfNeeded: count >> (24 - 8 * $0)) } + [0, 0, 0, 0]
            return client.command(lun: c.lun, [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], dataOut: list)
        }
    }

    static func powercut(_ args: [String]) throws -> CommandResult {
        try Daemon.run("/usr/bin/python3", [script] + args)
    }

    @Test func everyDurableWriteSurvivesAPowerCutAtAnyPoint() async throws {
        let seed = Self.setting("POWERCUT_SEED", Int.random(in: 1...999_999))
        let cuts = Self.setting("POWERCUT_CUTS", 120)
        let count = Self.setting("POWERCUT_COMMANDS", 240)
        print("powercut: seed \(seed) (POWERCUT_SEED=\(seed) replays it), \(count) commands, \(cuts) cuts")
        let dir = (try Daemon.makeDataDirectory() as NSString).deletingLastPathComponent
        let record = dir + "/powercut.log"
        let fs = try await FaultFS(under: dir, record: record)
        let daemon = Daemon(data: fs.mountpoint + "/data")
        defer {
            daemon.kill9()
            fs.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
        try await daemon.start()
        var volumes: [Volume] = []
        for (lun, name, format) in [(Int32(0), "default/raw", "raw"), (1, "default/q", "qcow2")] {
            var r = try daemon.depot(["volume", "create", name, "--size", "\(Self.blocks * 4)K", "--format", format])
            #expect(r.status == 0, "\(r.stderr)")
            r = try daemon.depot(["volume", "show", name, "--json"])
            let info = try JSONDecoder().decode(VolumeInfo.self, from: Data(r.stdout.utf8))
            #expect(info.path.hasPrefix(fs.mountpoint + "/"), "\(info.path)")
            let path = String(info.path.dropFirst(fs.mountpoint.count + 1))
            volumes.append(Volume(lun: lun, name: name, path: path, format: format, blocks: Self.blocks))
        }
        #expect(try daemon.depot(["target", "create", Self.iqn, "--allow-any"]).status == 0)
        for v in volumes {
            #expect(try daemon.depot(["target", "lun", "map", Self.iqn, v.name, "--lun", "\(v.lun)"]).status == 0)
        }
        let client = try LibISCSIClient(initiator: "iqn.2026-12.dev.depot:host")
        try #require(client.login(portal: daemon.portal, target: Self.iqn), "\(client.lastError)")
        for lun in [Int32(0), 1] { _ = client.command(lun: lun, [0, 0, 0, 0, 0, 0]) }  // power-on unit attentions
        fs.mark("setup")

        let r = try Self.powercut([
            "workload", "--seed", "\(seed)", "--commands", "\(count)", "--blocks", "\(Self.blocks)",
        ])
        let commands = try JSONDecoder().decode([Command].self, from: Data(r.stdout.utf8))
        for (k, c) in commands.enumerated() {
            let outcome = execute(c, k, on: client)
            try #require(outcome?.good == true, "command \(k) \(c): \(outcome?.senseText ?? client.lastError)")
            fs.mark("\(k)")
        }
        // The power cut: nothing more reaches the disk.
        daemon.kill9()
        fs.stop()
        let workload = dir + "/workload.json"
        try JSONEncoder().encode(
            Workload(blockSize: Self.blockSize, setupMark: ".powercut-mark-setup", volumes: volumes, commands: commands)
        ).write(to: URL(fileURLWithPath: workload))

        let check = try Self.powercut(["check", record, workload, "--cuts", "\(cuts)", "--seed", "\(seed)"])
        print(check.stdout)
        #expect(check.status == 0, "seed \(seed):\n\(check.stdout)\(check.stderr)")

        // depotd's own recovery on a rebuilt disk: starts, and serves what was durable.
        let picked = try Self.powercut(["pick", record, workload, "--count", "2", "--seed", "\(seed)"])
        for cut in picked.stdout.split(separator: "\n") {
            try? FileManager.default.removeItem(atPath: fs.mountpoint)
            let m = try Self.powercut(
                ["materialize", record, workload, "--cut", String(cut), "--seed", "\(seed)", "--out", fs.mountpoint])
            try #require(m.status == 0, "\(m.stderr)")
            let rebuilt = Daemon(data: fs.mountpoint + "/data")
            try await rebuilt.start()
            let reader = try LibISCSIClient(initiator: "iqn.2026-12.dev.depot:host")
            try #require(reader.login(portal: rebuilt.portal, target: Self.iqn), "cut \(cut): \(reader.lastError)")
            var dumps: [String] = []
            for v in volumes {
                _ = reader.command(lun: v.lun, [0, 0, 0, 0, 0, 0])
                var bytes: [UInt8] = []
                for blk in stride(from: 0, to: v.blocks, by: 16) {
                    let o = reader.command(lun: v.lun, Self.cdb(0x28, blk: blk, n: 16), dataIn: 16 * Self.blockSize)
                    try #require(o?.good == true, "cut \(cut) read: \(o?.senseText ?? reader.lastError)")
                    bytes += o!.data
                }
                let dump = dir + "/dump-\(v.lun)"
                FileManager.default.createFile(atPath: dump, contents: Data(bytes))
                dumps += ["--dump", "\(v.lun)=\(dump)"]
            }
            reader.logout()
            #expect(try await rebuilt.terminate() == 0)
            let verify = try Self.powercut(["verify", record, workload, "--cut", String(cut)] + dumps)
            #expect(verify.status == 0, "seed \(seed) cut \(cut):\n\(verify.stdout)\(verify.stderr)")
        }
    }
}
