import DepotCLI
import DepotCore
import Foundation
import Testing

/// Disks a hypervisor puts in a pool's directory (as on an NFS datastore
/// Depot exports) count in the pool's figures, with `qemu-img info` as the
/// oracle for their virtual sizes: qcow2 (a backing chain once), VMDK
/// sparse, streamOptimized and flat (descriptor + extent once), VHD, VHDX,
/// sparse raw; a truncated file is listed with its reason and counts by its
/// allocation only; Depot's own files are not listed.
@Suite(.serialized) struct ForeignDiskTests {
    /// What `qemu-img info` gives as the virtual size, except for a fixed
    /// VHD: QEMU reports its whole file (the data and the 512-byte footer),
    /// where the footer's Current Size (the spec's, and Hyper-V's) is the
    /// data alone — checked here, not assumed: the file is that long.
    static func virtualSize(_ qemuImg: String, _ path: String) throws -> UInt64 {
        let r = try Daemon.run(qemuImg, ["info", "-U", "--output=json", path])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let size = try #require((json["virtual-size"] as? NSNumber)?.uint64Value, "\(r.stdout)")
        guard path.hasSuffix("fixed.vhd") else { return size }
        let length = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)
        #expect(length.uint64Value == size, "qemu-img reports the fixed VHD's file length")
        return size - 512
    }

    @Test func foreignDisksCountInThePoolsFigures() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        // Depot's own: a volume with a snapshot (its layer) is not foreign.
        #expect(try daemon.depot(["volume", "create", "default/own", "--size", "64M"]).status == 0)
        #expect(try daemon.depot(["snapshot", "create", "default/own@s"]).status == 0)
        var r = try daemon.depot(["pool", "rescan", "default", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let before = try JSONDecoder().decode(PoolInfo.self, from: Data(r.stdout.utf8))

        let pool = daemon.data + "/pools/default"
        for dir in ["kvm", "esx", "hv", "raw"] {
            try FileManager.default.createDirectory(atPath: pool + "/" + dir, withIntermediateDirectories: true)
        }
        let made: [(path: String, args: [String])] = [
            ("kvm/base.qcow2", ["create", "-f", "qcow2", pool + "/kvm/base.qcow2", "2G"]),
            ("kvm/vm.qcow2", ["create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", pool + "/kvm/vm.qcow2"]),
            ("esx/sparse.vmdk", ["create", "-f", "vmdk", pool + "/esx/sparse.vmdk", "3G"]),
            (
                "esx/stream.vmdk",
                ["create", "-f", "vmdk", "-o", "subformat=streamOptimized", pool + "/esx/stream.vmdk", "1G"]
            ),
            (
                "esx/flat.vmdk",
                ["create", "-f", "vmdk", "-o", "subformat=monolithicFlat", pool + "/esx/flat.vmdk", "512M"]
            ),
            ("hv/dynamic.vhdx", ["create", "-f", "vhdx", pool + "/hv/dynamic.vhdx", "4G"]),
            ("hv/old.vhd", ["create", "-f", "vpc", "-o", "force_size=on", pool + "/hv/old.vhd", "1G"]),
            (
                "hv/fixed.vhd",
                ["create", "-f", "vpc", "-o", "subformat=fixed,force_size=on", pool + "/hv/fixed.vhd", "64M"]
            ),
            ("raw/disk.img", ["create", "-f", "raw", pool + "/raw/disk.img", "5G"]),
        ]
        for m in made {
            r = try Daemon.run(qemuImg, m.args)
            #expect(r.status == 0, "\(m.path): \(r.stderr)")
        }
        // A half-written qcow2: its magic and nothing else.
        FileManager.default.createFile(
            atPath: pool + "/kvm/cut.qcow2", contents: Data([0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3]))
        var expected: UInt64 = 0
        for m in made where m.path != "kvm/base.qcow2" {
            expected += try Self.virtualSize(qemuImg, pool + "/" + m.path)
        }
        var allocated: UInt64 = 0
        let all = made.map(\.path) + ["kvm/cut.qcow2", "esx/flat-flat.vmdk"]
        for path in all { allocated += try ImportTests.allocated(pool + "/" + path) }

        r = try daemon.depot(["pool", "rescan", "default", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let after = try JSONDecoder().decode(PoolInfo.self, from: Data(r.stdout.utf8))
        #expect(
            after.provisionedBytes - before.provisionedBytes == expected,
            "provisioned grew by the disks' virtual sizes, a chain once: \(after.provisionedBytes - before.provisionedBytes) vs \(expected)"
        )
        #expect(after.usedBytes - before.usedBytes == allocated, "used grew by their allocation")

        r = try daemon.depot(["pool", "files", "default", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = try JSONDecoder().decode(ForeignDiskList.self, from: Data(r.stdout.utf8)).files
        let byPath = Dictionary(uniqueKeysWithValues: files.map { ($0.path, $0) })
        #expect(Set(byPath.keys) == Set(all), "every foreign file, none of Depot's: \(byPath.keys.sorted())")
        let formats = [
            "kvm/vm.qcow2": "qcow2", "esx/sparse.vmdk": "vmdk", "esx/stream.vmdk": "vmdk", "esx/flat.vmdk": "vmdk",
            "hv/dynamic.vhdx": "vhdx", "hv/old.vhd": "vhd", "hv/fixed.vhd": "vhd", "raw/disk.img": "raw",
        ]
        for (path, format) in formats {
            #expect(byPath[path]?.format == format, "\(path): \(String(describing: byPath[path]))")
            let size = try Self.virtualSize(qemuImg, pool + "/" + path)
            #expect(byPath[path]?.virtualSizeBytes == size, "\(path) as qemu-img reads it: \(size)")
        }
        #expect(byPath["kvm/base.qcow2"]?.backs == true && byPath["kvm/vm.qcow2"]?.backing == "base.qcow2")
        #expect(byPath["esx/flat-flat.vmdk"]?.backs == true, "the flat extent is part of its descriptor's disk")
        let cut = try #require(byPath["kvm/cut.qcow2"])
        #expect(cut.problem?.contains("truncated") == true && cut.virtualSizeBytes == nil, "\(cut)")
        r = try daemon.depot(["pool", "files", "default"])
        #expect(r.status == 0 && r.stdout.contains("hv/dynamic.vhdx") && r.stdout.contains("truncated"), "\(r.stdout)")

        // Nothing was changed or deleted; a restart's reconcile reports them and leaves them.
        #expect(try #require(FileManager.default.contents(atPath: pool + "/kvm/cut.qcow2")).count == 8)
        r = try Daemon.run(qemuImg, ["check", pool + "/kvm/vm.qcow2"])
        #expect(r.status == 0, "\(r.stdout)")
    }
}
