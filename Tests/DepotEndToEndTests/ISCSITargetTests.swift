import DepotCLI
import DepotCore
import Foundation
import Testing

/// The in-process iSCSI target driven by real initiators: libiscsi's tools
/// (iscsi-ls, iscsi-inq, iscsi-readcapacity16) and QEMU's block layer.
@Suite(.serialized) struct ISCSITargetTests {
    static let iqn = "iqn.2026-11.dev.depot:e2e"

    func setUp(_ daemon: Daemon, allowAny: Bool = true, size: String = "64M") throws {
        #expect(try daemon.depot(["volume", "create", "default/disk0", "--size", size]).status == 0)
        var r = try daemon.depot(["target", "create", Self.iqn] + (allowAny ? ["--allow-any"] : []))
        #expect(r.status == 0, "\(r.stderr)")
        r = try daemon.depot(["target", "lun", "map", Self.iqn, "default/disk0"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("LUN 0"))
    }

    @Test func qemuImgConvertsIntoTheLUNAndBackByteIdentical() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        let work = (daemon.data as NSString).deletingLastPathComponent
        // /dev/urandom: a byte-at-a-time generator costs a minute in a debug build.
        let payload = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 64 << 20)
        #expect(payload.count == 64 << 20)
        try payload.write(to: URL(fileURLWithPath: work + "/random.img"))
        let url = "iscsi://\(daemon.portal)/\(Self.iqn)/0"
        var r = try Daemon.run(qemuImg, ["convert", "-n", "-f", "raw", "-O", "raw", work + "/random.img", url])
        #expect(r.status == 0, "qemu-img into the LUN: \(r.stderr)")
        r = try Daemon.run(qemuImg, ["convert", "-f", "raw", "-O", "raw", url, work + "/back.img"])
        #expect(r.status == 0, "qemu-img out of the LUN: \(r.stderr)")
        #expect(FileManager.default.contents(atPath: work + "/back.img") == payload, "image read back differs")
        #expect(
            FileManager.default.contents(atPath: daemon.data + "/pools/default/disk0.img") == payload,
            "volume file differs")
        // The volume's allocation follows the writes (64 MiB of random data).
        try await Task.sleep(for: .seconds(2))
        #expect(try await daemon.client.volume(VolumeRef(pool: "default", name: "disk0")).allocatedBytes >= 64 << 20)
    }

    @Test func discoveryInquiryAndCapacity() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon)
        var r = try Daemon.run(try NFSGaneshaTests.tool("iscsi-ls"), ["-s", "iscsi://\(daemon.portal)"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Target:\(Self.iqn) Portal:\(daemon.portal),1"), "\(r.stdout)")
        #expect(r.stdout.contains("Lun:0") && r.stdout.contains("DIRECT_ACCESS"), "\(r.stdout)")
        r = try Daemon.run(try NFSGaneshaTests.tool("iscsi-inq"), ["iscsi://\(daemon.portal)/\(Self.iqn)/0"])
        #expect(r.status == 0 && r.stdout.contains("Vendor:DEPOT"), "\(r.stdout)\(r.stderr)")
        r = try Daemon.run(
            try NFSGaneshaTests.tool("iscsi-inq"), ["-e", "1", "-c", "128", "iscsi://\(daemon.portal)/\(Self.iqn)/0"])
        let uuid = try await daemon.client.volume(VolumeRef(pool: "default", name: "disk0")).uuid.replacingOccurrences(
            of: "-", with: "")
        #expect(r.stdout.contains(uuid), "unit serial number is the volume's UUID: \(r.stdout)")
        r = try Daemon.run(try NFSGaneshaTests.tool("iscsi-readcapacity16"), ["iscsi://\(daemon.portal)/\(Self.iqn)/0"])
        #expect(r.stdout.contains("Total size:67108864"), "\(r.stdout)")
    }

    @Test func accessControlAndBadInput() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        try setUp(daemon, allowAny: false)
        let inq = try NFSGaneshaTests.tool("iscsi-inq")
        let url = "iscsi://\(daemon.portal)/\(Self.iqn)/0"
        let initiator = "iqn.2026-11.dev.depot:client1"
        // A new target admits nobody; discovery hides it.
        var r = try Daemon.run(inq, ["-i", initiator, url])
        #expect(r.status != 0, "login without an ACL entry must fail")
        r = try Daemon.run(try NFSGaneshaTests.tool("iscsi-ls"), ["-i", initiator, "iscsi://\(daemon.portal)"])
        #expect(!r.stdout.contains(Self.iqn), "discovery lists only targets the initiator may log into")
        #expect(try daemon.depot(["target", "acl", "add", Self.iqn, initiator]).status == 0)
        r = try Daemon.run(inq, ["-i", initiator, url])
        #expect(r.status == 0, "\(r.stderr)")
        // Unknown target: login refused; the daemon keeps serving.
        r = try Daemon.run(inq, ["-i", initiator, "iscsi://\(daemon.portal)/iqn.2026-11.dev.depot:nope/0"])
        #expect(r.status != 0)
        // Garbage on the portal closes that connection only.
        let parts = daemon.portal.split(separator: ":")
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(parts[1])!).bigEndian
        addr.sin_addr.s_addr = inet_addr(String(parts[0]))
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        #expect(connected == 0)
        var junk = [UInt8](repeating: 0xFF, count: 48)
        junk[5] = 0xFF  // a data segment far beyond any negotiated limit
        _ = junk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var byte: UInt8 = 0
        let n = read(fd, &byte, 1)
        close(fd)
        #expect(n <= 0, "the target closes a connection that sends garbage")
        r = try Daemon.run(inq, ["-i", initiator, url])
        #expect(r.status == 0, "other sessions still work: \(r.stderr)")
        // A mapped volume is not deleted; a read-only map refuses writes.
        r = try daemon.depot(["volume", "delete", "default/disk0"])
        #expect(r.status != 0 && r.stderr.contains("mapped"), "\(r.stderr)")
        #expect(try daemon.depot(["target", "lun", "unmap", Self.iqn, "--lun", "0"]).status == 0)
        #expect(
            try daemon.depot(["target", "lun", "map", Self.iqn, "default/disk0", "--lun", "3", "--read-only"]).status
                == 0)
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        let work = (daemon.data as NSString).deletingLastPathComponent
        FileManager.default.createFile(atPath: work + "/small.img", contents: Data(repeating: 7, count: 1 << 20))
        r = try Daemon.run(
            qemuImg,
            [
                "convert", "-n", "-f", "raw", "-O", "raw", work + "/small.img",
                "iscsi://\(daemon.portal)/\(Self.iqn)/3?initiator-name=\(initiator)",
            ])
        #expect(r.status != 0, "writes to a read-only LUN fail")
        #expect(
            FileManager.default.contents(atPath: daemon.data + "/pools/default/disk0.img")?.prefix(1 << 20).allSatisfy {
                $0 == 0
            } == true)
        // Exporting a pool whose volumes are LUNs warns (file and block access to one image).
        r = try daemon.depot(["export", "create", "default", "--client", "127.0.0.1", "--ro"])
        #expect(
            r.status == 0 && r.stdout.contains("warning: volume default/disk0 is also LUN 3 of \(Self.iqn)"),
            "\(r.stdout)\(r.stderr)")
        #expect(try daemon.depot(["export", "delete", "default"]).status == 0)
        #expect(try daemon.depot(["target", "delete", Self.iqn]).status == 0)
        #expect(try daemon.depot(["volume", "delete", "default/disk0"]).status == 0)
    }
}
