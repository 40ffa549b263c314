import DepotCLI
import DepotCore
import Foundation
import Testing

/// A real NFS-Ganesha (VFS FSAL, NFSv3 on loopback, registered with rpcbind)
/// reading the file depotd publishes; libnfs's nfs-ls / nfs-cp and QEMU's NFS
/// driver as clients. Needs root and the packages `make deps` installs.
@Suite(.serialized) struct NFSGaneshaTests {
    static func tool(_ name: String) throws -> String {
        for dir in ["/usr/bin", "/usr/sbin", "/sbin", "/bin"]
        where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
            return dir + "/" + name
        }
        throw HarnessError(
            "\(name) is missing: run `make deps` as root (nfs-ganesha, nfs-ganesha-vfs, rpcbind, libnfs-utils, qemu-utils, qemu-block-extra)"
        )
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { throw HarnessError("cannot find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Runs a command with a clean signal mask (the test runner's threads block
    /// some signals, and a child inherits the mask: Ganesha would never see SIGHUP).
    static func spawnClean(_ args: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
        p.arguments =
            ["-e", "use POSIX; sigprocmask(SIG_SETMASK, POSIX::SigSet->new()); exec @ARGV or die $!", "--"] + args
        FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = FileHandle(forWritingAtPath: log)
        try p.run()
        return p
    }

    static func until(_ seconds: Int, _ what: String, _ check: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try check() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HarnessError("timed out after \(seconds) s waiting for \(what)")
    }

    @Test func ganeshaServesPublishedExportsAndReloadsThem() async throws {
        #expect(geteuid() == 0, "Ganesha and rpcbind need root")
        let ganeshaBin = try Self.tool("ganesha.nfsd")
        let nfsLs = try Self.tool("nfs-ls")
        let nfsCp = try Self.tool("nfs-cp")
        let qemuImg = try Self.tool("qemu-img")
        let rpcinfo = try Self.tool("rpcinfo")

        // rpcbind: libnfs finds mountd and nfsd through the portmapper on 127.0.0.1:111.
        var startedRpcbind: Process?
        if try Daemon.run(rpcinfo, ["-p", "127.0.0.1"]).status != 0 {
            startedRpcbind = try Self.spawnClean(
                [try Self.tool("rpcbind"), "-f", "-w"], log: "/tmp/depot-test-rpcbind.log")
            try await Self.until(60, "rpcbind") { try Daemon.run(rpcinfo, ["-p", "127.0.0.1"]).status == 0 }
        }
        defer {
            startedRpcbind?.terminate()
            startedRpcbind?.waitUntilExit()
        }

        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        let work = (daemon.data as NSString).deletingLastPathComponent
        let pidFile = work + "/ganesha.pid"
        try await daemon.start(extra: ["--ganesha-pidfile", pidFile])

        // A pool with one volume holding random bytes, exported to loopback.
        #expect(try daemon.depot(["pool", "create", "nfs"]).status == 0)
        let volume = try await daemon.client.createVolume(
            pool: "nfs", CreateVolumeRequest(name: "disk", sizeBytes: 8 << 20))
        let payload = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 8 << 20)
        try payload.write(to: URL(fileURLWithPath: volume.path))
        // The default export: the client named gets root access (as ESXi and Proxmox need
        // to read and write root's 0600 volume files), '*' would not.
        var r = try daemon.depot(["export", "create", "nfs", "--client", "127.0.0.1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await daemon.client.export("nfs").rules.map(\.squash) == [.none])
        let poolPath = try await daemon.client.pool("nfs").path

        // Ganesha's own config includes the file depotd publishes.
        let nfsPort = try Self.freePort()
        let mntPort = try Self.freePort()
        let conf = work + "/ganesha.conf"
        try """
        NFS_CORE_PARAM {
            Protocols = 3, 4;
            NFS_Port = \(nfsPort);
            MNT_Port = \(mntPort);
            Bind_addr = 127.0.0.1;
            Enable_NLM = false;
            Enable_RQUOTA = false;
        }
        NFSV4 { Graceless = true; }
        NFS_KRB5 { Active_krb5 = false; }
        LOG { Default_Log_Level = EVENT; }
        %include "\(daemon.data)/ganesha/depot-exports.conf"

        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let ganeshaLog = work + "/ganesha.log"
        let ganesha = try Self.spawnClean(
            [ganeshaBin, "-F", "-f", conf, "-L", ganeshaLog, "-p", pidFile, "-N", "NIV_EVENT"],
            log: work + "/ganesha.out")
        defer {
            ganesha.terminate()
            ganesha.waitUntilExit()
        }
        try await Self.until(60, "Ganesha to start (\(ganeshaLog))") {
            ((try? String(contentsOfFile: ganeshaLog, encoding: .utf8)) ?? "").contains("NFS SERVER INITIALIZED")
        }

        // List the pool's export and copy the volume out, byte-identical.
        let url = "nfs://127.0.0.1\(poolPath)"
        try await Self.until(30, "nfs-ls of \(url)") { try Daemon.run(nfsLs, [url]).stdout.contains("disk.img") }
        let copy = work + "/copy.img"
        r = try Daemon.run(nfsCp, ["\(url)/disk.img", copy])
        #expect(r.status == 0, "nfs-cp: \(r.stderr)")
        #expect(FileManager.default.contents(atPath: copy) == payload, "nfs-cp copy differs")
        // ...and writes it: new bytes copied in over NFS land in the volume file.
        let fresh = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 8 << 20)
        try fresh.write(to: URL(fileURLWithPath: work + "/fresh.img"))
        // (QEMU writes into the existing image: convert -n, as a hypervisor would.)
        r = try Daemon.run(
            qemuImg, ["convert", "-n", "-f", "raw", "-O", "raw", work + "/fresh.img", "\(url)/disk.img"])
        #expect(r.status == 0, "qemu-img into the export: \(r.stdout) \(r.stderr)")
        #expect(
            FileManager.default.contents(atPath: volume.path) == fresh,
            "the volume file holds what was written over NFS")
        try payload.write(to: URL(fileURLWithPath: volume.path))
        // QEMU's NFS block driver reads the same image.
        let qcopy = work + "/qemu.img"
        r = try Daemon.run(qemuImg, ["convert", "-f", "raw", "-O", "raw", "\(url)/disk.img", qcopy])
        #expect(r.status == 0, "qemu-img: \(r.stderr)")
        #expect(FileManager.default.contents(atPath: qcopy) == payload, "qemu-img copy differs")

        // A second export appears without restarting Ganesha (SIGHUP after publish)...
        #expect(try daemon.depot(["pool", "create", "nfs2"]).status == 0)
        _ = try await daemon.client.createVolume(pool: "nfs2", CreateVolumeRequest(name: "second", sizeBytes: 1 << 20))
        r = try daemon.depot(["export", "create", "nfs2", "--client", "127.0.0.1", "--ro"])
        #expect(r.status == 0, "\(r.stderr)")
        let url2 = "nfs://127.0.0.1\(try await daemon.client.pool("nfs2").path)"
        try await Self.until(30, "second export to appear") {
            try Daemon.run(nfsLs, [url2]).stdout.contains("second.img")
        }
        #expect(ganesha.isRunning)
        // ...and goes when deleted.
        #expect(try daemon.depot(["export", "delete", "nfs2"]).status == 0)
        try await Self.until(30, "second export to go") { try Daemon.run(nfsLs, [url2]).status != 0 }
        #expect(try Daemon.run(nfsLs, [url]).stdout.contains("disk.img"), "the first export stays")

        // Exports survive a depotd restart: republished from the catalog.
        #expect(try await daemon.terminate() == 0)
        try FileManager.default.removeItem(atPath: daemon.data + "/ganesha/depot-exports.conf")
        try await daemon.start(extra: ["--ganesha-pidfile", pidFile])
        let republished = try String(contentsOfFile: daemon.data + "/ganesha/depot-exports.conf", encoding: .utf8)
        #expect(republished.contains("Pseudo = \"/depot/nfs\";") && !republished.contains("/depot/nfs2"))
        #expect(FileManager.default.fileExists(atPath: daemon.data + "/exports.d/depot-nfs.exports"))
        #expect(!FileManager.default.fileExists(atPath: daemon.data + "/exports.d/depot-nfs2.exports"))
        #expect(try Daemon.run(nfsLs, [url]).stdout.contains("disk.img"))
    }
}
