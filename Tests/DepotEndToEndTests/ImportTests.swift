import DepotCLI
import DepotCore
import Foundation
import Testing

/// `depot volume import` with qemu-img as the oracle: images qemu-img makes
/// (sparse raw, qcow2 v3 and v2, compressed, zero clusters, a backing chain)
/// become volumes that `qemu-img compare` finds identical to the source —
/// one of them read through a LUN — thin (bytes allocated ≤ 1.05 × the
/// source's data), and bad input is refused with its reason, leaving nothing.
@Suite(.serialized) struct ImportTests {
    static let mib = 1 << 20

    /// A sparse raw file of `size` bytes with random data at the given MiB ranges.
    static func sparseRaw(_ path: String, size: Int, data: [Range<Int>]) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        defer { try? handle.close() }
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        for range in data {
            try handle.seek(toOffset: UInt64(range.lowerBound * mib))
            try handle.write(contentsOf: random.readData(ofLength: range.count * mib))
        }
        try handle.truncate(atOffset: UInt64(size))
    }

    static func allocated(_ path: String) throws -> UInt64 {
        var st = stat()
        #expect(stat(path, &st) == 0)
        return UInt64(st.st_blocks) * 512
    }

    /// `depot ARGS < FILE`: the CLI's standard input a file.
    static func depot(_ daemon: Daemon, _ args: String, stdin file: String) throws -> CommandResult {
        try Daemon.run(
            "/bin/sh", ["-c", "\"$0\" \(args) < \"$1\"", try Binaries.path("depot"), file],
            env: ["DEPOT_API": daemon.url, "DEPOT_TOKEN": daemon.token])
    }

    func importing(_ daemon: Daemon, _ name: String, _ from: String, _ extra: [String] = []) throws -> CommandResult {
        try daemon.depot(["volume", "import", "default/" + name, "--from", from, "--wait"] + extra)
    }

    @Test func importedImagesAreWhatQemuImgReads() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        let qemuIO = try NFSGaneshaTests.tool("qemu-io")
        let dir = daemon.data + "/images"
        // 64 MiB, 6 MiB of it random data in three runs, the rest holes.
        try Self.sparseRaw(dir + "/disk.raw", size: 64 * Self.mib, data: [1..<3, 20..<22, 62..<64])
        let rawData = try Self.allocated(dir + "/disk.raw")
        var r = try Daemon.run(qemuImg, ["convert", "-f", "raw", "-O", "qcow2", dir + "/disk.raw", dir + "/v3.qcow2"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Daemon.run(
            qemuImg, ["convert", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10", dir + "/disk.raw", dir + "/v2.qcow2"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Daemon.run(
            qemuImg,
            [
                "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", dir + "/disk.raw",
                dir + "/c.qcow2",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        // A chain: an overlay on v3.qcow2 (named relative), with new data and a zero cluster over old data.
        r = try Daemon.run(qemuImg, ["create", "-f", "qcow2", "-b", "v3.qcow2", "-F", "qcow2", dir + "/top.qcow2"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Daemon.run(
            qemuIO, ["-f", "qcow2", "-c", "write -P 0x5a 30M 2M", "-c", "write -z 1M 1M", dir + "/top.qcow2"])
        #expect(r.status == 0, "\(r.stderr)")
        // A raw file whose size is not a multiple of 512: the volume is padded to the next block.
        try Self.sparseRaw(dir + "/odd.raw", size: 3 * Self.mib + 1000, data: [0..<3])

        let cases: [(name: String, file: String, format: String, extra: [String])] = [
            ("raw", "disk.raw", "raw", []),
            ("raw-thick", "disk.raw", "raw", ["--provisioning", "thick"]),
            ("v3", "v3.qcow2", "qcow2", []),
            ("v3-as-qcow2", "v3.qcow2", "qcow2", ["--as", "qcow2"]),
            ("v2", "v2.qcow2", "qcow2", ["--format", "qcow2"]),
            ("compressed", "c.qcow2", "qcow2", ["--as", "qcow2"]),
            ("chain", "top.qcow2", "qcow2", []),
            ("chain-as-qcow2", "top.qcow2", "qcow2", ["--as", "qcow2"]),
            ("raw-as-qcow2", "disk.raw", "raw", ["--as", "qcow2"]),
        ]
        for c in cases {
            r = try importing(daemon, c.name, dir + "/" + c.file, c.extra)
            #expect(r.status == 0 && r.stdout.contains("imported"), "\(c.name): \(r.stdout) \(r.stderr)")
            let info = try await daemon.client.volume(VolumeRef(pool: "default", name: c.name))
            let asQCOW2 = c.extra.contains("qcow2") && c.extra.contains("--as")
            #expect(info.format == (asQCOW2 ? .qcow2 : .raw) && info.state == .ready, "\(c.name): \(info)")
            #expect(info.sizeBytes == UInt64(64 * Self.mib), "\(c.name): size \(info.sizeBytes)")
            r = try Daemon.run(
                qemuImg,
                ["compare", "-U", "-f", c.format, "-F", asQCOW2 ? "qcow2" : "raw", dir + "/" + c.file, info.path])
            #expect(r.status == 0, "\(c.name): the volume is the image: \(r.stdout) \(r.stderr)")
            if asQCOW2 {
                r = try Daemon.run(qemuImg, ["check", "-U", info.path])
                #expect(r.status == 0 && r.stdout.contains("No errors"), "\(c.name): \(r.stdout)")
                r = try Daemon.run(qemuImg, ["info", "-U", "--output=json", info.path])
                #expect(!r.stdout.contains("backing-filename"), "\(c.name) stands alone: \(r.stdout)")
            }
            // Thin: what was written is the source's data (8 MiB for the chain: 2 MiB more), metadata aside.
            let data = rawData + (c.file == "top.qcow2" ? UInt64(2 * Self.mib) : 0)
            let written = try Self.allocated(info.path)
            if c.name == "raw-thick" {
                #expect(written >= UInt64(64 * Self.mib), "thick: every block allocated: \(written)")
            } else {
                #expect(written <= data + data / 20 + (asQCOW2 ? 512 << 10 : 0), "\(c.name): \(written) for \(data)")
            }
        }
        r = try importing(daemon, "odd", dir + "/odd.raw")
        #expect(r.status == 0, "\(r.stderr)")
        let odd = try await daemon.client.volume(VolumeRef(pool: "default", name: "odd"))
        #expect(odd.sizeBytes == UInt64(3 * Self.mib + 1024), "rounded up to a block: \(odd.sizeBytes)")
        let source = try #require(FileManager.default.contents(atPath: dir + "/odd.raw"))
        let volume = try #require(FileManager.default.contents(atPath: odd.path))
        let same = volume.prefix(source.count) == source && volume.dropFirst(source.count).allSatisfy { $0 == 0 }
        #expect(same, "the padded volume holds the file, then zeros")

        // Streamed through a pipe (the CLI's standard input), and as curl's request body.
        r = try Daemon.run(
            "/bin/sh",
            [
                "-c", "cat \"$1\" | \"$0\" volume import default/piped --from - --as qcow2 --wait",
                try Binaries.path("depot"),
                dir + "/v3.qcow2",
            ], env: ["DEPOT_API": daemon.url, "DEPOT_TOKEN": daemon.token])
        #expect(r.status == 0 && r.stdout.contains("imported"), "\(r.stdout) \(r.stderr)")
        let piped = try await daemon.client.volume(VolumeRef(pool: "default", name: "piped"))
        r = try Daemon.run(qemuImg, ["compare", "-U", "-f", "qcow2", "-F", "qcow2", dir + "/v3.qcow2", piped.path])
        #expect(r.status == 0, "piped: \(r.stdout) \(r.stderr)")
        #expect(try Self.allocated(piped.path) <= rawData + rawData / 20 + (512 << 10), "the piped import stays thin")
        r = try Daemon.run(
            "/usr/bin/curl",
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", dir + "/disk.raw", "-H",
                "authorization: Bearer \(daemon.token)",
                "\(daemon.url)/v1/pools/default/volumes/curled/content?format=raw",
            ])
        #expect(r.stdout == "202", "PUT content: \(r.stdout) \(r.stderr)")
        var curled = try await daemon.client.volume(VolumeRef(pool: "default", name: "curled"))
        for _ in 0..<100 where curled.state != .ready {
            try await Task.sleep(for: .milliseconds(100))
            curled = try await daemon.client.volume(VolumeRef(pool: "default", name: "curled"))
        }
        r = try Daemon.run(qemuImg, ["compare", "-U", "-f", "raw", "-F", "raw", dir + "/disk.raw", curled.path])
        #expect(r.status == 0, "curled: \(r.stdout) \(r.stderr)")
        #expect(try Self.allocated(curled.path) <= rawData + rawData / 20, "zeros sent are not written")
        let spools = try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/default")
            .filter { $0.hasPrefix(".upload-") }
        #expect(spools.isEmpty, "the spools are removed: \(spools)")

        // Through a LUN: QEMU's iSCSI driver reads the imported chain as the image.
        let iqn = "iqn.2026-12.dev.depot:import"
        #expect(try daemon.depot(["target", "create", iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", iqn, "default/chain-as-qcow2"]).status == 0)
        r = try Daemon.run(
            qemuImg, ["compare", "-f", "qcow2", "-F", "raw", dir + "/top.qcow2", "iscsi://\(daemon.portal)/\(iqn)/0"])
        #expect(r.status == 0, "through the LUN: \(r.stdout) \(r.stderr)")
        let jobs = try await daemon.client.jobs().filter { $0.kind == "import" }
        #expect(jobs.count == cases.count + 3 && jobs.allSatisfy { $0.state == .succeeded }, "\(jobs)")
    }

    @Test func badImportsAreRefusedAndLeaveNothing() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        let dir = daemon.data + "/images"
        let outside = (daemon.data as NSString).deletingLastPathComponent + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Self.sparseRaw(dir + "/disk.raw", size: 8 * Self.mib, data: [0..<4])
        try Self.sparseRaw(outside + "/secret.raw", size: Self.mib, data: [0..<1])
        var r = try Daemon.run(
            qemuImg, ["convert", "-f", "raw", "-O", "qcow2", dir + "/disk.raw", dir + "/good.qcow2"])
        #expect(r.status == 0)
        // Truncated: its L1 and refcount tables and data gone.
        try FileManager.default.copyItem(atPath: dir + "/good.qcow2", toPath: dir + "/cut.qcow2")
        try #require(FileHandle(forWritingAtPath: dir + "/cut.qcow2")).truncate(atOffset: 100_000)
        // A backing file outside the image directories, named absolutely and through "..".
        r = try Daemon.run(
            qemuImg, ["create", "-f", "qcow2", "-b", outside + "/secret.raw", "-F", "raw", dir + "/steal.qcow2"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Daemon.run(
            qemuImg,
            ["create", "-f", "qcow2", "-b", "../../outside/secret.raw", "-F", "raw", "-u", dir + "/steal2.qcow2", "1M"])
        #expect(r.status == 0, "\(r.stderr)")
        // A loop: a on b, then b rebased (unsafely) on a.
        r = try Daemon.run(qemuImg, ["create", "-f", "qcow2", dir + "/b.qcow2", "1M"])
        r = try Daemon.run(qemuImg, ["create", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", dir + "/a.qcow2"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Daemon.run(qemuImg, ["rebase", "-u", "-b", "a.qcow2", "-F", "qcow2", dir + "/b.qcow2"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Daemon.run(qemuImg, ["create", "-f", "vmdk", dir + "/d.vmdk", "1M"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Daemon.run(qemuImg, ["create", "-f", "vhdx", dir + "/d.vhdx", "1M"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Daemon.run(qemuImg, ["create", "-f", "vpc", "-o", "subformat=fixed", dir + "/d.vhd", "1M"])
        #expect(r.status == 0, "\(r.stderr)")
        FileManager.default.createFile(atPath: dir + "/empty.raw", contents: nil)
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: dir + "/link.raw", withDestinationPath: outside + "/secret.raw")

        let refused: [(args: [String], says: String)] = [
            (["--from", outside + "/secret.raw"], "outside the directories images are imported from and exported to"),
            (["--from", dir + "/link.raw"], "outside the directories images are imported from and exported to"),
            (["--from", dir + "/missing.raw"], "No such file"),
            (["--from", dir + "/sub"], "not a regular file"),
            (["--from", dir + "/empty.raw"], "is empty"),
            (["--from", dir + "/good.qcow2", "--format", "raw"], "is a qcow2 image by its content, not raw"),
            (["--from", dir + "/disk.raw", "--format", "qcow2"], "is a raw image by its content, not qcow2"),
            (["--from", dir + "/cut.qcow2"], "does not lie inside the file"),
            (["--from", dir + "/steal.qcow2"], "outside the directories images are imported from and exported to"),
            (["--from", dir + "/steal2.qcow2"], "outside the directories images are imported from and exported to"),
            (["--from", dir + "/a.qcow2"], "loops"),
            (["--from", dir + "/d.vmdk"], "is a vmdk image; importing vmdk is not supported yet"),
            (["--from", dir + "/d.vhdx"], "is a vhdx image"),
            (["--from", dir + "/d.vhd"], "is a vhd image"),
            (["--from", dir + "/disk.raw", "--as", "qcow2", "--provisioning", "thick"], "thick qcow2 import"),
            (["--from", "relative.raw"], "absolute path"),
            (["--from", "http://example.com/d.qcow2"], "URLs are not supported yet"),
        ]
        for (i, c) in refused.enumerated() {
            r = try daemon.depot(["volume", "import", "default/bad\(i)"] + c.args)
            #expect(r.status != 0 && r.stderr.contains(c.says), "\(c.args): \(r.status) \(r.stderr)")
        }
        // Streamed: refused after the upload when the image is bad, before it when the name is taken.
        for (name, file, says) in [
            ("cutpipe", "cut.qcow2", "does not lie inside the file"), ("top", "steal2.qcow2", "cannot be read"),
        ] {
            r = try Self.depot(daemon, "volume import default/\(name) --from -", stdin: dir + "/" + file)
            #expect(r.status != 0 && r.stderr.contains(says), "\(file) streamed: \(r.stderr)")
        }
        // A stream larger than the pool has room for stops there, leaving nothing.
        let small = (daemon.data as NSString).deletingLastPathComponent + "/small"
        r = try daemon.depot(["pool", "create", "small", "--path", small, "--capacity", "8M"])
        #expect(r.status == 0, "\(r.stderr)")
        try Self.sparseRaw(outside + "/big.raw", size: 16 * Self.mib, data: [0..<16])
        r = try Self.depot(daemon, "volume import small/big --from -", stdin: outside + "/big.raw")
        #expect(r.status != 0 && r.stderr.contains("more than pool 'small' has free"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: small).isEmpty, "no spool left in the small pool")
        // Through the API: the status the error names.
        let answers: [(pool: String, body: String, status: String)] = [
            ("default", "{\"from\": \"\(outside)/secret.raw\"}", "422"),  // outside the roots
            ("default", "{\"from\": \"\(dir)/disk.raw\", \"fromm\": 1}", "400"),  // an unknown key
            ("nope", "{\"from\": \"\(dir)/disk.raw\"}", "404"),  // an unknown pool
        ]
        for a in answers {
            let status = try Daemon.run(
                "/usr/bin/curl",
                [
                    "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H",
                    "authorization: Bearer \(daemon.token)", "-H", "content-type: application/json", "-d", a.body,
                    "\(daemon.url)/v1/pools/\(a.pool)/volumes/x/import",
                ])
            #expect(status.stdout == a.status, "\(a.body) to pool \(a.pool): \(status.stdout)")
        }

        // A name taken is refused; a good import still works beside all this.
        r = try importing(daemon, "good", dir + "/good.qcow2")
        #expect(r.status == 0, "\(r.stderr)")
        r = try importing(daemon, "good", dir + "/disk.raw")
        #expect(r.status != 0 && r.stderr.contains("already exists"), "\(r.stderr)")
        let volumes = try await daemon.client.volumes(pool: "default").map(\.name)
        #expect(volumes == ["good"], "nothing else was made: \(volumes)")
        r = try Self.depot(daemon, "volume import default/good --from -", stdin: dir + "/disk.raw")
        #expect(r.status != 0 && r.stderr.contains("already exists"), "a taken name, streamed: \(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/default")
        #expect(files == ["good.img"], "no file (no spool) was left behind: \(files)")
    }

    @Test func anImportCutByKill9IsRolledBack() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let dir = daemon.data + "/images"
        try Self.sparseRaw(dir + "/big.raw", size: 32 * Self.mib, data: [0..<32])
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        var r = try Daemon.run(qemuImg, ["convert", "-f", "raw", "-O", "qcow2", dir + "/big.raw", dir + "/big.qcow2"])
        #expect(r.status == 0)
        // 1 MiB/s: 32 MiB take about 30 s; cut after 2.
        r = try daemon.depot([
            "volume", "import", "default/cut", "--from", dir + "/big.qcow2", "--as", "qcow2", "--rate", "1",
        ])
        #expect(r.status == 0 && r.stdout.contains("is being imported"), "\(r.stdout) \(r.stderr)")
        r = try daemon.depot(["volume", "import", "default/cut2", "--from", dir + "/big.raw", "--rate", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        try await Task.sleep(for: .seconds(2))
        let running = try await daemon.client.jobs()
        #expect(running.count == 2 && running.allSatisfy { $0.state == .running }, "\(running)")
        daemon.kill9()
        try await daemon.start()
        var jobs: [JobInfo] = []
        for _ in 0..<50 {
            jobs = try await daemon.client.jobs()
            if jobs.allSatisfy({ $0.state != .running }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(
            jobs.count == 2
                && jobs.allSatisfy { $0.state == .failed && ($0.error ?? "").contains("start the import again") },
            "\(jobs)")
        let volumes = try await daemon.client.volumes(pool: "default").map(\.name)
        #expect(volumes.isEmpty, "the half-made volumes are gone: \(volumes)")
        let files = try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/default")
        #expect(files.isEmpty, "and their files: \(files)")
        // Cancel leaves nothing either.
        r = try daemon.depot(["volume", "import", "default/again", "--from", dir + "/big.raw", "--rate", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let job = try #require(try await daemon.client.jobs().first { $0.state == .running })
        r = try daemon.depot(["job", "cancel", job.id])
        #expect(r.status == 0, "\(r.stderr)")
        for _ in 0..<50 {
            if try await daemon.client.volumes(pool: "default").isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await daemon.client.volumes(pool: "default").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/default").isEmpty)
    }
}
