import DepotCLI
import DepotCore
import Foundation
import NIOConcurrencyHelpers
import Testing

/// Snapshots, rollback, linked and full clones, flatten and merge over real
/// iSCSI, with qemu-img as the oracle: after each step every file Depot
/// wrote passes `qemu-img check`, `qemu-img info --backing-chain` shows the
/// chain Depot reports, and `qemu-img compare` of each layer against the
/// data written is identical.
@Suite(.serialized) struct SnapshotTests {
    static let iqn = "iqn.2026-12.dev.depot:snapshots"
    static let mib = 1 << 20

    /// A new volume `default/NAME` served as LUN 0 of `iqn` (made here);
    /// returns the LUN's URL.
    static func serve(_ daemon: Daemon, _ name: String, size: String, qcow2: Bool = false) throws -> String {
        let create = ["volume", "create", "default/\(name)", "--size", size] + (qcow2 ? ["--format", "qcow2"] : [])
        #expect(try daemon.depot(create).status == 0)
        #expect(try daemon.depot(["target", "create", iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", iqn, "default/\(name)"]).status == 0)
        return "iscsi://\(daemon.portal)/\(iqn)/0"
    }

    /// Random data into `range` (MiB) of the expected image, written to that
    /// range of the LUN only, by QEMU's block layer (qemu-io), then flushed
    /// (SYNCHRONIZE CACHE).
    static func write(_ expected: inout Data, mib range: Range<Int>, url: String, work: String) throws {
        let piece = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: range.count * mib)
        expected.replaceSubrange((range.lowerBound * mib)..<(range.upperBound * mib), with: piece)
        try piece.write(to: URL(fileURLWithPath: work + "/piece.raw"))
        let r = try Daemon.run(
            try NFSGaneshaTests.tool("qemu-io"),
            [
                "-f", "raw", "-c", "write -s \(work)/piece.raw \(range.lowerBound * mib) \(range.count * mib)", "-c",
                "flush", url,
            ])
        #expect(r.status == 0 && r.stdout.contains("wrote"), "qemu-io into \(url): \(r.stdout) \(r.stderr)")
    }

    /// Whether the LUN at `url` reads exactly `expected` (one Bool: never a diff of megabytes).
    static func reads(_ url: String, _ expected: Data, work: String) throws -> Bool {
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        try? FileManager.default.removeItem(atPath: work + "/read.raw")
        let r = try Daemon.run(qemuImg, ["convert", "-f", "raw", "-O", "raw", url, work + "/read.raw"])
        guard r.status == 0 else { return false }
        return FileManager.default.contents(atPath: work + "/read.raw") == expected
    }

    /// The daemon's jobs once none is running any more (at most 60 s).
    static func finishedJobs(_ daemon: Daemon) async throws -> [JobInfo] {
        let deadline = ContinuousClock.now + .seconds(60)
        var jobs = try await daemon.client.jobs()
        while ContinuousClock.now < deadline, jobs.contains(where: { !$0.state.isFinished }) {
            try await Task.sleep(for: .milliseconds(200))
            jobs = try await daemon.client.jobs()
        }
        return jobs
    }

    /// qemu-img check (exit 0) of a qcow2 file, compare of any file against `expected`.
    static func oracle(_ path: String, format: String, matches expected: Data, work: String) throws {
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        if format == "qcow2" {
            let r = try Daemon.run(qemuImg, ["check", "-U", path])
            #expect(r.status == 0 && r.stdout.contains("No errors"), "qemu-img check \(path): \(r.stdout) \(r.stderr)")
        }
        try expected.write(to: URL(fileURLWithPath: work + "/expected.raw"))
        let r = try Daemon.run(qemuImg, ["compare", "-U", "-f", format, "-F", "raw", path, work + "/expected.raw"])
        #expect(r.status == 0, "qemu-img compare \(path): \(r.stdout) \(r.stderr)")
    }

    /// The files of `path`'s chain as qemu-img reads them, top first.
    static func chain(_ path: String) throws -> [String] {
        let r = try Daemon.run(try NFSGaneshaTests.tool("qemu-img"), ["info", "-U", "--backing-chain", path])
        return r.stdout.split(separator: "\n").filter { $0.hasPrefix("image: ") }.map { String($0.dropFirst(7)) }
    }

    @Test func snapshotsRollbackClonesFlattenAndMergeAgreeWithQemuImg() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let work = (daemon.data as NSString).deletingLastPathComponent
        let client = daemon.client
        let vm = VolumeRef(pool: "default", name: "vm")
        let url = try Self.serve(daemon, "vm", size: "32M")
        var data = Data(count: 32 * Self.mib)
        try Self.write(&data, mib: 0..<12, url: url, work: work)
        let first = data

        // A snapshot of the raw volume on a LUN in use: its file becomes the snapshot.
        var r = try daemon.depot(["snapshot", "create", "default/vm@s1"])
        #expect(r.status == 0, "\(r.stderr)")
        try Self.write(&data, mib: 4..<8, url: url, work: work)
        let second = data
        #expect(try daemon.depot(["snapshot", "create", "default/vm@s2"]).status == 0)
        try Self.write(&data, mib: 10..<20, url: url, work: work)
        #expect(try Self.reads(url, data, work: work), "the LUN reads its newest data through the chain")

        let s1 = try await client.snapshot(SnapshotRef(volume: vm, name: "s1"))
        let s2 = try await client.snapshot(SnapshotRef(volume: vm, name: "s2"))
        var info = try await client.volume(vm)
        #expect(info.format == .qcow2 && info.base == "default/vm@s2" && info.snapshotCount == 2)
        #expect(s2.parent == "default/vm@s1" && s1.parent == nil && s1.format == .raw && s2.format == .qcow2)
        #expect(s1.dependents == ["default/vm@s2"] && s2.dependents == ["default/vm"])
        // The chain qemu-img reads is the one Depot reports.
        let layers = try Self.chain(info.path)
        #expect(layers == [info.path, s2.path, s1.path], "\(layers)")
        try Self.oracle(s1.path, format: "raw", matches: first, work: work)
        try Self.oracle(s2.path, format: "qcow2", matches: second, work: work)
        try Self.oracle(info.path, format: "qcow2", matches: data, work: work)
        // Space: s2 holds 4..<8 and the active layer rewrote none of it, so merging s2 frees nothing;
        // s1 holds 0..<12, of which s2 rewrote 4..<8.
        #expect(s2.uniqueBytes == 0 && s1.uniqueBytes == UInt64(4 * Self.mib), "\(s2.uniqueBytes) \(s1.uniqueBytes)")
        #expect((info.snapshotBytes ?? 0) >= UInt64(16 * Self.mib), "\(String(describing: info.snapshotBytes))")

        // Bad input: unknown 404, duplicate 409, cross-pool linked clone 422.
        r = try daemon.depot(["snapshot", "show", "default/vm@nope"])
        #expect(r.status != 0 && r.stderr.contains("not found"), "\(r.stderr)")
        r = try daemon.depot(["snapshot", "create", "default/vm@s1"])
        #expect(r.status != 0 && r.stderr.contains("already exists"), "\(r.stderr)")
        #expect(try daemon.depot(["pool", "create", "other", "--path", work + "/other"]).status == 0)
        r = try daemon.depot(["volume", "clone", "default/vm@s1", "other/c"])
        #expect(r.status != 0 && r.stderr.contains("full clone"), "\(r.stderr)")

        // A linked clone of s1: a new volume with its own identity, reading s1's data.
        r = try daemon.depot(["volume", "clone", "default/vm@s1", "default/c1"])
        #expect(r.status == 0, "\(r.stderr)")
        let c1 = try await client.volume(VolumeRef(pool: "default", name: "c1"))
        #expect(c1.uuid != info.uuid && c1.base == "default/vm@s1" && c1.format == .qcow2)
        #expect(try daemon.depot(["target", "lun", "map", Self.iqn, "default/c1", "--lun", "1"]).status == 0)
        let cloneURL = "iscsi://\(daemon.portal)/\(Self.iqn)/1"
        #expect(try Self.reads(cloneURL, first, work: work), "the linked clone reads the snapshot")
        let serials = try [url, cloneURL].map { u in
            try Daemon.run(try NFSGaneshaTests.tool("iscsi-inq"), ["-e", "1", "-c", "128", u]).stdout
        }
        #expect(serials[0] != serials[1] && serials.allSatisfy { $0.lowercased().contains("serial") }, "\(serials)")

        // Rollback: refused while mapped, then forced; s2 (newer) stays.
        r = try daemon.depot(["volume", "rollback", "default/vm@s1"])
        #expect(r.status != 0 && r.stderr.contains("mapped") && r.stderr.contains("force"), "\(r.stderr)")
        let session = try LibISCSIClient(initiator: "iqn.2026-12.dev.depot:rollback-watcher")
        #expect(session.login(portal: daemon.portal, target: Self.iqn))
        _ = session.probe()  // the login's POWER ON unit attention
        r = try daemon.depot(["volume", "rollback", "default/vm@s1", "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        let attention = session.probe()
        #expect(
            attention?.key == 6 && attention?.ascq == 0x2800,
            "MEDIUM MAY HAVE CHANGED: \(String(describing: attention))")
        session.logout()
        #expect(try Self.reads(url, first, work: work), "after rollback the volume reads s1")
        info = try await client.volume(vm)
        #expect(info.base == "default/vm@s1")
        #expect(try await client.snapshots(volume: vm).map(\.name) == ["s1", "s2"])
        try Self.oracle(info.path, format: "qcow2", matches: first, work: work)
        try Self.oracle(s2.path, format: "qcow2", matches: second, work: work)

        // s2 now has nothing built on it: deleted at once. s1 is a linked clone's base: refused.
        r = try daemon.depot(["snapshot", "delete", "default/vm@s2"])
        #expect(r.status == 0 && r.stdout.contains("deleted"), "\(r.stdout) \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s2.path))
        r = try daemon.depot(["snapshot", "delete", "default/vm@s1"])
        #expect(r.status != 0 && r.stderr.contains("default/c1"), "\(r.stderr)")

        // Flatten the clone (live, on its LUN): it stands alone, same data.
        var cloneData = first
        try Self.write(&cloneData, mib: 30..<32, url: cloneURL, work: work)
        r = try daemon.depot(["volume", "flatten", "default/c1", "--wait"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.chain(c1.path) == [c1.path])
        #expect(try await client.volume(VolumeRef(pool: "default", name: "c1")).base == nil)
        #expect(try Self.reads(cloneURL, cloneData, work: work))
        try Self.oracle(c1.path, format: "qcow2", matches: cloneData, work: work)

        // Now s1 merges into the volume (its only dependent), online. The active
        // layer holds 2 MiB of its own, s1 more: the merge commits down, and the
        // volume's file is s1's (raw) with the active layer's data in it.
        try Self.write(&data, mib: 0..<2, url: url, work: work)
        var expectedVM = first
        expectedVM.replaceSubrange(0..<(2 * Self.mib), with: data.prefix(2 * Self.mib))
        r = try daemon.depot(["snapshot", "delete", "default/vm@s1", "--wait"])
        #expect(r.status == 0 && r.stdout.contains("merged"), "\(r.stdout) \(r.stderr)")
        info = try await client.volume(vm)
        #expect(info.base == nil && info.snapshotCount == 0)
        #expect(info.format == .raw && info.path.hasSuffix("/vm.img"), "committed down: \(info.path)")
        #expect(try Self.chain(info.path) == [info.path])
        #expect(!FileManager.default.fileExists(atPath: s1.path))
        #expect(!FileManager.default.fileExists(atPath: daemon.data + "/pools/default/vm.qcow2"))
        #expect(try Self.reads(url, expectedVM, work: work), "the merge changed nothing the LUN reads")
        try Self.oracle(info.path, format: "raw", matches: expectedVM, work: work)
        let jobs = try await client.jobs()
        #expect(jobs.map(\.kind) == ["flatten", "merge"] && jobs.allSatisfy { $0.state == .succeeded }, "\(jobs)")

        // A full clone into another pool: an independent raw copy, only the data written.
        #expect(try daemon.depot(["snapshot", "create", "default/vm@s3"]).status == 0)
        r = try daemon.depot(["volume", "clone", "default/vm@s3", "other/copy", "--full", "--wait"])
        #expect(r.status == 0, "\(r.stderr)")
        let copy = try await client.volume(VolumeRef(pool: "other", name: "copy"))
        #expect(copy.state == .ready && copy.base == nil && copy.uuid != info.uuid)
        try Self.oracle(copy.path, format: copy.format.rawValue, matches: expectedVM, work: work)

        // Delete with snapshots: force deletes them with it.
        #expect(try daemon.depot(["target", "lun", "unmap", Self.iqn, "--lun", "0"]).status == 0)
        r = try daemon.depot(["volume", "delete", "default/vm"])
        #expect(r.status != 0 && r.stderr.contains("snapshot") && r.stderr.contains("s3"), "\(r.stderr)")
        r = try daemon.depot(["volume", "delete", "default/vm", "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/default")
        #expect(left == ["c1.qcow2"], "\(left)")
        #expect(try await client.snapshots(volume: nil).isEmpty)
    }

    /// A snapshot taken while an initiator writes is point in time: the writer
    /// (one write at a time, block i holding i) sees no error, and the
    /// snapshot holds exactly the first k writes for some k — every write
    /// acknowledged before the snapshot was asked for, none begun after it
    /// returned.
    /// A volume with a snapshot (its active layer a qcow2 overlay) grows on
    /// a LUN in use: the logged-in session gets CAPACITY DATA HAS CHANGED
    /// and READ CAPACITY the new size; the new range reads zeros (past the
    /// snapshot's end, qcow2.rst) and takes writes; the snapshot keeps its
    /// size; qemu-img finds both files clean and equal to what was written.
    /// A shrink is refused, and a merge of the smaller snapshot streams up.
    @Test func aVolumeWithASnapshotGrowsUnderALoggedInSession() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let work = (daemon.data as NSString).deletingLastPathComponent
        let url = try Self.serve(daemon, "g", size: "8M")
        var data = Data(count: 8 * Self.mib)
        try Self.write(&data, mib: 0..<8, url: url, work: work)
        let before = data
        #expect(try daemon.depot(["snapshot", "create", "default/g@s1"]).status == 0)
        let session = try LibISCSIClient(initiator: "iqn.2026-12.dev.depot:grower")
        #expect(session.login(portal: daemon.portal, target: Self.iqn), "\(session.lastError)")
        #expect(session.probe()?.status == 0)

        var r = try daemon.depot(["volume", "resize", "default/g", "--size", "24M"])
        #expect(r.status == 0, "\(r.stderr)")
        let probe = session.probe()
        #expect(probe?.status == 2 && probe?.key == 6 && probe?.ascq == 0x2A09, "\(String(describing: probe))")
        let capacity = session.command(
            [0x9E, 0x10] + [UInt8](repeating: 0, count: 8) + [0, 0, 0, 32, 0, 0], dataIn: 32)
        let lastLBA = capacity?.data.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(
            capacity?.good == true && lastLBA == UInt64(24 * Self.mib / 512 - 1),
            "READ CAPACITY(16): \(String(describing: lastLBA))")
        #expect(session.read(lba: UInt32(12 * Self.mib / 512), length: 4096) == [UInt8](repeating: 0, count: 4096))
        session.logout()
        data.append(Data(count: 16 * Self.mib))
        try Self.write(&data, mib: 16..<24, url: url, work: work)
        #expect(try Self.reads(url, data, work: work), "the grown LUN reads the old data, zeros, the new data")
        let info = try await daemon.client.volume(VolumeRef(pool: "default", name: "g"))
        #expect(info.sizeBytes == UInt64(24 * Self.mib))
        let s1 = try await daemon.client.snapshot(
            SnapshotRef(volume: VolumeRef(pool: "default", name: "g"), name: "s1"))
        #expect(s1.sizeBytes == UInt64(8 * Self.mib), "the snapshot keeps its size")
        try Self.oracle(info.path, format: "qcow2", matches: data, work: work)
        try Self.oracle(s1.path, format: "raw", matches: before, work: work)

        r = try daemon.depot(["volume", "resize", "default/g", "--size", "16M", "--force"])
        #expect(r.status != 0 && r.stderr.contains("can grow, not shrink"), "\(r.stderr)")
        r = try daemon.depot(["snapshot", "delete", "default/g@s1", "--wait"])
        #expect(r.status == 0 && r.stdout.contains("merged"), "\(r.stdout) \(r.stderr)")
        #expect(try Self.reads(url, data, work: work), "the merge changed nothing the LUN reads")
        let merged = try await daemon.client.volume(VolumeRef(pool: "default", name: "g"))
        try Self.oracle(merged.path, format: "qcow2", matches: data, work: work)

        // A qcow2 volume no LUN serves grows in its file alone.
        #expect(try daemon.depot(["volume", "create", "default/q", "--size", "4M", "--format", "qcow2"]).status == 0)
        #expect(try daemon.depot(["volume", "resize", "default/q", "--size", "+4M"]).status == 0)
        let q = try await daemon.client.volume(VolumeRef(pool: "default", name: "q"))
        #expect(q.sizeBytes == UInt64(8 * Self.mib))
        try Self.oracle(q.path, format: "qcow2", matches: Data(count: 8 * Self.mib), work: work)
    }

    @Test func aSnapshotUnderWritesIsPointInTime() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        _ = try Self.serve(daemon, "busy", size: "16M")
        let writer = try LibISCSIClient(initiator: "iqn.2026-12.dev.depot:writer")
        #expect(writer.login(portal: daemon.portal, target: Self.iqn))
        _ = writer.probe()
        let count = 3000  // 4 KiB each, 12 MiB
        struct Log: Sendable {
            var started: [ContinuousClock.Instant] = []
            var acked: [ContinuousClock.Instant] = []
            var failures = 0
        }
        let log = NIOLockedValueBox(Log())
        nonisolated(unsafe) let unsafeWriter = writer
        let done = NIOLockedValueBox(false)
        let thread = Thread {
            for i in 0..<count {
                var block = [UInt8](repeating: 0, count: 4096)
                withUnsafeBytes(of: UInt32(i + 1).bigEndian) { block.replaceSubrange(0..<4, with: $0) }
                let start = ContinuousClock.now
                log.withLockedValue { $0.started.append(start) }
                let ok = unsafeWriter.write(lba: UInt32(i * 8), block)
                let end = ContinuousClock.now
                log.withLockedValue {
                    $0.acked.append(end)
                    if !ok { $0.failures += 1 }
                }
            }
            done.withLockedValue { $0 = true }
        }
        thread.start()
        while log.withLockedValue({ $0.acked.count }) < count / 3 { try await Task.sleep(for: .milliseconds(5)) }
        let asked = ContinuousClock.now
        let snapshot = try await daemon.client.createSnapshot(
            SnapshotRef(volume: VolumeRef(pool: "default", name: "busy"), name: "pit"))
        let returned = ContinuousClock.now
        while !done.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
        writer.logout()
        let final = log.withLockedValue { $0 }
        #expect(final.failures == 0, "the switch is invisible to the initiator")

        // The snapshot's layer is the raw file as it was: read each block's counter.
        let bytes = try #require(FileManager.default.contents(atPath: snapshot.path))
        let held = (0..<count).map { i -> Bool in
            let at = i * 4096
            let value = bytes[at..<(at + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            return value == UInt32(i + 1)
        }
        let k = held.firstIndex(of: false) ?? count
        #expect(!held[k...].contains(true), "a prefix of the writes, not a mix (first missing \(k))")
        let ackedBefore = final.acked.filter { $0 < asked }.count
        let startedAfter = final.started.firstIndex { $0 > returned } ?? count
        #expect(k >= ackedBefore, "every write acknowledged before the snapshot was asked for: \(k) ≥ \(ackedBefore)")
        #expect(k <= startedAfter, "none begun after it returned: \(k) ≤ \(startedAfter)")
        // The volume itself has every write.
        let check = try LibISCSIClient(initiator: "iqn.2026-12.dev.depot:checker")
        #expect(check.login(portal: daemon.portal, target: Self.iqn))
        _ = check.probe()
        var missing = 0
        for i in stride(from: 0, to: count, by: 97) {
            let block = check.read(lba: UInt32(i * 8), length: 4096) ?? []
            if block.prefix(4).reduce(UInt32(0), { $0 << 8 | UInt32($1) }) != UInt32(i + 1) { missing += 1 }
        }
        check.logout()
        #expect(missing == 0)
    }

    /// kill -9 in the middle of a merge and of a full clone (both throttled so
    /// they are surely running): after the restart the merge resumes and
    /// finishes, the half-made clone is gone and its job says so, every
    /// qcow2 file passes qemu-img check, and the volume reads its data.
    @Test func jobsCutByKill9ResumeOrRollBack() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start(extra: ["--job-rate", "2"])
        let work = (daemon.data as NSString).deletingLastPathComponent
        let vm = VolumeRef(pool: "default", name: "vm")
        let url = try Self.serve(daemon, "vm", size: "32M", qcow2: true)
        var data = Data(count: 32 * Self.mib)
        try Self.write(&data, mib: 0..<16, url: url, work: work)
        #expect(try daemon.depot(["snapshot", "create", "default/vm@a"]).status == 0)
        try Self.write(&data, mib: 14..<18, url: url, work: work)
        #expect(try daemon.depot(["snapshot", "create", "default/vm@b"]).status == 0)
        let atB = data
        try Self.write(&data, mib: 20..<22, url: url, work: work)

        // At 2 MiB/s: a full clone of b (its chain's 18 MiB, ~9 s) and the merge of a into b (14 MiB up).
        var r = try daemon.depot(["volume", "clone", "default/vm@b", "default/copy", "--full", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try daemon.depot(["snapshot", "delete", "default/vm@a", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        try await Task.sleep(for: .seconds(2))
        let running = try await daemon.client.jobs()
        #expect(running.count == 2 && running.allSatisfy { $0.state == .running }, "\(running)")
        daemon.kill9()
        let qemuImg = try NFSGaneshaTests.tool("qemu-img")
        for file in try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/default")
        where file.hasSuffix(".qcow2") {
            r = try Daemon.run(qemuImg, ["check", daemon.data + "/pools/default/" + file])
            #expect(
                (r.status == 0 || r.status == 3) && !r.stdout.contains("ERROR"), "after kill -9 \(file): \(r.stdout)")
        }

        try await daemon.start()
        let jobs = try await Self.finishedJobs(daemon)
        let merge = try #require(jobs.first { $0.kind == "merge" })
        let clone = try #require(jobs.first { $0.kind == "full-clone" })
        #expect(merge.state == .succeeded, "\(merge)")
        #expect(clone.state == .failed && (clone.error ?? "").contains("restart"), "\(clone)")
        let volumes = try await daemon.client.volumes(pool: "default").map(\.name)
        #expect(volumes == ["vm"], "the half-made clone is gone: \(volumes)")
        let info = try await daemon.client.volume(vm)
        #expect(info.base == "default/vm@b" && info.snapshotCount == 1)
        let b = try await daemon.client.snapshot(SnapshotRef(volume: vm, name: "b"))
        #expect(b.parent == nil)
        #expect(try Self.chain(info.path) == [info.path, b.path])
        let restarted = "iscsi://\(daemon.portal)/\(Self.iqn)/0"
        #expect(try Self.reads(restarted, data, work: work))
        try Self.oracle(info.path, format: "qcow2", matches: data, work: work)
        try Self.oracle(b.path, format: "qcow2", matches: atB, work: work)
        let left = try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/default").sorted()
        #expect(left == [(b.path as NSString).lastPathComponent, "vm.qcow2"], "\(left)")
    }

    /// kill -9 in the middle of a merge that commits down (throttled so it is
    /// surely running): the volume reads its data after the restart, the
    /// commit runs again and finishes, and the volume's file is the
    /// snapshot's (raw), holding every byte.
    @Test func aCommitDownCutByKill9FinishesAfterTheRestart() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start(extra: ["--job-rate", "2"])
        let work = (daemon.data as NSString).deletingLastPathComponent
        let vm = VolumeRef(pool: "default", name: "vm")
        let url = try Self.serve(daemon, "vm", size: "32M")
        var data = Data(count: 32 * Self.mib)
        try Self.write(&data, mib: 0..<20, url: url, work: work)
        #expect(try daemon.depot(["snapshot", "create", "default/vm@s"]).status == 0)
        // 6 MiB of the active layer's own (3 s at 2 MiB/s) against 14 MiB to stream up: down.
        try Self.write(&data, mib: 4..<10, url: url, work: work)
        let r = try daemon.depot(["snapshot", "delete", "default/vm@s"])
        #expect(r.status == 0, "\(r.stderr)")
        try await Task.sleep(for: .milliseconds(1500))
        let state = try await daemon.client.snapshot(SnapshotRef(volume: vm, name: "s")).state
        #expect(state == "committing", "\(state)")
        let running = try await daemon.client.jobs()
        #expect(running.count == 1 && running[0].state == .running, "\(running)")
        daemon.kill9()

        try await daemon.start()
        let jobs = try await Self.finishedJobs(daemon)
        #expect(jobs.count == 1 && jobs[0].state == .succeeded, "\(jobs)")
        let info = try await daemon.client.volume(vm)
        #expect(info.format == .raw && info.base == nil && info.snapshotCount == 0, "\(info)")
        let restarted = "iscsi://\(daemon.portal)/\(Self.iqn)/0"
        #expect(try Self.reads(restarted, data, work: work))
        try Self.oracle(info.path, format: "raw", matches: data, work: work)
        let left = try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/default").sorted()
        #expect(left == ["vm.img"], "\(left)")
    }

    /// kill -9 while snapshots are being taken one after another on a LUN
    /// being written: after the restart catalog and files agree (reconcile
    /// finishes or rolls back the snapshot cut; no unknown or missing file),
    /// every qcow2 file passes qemu-img check, the chain qemu-img reads is
    /// the one Depot reports, and the volume reads every flushed write.
    @Test func kill9DuringSnapshotsLeavesCatalogAndFilesInStep() async throws {
        for attempt in 0..<3 {
            let daemon = Daemon(data: try Daemon.makeDataDirectory())
            defer { daemon.cleanup() }
            try await daemon.start()
            let work = (daemon.data as NSString).deletingLastPathComponent
            let vm = VolumeRef(pool: "default", name: "vm")
            let url = try Self.serve(daemon, "vm", size: "16M")
            var data = Data(count: 16 * Self.mib)
            try Self.write(&data, mib: 0..<8, url: url, work: work)
            // 40 snapshots back to back from a shell loop; killed part way.
            let loop = Process()
            loop.executableURL = URL(fileURLWithPath: "/bin/sh")
            loop.arguments = [
                "-c", "for i in $(seq 40); do \"$0\" snapshot create default/vm@k$i >/dev/null 2>&1; done",
                try Binaries.path("depot"),
            ]
            loop.environment = ProcessInfo.processInfo.environment.merging([
                "DEPOT_API": daemon.url, "DEPOT_TOKEN": daemon.token,
            ]) { $1 }
            try loop.run()
            try await Task.sleep(for: .milliseconds(300 + 250 * attempt))
            daemon.kill9()
            loop.waitUntilExit()

            try await daemon.start()
            struct Report: Decodable {
                var unknownFiles: [String]
                var missingVolumes: [String]
            }
            let report = try await daemon.client.get("/v1/reconcile", as: Report.self)
            #expect(report.unknownFiles.isEmpty && report.missingVolumes.isEmpty, "\(report)")
            let snapshots = try await daemon.client.snapshots(volume: vm)
            #expect(!snapshots.isEmpty && snapshots.allSatisfy { $0.state == "ready" }, "\(snapshots.map(\.name))")
            let info = try await daemon.client.volume(vm)
            let files = try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/default")
            #expect(files.count == snapshots.count + 1, "\(files.sorted()) for \(snapshots.count) snapshots")
            for file in files where file.hasSuffix(".qcow2") {
                let r = try Daemon.run(
                    try NFSGaneshaTests.tool("qemu-img"), ["check", "-U", daemon.data + "/pools/default/" + file])
                #expect((r.status == 0 || r.status == 3) && !r.stdout.contains("ERROR"), "\(file): \(r.stdout)")
            }
            // The chain qemu-img reads: the active file, then each snapshot newest first.
            let byName = Dictionary(uniqueKeysWithValues: snapshots.map { ("\($0.pool)/\($0.volume)@\($0.name)", $0) })
            var expected = [info.path]
            var next = info.base
            while let name = next, let s = byName[name] {
                expected.append(s.path)
                next = s.parent
            }
            #expect(try Self.chain(info.path) == expected)
            #expect(expected.count == snapshots.count + 1)
            let restarted = "iscsi://\(daemon.portal)/\(Self.iqn)/0"
            #expect(try Self.reads(restarted, data, work: work), "flushed writes survive")
        }
    }
}
