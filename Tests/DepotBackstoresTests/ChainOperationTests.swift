import DepotBlock
import DepotImage
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import NIOConcurrencyHelpers
import NIOPosix
import Testing

@testable import DepotBackstores

/// The chain operations snapshots, merges, flattens and full clones stand on,
/// against qemu-img: overlays Depot makes are the overlays qemu-img makes,
/// a pull and rebase leaves the guest data as it was (qemu-img compare) in
/// an image qemu-img check passes, and a copy out reads identical.
@Suite struct ChainOperationTests {
    @Test func anOverlayDepotMakesNamesItsBackingAsQemuImgReadsIt() throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QemuImg.must("qemu-img", ["create", "-f", "raw", dir + "/base.img", "8M"])
        try QemuImg.must("qemu-io", ["-f", "raw", "-c", "write -P 0x41 0 1M", dir + "/base.img"])
        let bytes = try QCOW2Layout.emptyImage(
            size: 8 << 20, backing: QCOW2Layout.Backing(name: "base.img", format: "raw"))
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/top.qcow2"))
        try QemuImg.must("qemu-img", ["check", dir + "/top.qcow2"])
        let info = try QemuImg.info(dir + "/top.qcow2")
        #expect(info["backing-filename"] as? String == "base.img")
        #expect(info["backing-filename-format"] as? String == "raw")
        try QemuImg.must("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", dir + "/top.qcow2", dir + "/base.img"])
        // A name too long for the header is refused, not truncated.
        #expect(throws: QCOW2Layout.LayoutError.self) {
            _ = try QCOW2Layout.emptyImage(
                size: 1 << 20, clusterBits: 12,
                backing: QCOW2Layout.Backing(name: String(repeating: "x", count: 4000), format: "raw"))
        }
    }

    /// base (raw) ← mid (qcow2, 4 KiB clusters, with data and zero clusters
    /// over base data) ← top (qcow2, 64 KiB clusters): merging mid into top
    /// and rebasing top onto base keeps every byte the guest reads; so does
    /// flattening top onto nothing. A guest write racing the pull wins.
    @Test func pullAndRebaseKeepTheGuestData() async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QemuImg.must("qemu-img", ["create", "-f", "raw", dir + "/base.img", "16M"])
        try QemuImg.must("qemu-io", ["-f", "raw", "-c", "write -P 0x11 0 12M", dir + "/base.img"])
        try QemuImg.must(
            "qemu-img",
            ["create", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "base.img", "-F", "raw", dir + "/mid.qcow2"])
        try QemuImg.must(
            "qemu-io",
            ["-c", "write -P 0x22 1M 1M", "-c", "write -z 4M 1M", "-c", "write -P 0x23 6M 4K", dir + "/mid.qcow2"])
        try QemuImg.must(
            "qemu-img", ["create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", dir + "/top.qcow2"])
        try QemuImg.must("qemu-io", ["-c", "write -P 0x33 1536K 1M", dir + "/top.qcow2"])
        try QemuImg.must("qemu-img", ["convert", "-O", "raw", dir + "/top.qcow2", dir + "/expected.raw"])

        let device = try QCOW2BlockDevice(path: dir + "/top.qcow2", blockSize: 512, readOnly: false)
        let figures = try device.mergeFigures()
        // mid's own data: 1M (half shadowed by top), the 1M zero run, 4K (a whole 64K top cluster).
        #expect(figures.shadowed == 512 << 10, "\(figures)")
        var steps = 0
        try device.pull(layers: 1) { _, _ in steps += 1 }
        #expect(steps > 0)
        try device.closeNow()
        try QCOW2BlockDevice.rebase(
            path: dir + "/top.qcow2", backing: QCOW2Layout.Backing(name: "base.img", format: "raw"))
        try QemuImg.must("qemu-img", ["check", dir + "/top.qcow2"])
        #expect(try QemuImg.info(dir + "/top.qcow2")["backing-filename"] as? String == "base.img")
        try QemuImg.must("qemu-img", ["compare", "-F", "raw", dir + "/top.qcow2", dir + "/expected.raw"])

        // Flatten: everything below pulled up, no backing file left.
        let flat = try QCOW2BlockDevice(path: dir + "/top.qcow2", blockSize: 512, readOnly: false)
        // A guest write lands while the pull runs: it must survive.
        let guest = [UInt8](repeating: 0x77, count: 4096)
        var wrote = false
        try flat.pull(layers: nil) { offset, _ in
            if !wrote, offset >= 8 << 20 {
                try guest.withUnsafeBytes { try flat.image.write(at: 10 << 20, $0) }
                wrote = true
            }
        }
        #expect(wrote)
        try flat.closeNow()
        try QCOW2BlockDevice.rebase(path: dir + "/top.qcow2", backing: nil)
        try QemuImg.must("qemu-img", ["check", dir + "/top.qcow2"])
        #expect(try QemuImg.info(dir + "/top.qcow2")["backing-filename"] == nil)
        var expected = try Data(contentsOf: URL(fileURLWithPath: dir + "/expected.raw"))
        expected.replaceSubrange((10 << 20)..<((10 << 20) + 4096), with: guest)
        try expected.write(to: URL(fileURLWithPath: dir + "/expected.raw"))
        try QemuImg.must("qemu-img", ["compare", "-F", "raw", dir + "/top.qcow2", dir + "/expected.raw"])
        // Zeros below were not copied as data: 12M of base data less what reads as zero.
        let info = try QemuImg.info(dir + "/top.qcow2")
        #expect((info["actual-size"] as? Int ?? 0) < 13 << 20, "\(info)")
    }

    /// QEMU's image locks both ways: an image a QEMU has open for writing is
    /// refused naming why, and while Depot writes an image QEMU refuses to
    /// open it for writing (qemu-img -U still reads it). Closing gives the
    /// locks back.
    @Test func imagesAnotherProgramWritesAreRefusedAndServedOnesAreLocked() async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/vm.qcow2"
        try QemuImg.must("qemu-img", ["create", "-f", "qcow2", path, "16M"])
        // qemu-io holds it open for writing while it sleeps.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/qemu-io")
        holder.arguments = ["-c", "sleep 20000", path]
        holder.standardOutput = FileHandle.nullDevice
        holder.standardError = FileHandle.nullDevice
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        // Until qemu-io holds its locks (taking ours meanwhile would make it fail instead);
        // a loaded machine may take seconds to start it.
        func held() -> Bool {
            ((try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? "").contains(" 201 201")
        }
        for _ in 0..<1000 where !held() { try await Task.sleep(for: .milliseconds(20)) }
        try #require(held(), "qemu-io never took its locks on \(path)")
        var refusal = ""
        do {
            let device = try QCOW2BlockDevice(path: path, blockSize: 512, readOnly: false)
            try device.closeNow()
        } catch {
            refusal = "\(error)"
        }
        #expect(refusal.contains("open for writing"), "\(refusal)")
        holder.terminate()
        holder.waitUntilExit()

        let device = try QCOW2BlockDevice(path: path, blockSize: 512, readOnly: false)
        let writer = try QemuImg.run("qemu-io", ["-c", "write 0 4k", path])
        #expect(writer.status != 0 && writer.output.lowercased().contains("lock"), "\(writer.output)")
        #expect(try QemuImg.run("qemu-img", ["info", "-U", path]).status == 0)
        try device.closeNow()
        #expect(try QemuImg.run("qemu-io", ["-c", "write 0 4k", path]).status == 0, "the locks are given back")
    }

    @Test func copyDataWritesTheChainAsASparseRawFile() throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QemuImg.must("qemu-img", ["create", "-f", "qcow2", dir + "/base.qcow2", "32M"])
        try QemuImg.must("qemu-io", ["-c", "write -P 0x51 0 3M", "-c", "write -P 0x52 20M 1M", dir + "/base.qcow2"])
        try QemuImg.must(
            "qemu-img", ["create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir + "/top.qcow2"])
        try QemuImg.must("qemu-io", ["-c", "write -z 1M 1M", "-c", "write -P 0x53 30M 64K", dir + "/top.qcow2"])
        let chain = try QCOW2BlockDevice(path: dir + "/top.qcow2", blockSize: 512, readOnly: true)
        let fd = open(dir + "/copy.raw", O_CREAT | O_RDWR | O_TRUNC, 0o600)
        #expect(fd >= 0)
        #expect(ftruncate(fd, off_t(32 << 20)) == 0)
        var written = 0
        try chain.copyData(to: fd) { _, bytes in written += bytes }
        close(fd)
        try QemuImg.must("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", dir + "/top.qcow2", dir + "/copy.raw"])
        // 2M + 1M + 64K of data; the zeroed MiB is not written.
        #expect(written == (3 << 20) + (64 << 10), "\(written)")
    }

    /// Writes keep going while the backstore is swapped many times: none
    /// fails, none is lost, and each lands in the backstore serving when it ran.
    @Test func aVolumeDeviceSwapsUnderConcurrentIO() async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QemuImg.must("qemu-img", ["create", "-f", "raw", dir + "/a.img", "4M"])
        try QemuImg.must("qemu-img", ["create", "-f", "raw", dir + "/b.img", "4M"])
        let a = try FileBlockDevice(path: dir + "/a.img", blockSize: 512, readOnly: false)
        let b = try FileBlockDevice(path: dir + "/b.img", blockSize: 512, readOnly: false)
        let device = VolumeDevice(a)
        let failures = NIOLockedValueBox(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for i in 0..<200 {
                        let block = UInt64((writer * 200 + i) % 8192)
                        do {
                            try await device.write(offset: block * 512, bytes: [UInt8](repeating: 1, count: 512))
                        } catch { failures.withLockedValue { $0 += 1 } }
                    }
                }
            }
            group.addTask {
                for round in 0..<20 {
                    try await device.replace { _ in round % 2 == 0 ? b : a }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            try await group.waitForAll()
        }
        #expect(failures.withLockedValue { $0 } == 0)
        // Every block written landed in one of the two.
        let one = try await a.read(offset: 0, length: 800 * 512)
        let two = try await b.read(offset: 0, length: 800 * 512)
        let lost = (0..<800).filter { i in one[i * 512] != 1 && two[i * 512] != 1 }.count
        #expect(lost == 0)
        // A backstore of another size is refused and the old one keeps serving.
        let small = try FileBlockDevice(path: dir + "/a.img", blockSize: 4096, readOnly: false)
        await #expect(throws: (any Error).self) { try await device.replace { _ in small } }
        try await device.write(offset: 0, bytes: [UInt8](repeating: 2, count: 512))
        #expect(device.current as AnyObject === a as AnyObject || device.current as AnyObject === b as AnyObject)
    }

    /// GET LBA STATUS through a 32-layer chain (what QEMU asks before its
    /// first reads of a LUN): every extent's mapped state is qemu-img map's
    /// `data`, and a walk of the whole disk takes one answer per run of
    /// clusters, not one per cluster — the per-cluster answer made a
    /// 32-layer chain read at half the speed of one layer.
    @Test func allocationThroughADeepChainAnswersRunsAsQemuImgMapsThem() throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let size: UInt64 = 64 << 20
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/l0.qcow2", "64M"])
        try QemuImg.must("qemu-io", ["-c", "write -P 0x11 0 48M", "-c", "write -z 8M 1M", dir + "/l0.qcow2"])
        let layers = 31
        for i in 1...layers {
            try QemuImg.must(
                "qemu-img",
                ["create", "-q", "-f", "qcow2", "-b", "l\(i - 1).qcow2", "-F", "qcow2", dir + "/l\(i).qcow2"])
            var commands = ["-c", "write -P \(i) \(i * 2)M 64K"]
            if i % 5 == 0 { commands += ["-c", "write -z \(50 + i / 5)M 128K"] }
            try QemuImg.must("qemu-io", commands + [dir + "/l\(i).qcow2"])
        }
        let top = dir + "/l\(layers).qcow2"
        let map = try QemuImg.must("qemu-img", ["map", "--output=json", top])
        let extents = try #require(JSONSerialization.jsonObject(with: Data(map.utf8)) as? [[String: Any]])
        let expected = extents.compactMap { e -> (start: UInt64, end: UInt64, data: Bool)? in
            guard let start = (e["start"] as? NSNumber)?.uint64Value,
                let length = (e["length"] as? NSNumber)?.uint64Value
            else { return nil }
            return (start, start + length, e["data"] as? Bool ?? false)
        }
        #expect(expected.count == extents.count && expected.last?.end == size)

        let image = try QCOW2Image(path: top, writable: false)
        var offset: UInt64 = 0
        var answers = 0
        while offset < size {
            let (mapped, length) = try image.allocation(at: offset, limit: size - offset)
            answers += 1
            try #require(length > 0 && length <= size - offset, "at \(offset): \(length)")
            for e in expected where e.start < offset + length && e.end > offset {
                #expect(e.data == mapped, "\(offset)+\(length) says mapped=\(mapped); qemu-img map \(e)")
            }
            offset += length
        }
        // Each layer's written pieces start and end at most two runs; the old
        // answer (one cluster at a time) took 1,024 here.
        #expect(answers <= 2 * (layers + layers / 5) + 4, "\(answers) answers for \(expected.count) extents")
        // A limit inside a run is kept.
        #expect(try image.allocation(at: 20 << 20, limit: 4096) == (true, 4096))
    }

    /// A swap that leaves the old backstore's flush for later (a snapshot of
    /// a raw layer) swaps at once; every flush of the device afterwards waits
    /// for that flush and reports its failure, so a SYNCHRONIZE CACHE never
    /// claims writes made before the swap are durable when they may not be.
    /// A swap that flushes first and fails keeps the old backstore serving.
    /// (/dev/full: a device whose fdatasync fails, EINVAL; both are 0 bytes.)
    @Test func aSwapThatFlushesLaterReportsTheOldFlushOnTheNextOne() async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/empty.img", contents: Data())
        let failing = try FileBlockDevice(path: "/dev/full", blockSize: 512, readOnly: false)
        let empty = try FileBlockDevice(path: dir + "/empty.img", blockSize: 512, readOnly: false)
        let device = VolumeDevice(failing)
        await #expect(throws: BlockDeviceError.self) { try await device.replace { _ in empty } }
        #expect(device.current as AnyObject === failing as AnyObject)
        try await device.replace(flush: .later) { _ in empty }
        #expect(device.current as AnyObject === empty as AnyObject)
        await #expect(throws: BlockDeviceError.self) { try await device.flush() }
        await #expect(throws: BlockDeviceError.self) { try await device.flush() }

        // A good old backstore: the later flush runs, and flushes succeed.
        let other = try FileBlockDevice(path: dir + "/empty.img", blockSize: 512, readOnly: false)
        let healthy = VolumeDevice(empty)
        try await healthy.replace(flush: .later) { _ in other }
        try await healthy.flush()
    }

    /// Committing down (a merge into the layer below, as QEMU's block-commit)
    /// while a guest writes: after the passes and a last one with the writes
    /// stopped, the layer below reads exactly what the top read (qemu-img
    /// compare against the model), for a raw and a qcow2 (4 KiB clusters)
    /// layer below; the top read the guest's data throughout.
    @Test(arguments: ["raw", "qcow2"])
    func commitDownUnderWritesLeavesTheLayerBelowAsTheTopReads(below: String) async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let size = 16 << 20
        let base = dir + "/base." + (below == "raw" ? "img" : "qcow2")
        if below == "raw" {
            try QemuImg.must("qemu-img", ["create", "-q", "-f", "raw", base, "16M"])
        } else {
            try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", base, "16M"])
        }
        try QemuImg.must("qemu-io", ["-f", below, "-c", "write -P 0x11 0 12M", "-c", "write -P 0x12 14M 1M", base])
        try QemuImg.must(
            "qemu-img",
            [
                "create", "-q", "-f", "qcow2", "-b", (base as NSString).lastPathComponent, "-F", below,
                dir + "/top.qcow2",
            ])
        try QemuImg.must(
            "qemu-io",
            ["-c", "write -P 0x21 1M 3M", "-c", "write -z 6M 1M", "-c", "write -P 0x22 13M 64K", dir + "/top.qcow2"])
        try QemuImg.must("qemu-img", ["convert", "-O", "raw", dir + "/top.qcow2", dir + "/start.raw"])
        var model = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/start.raw")))
        #expect(model.count == size)

        let device = try QCOW2BlockDevice(path: dir + "/top.qcow2", blockSize: 512, readOnly: false)
        let target = try CommitTarget(path: base, format: below)
        var random = SeededBytes(state: below == "raw" ? 5 : 6)
        var writes: [(Int, [UInt8])] = []
        for _ in 0..<300 {
            let offset = Int(random.below(UInt64(size - 70_000))) / 512 * 512
            writes.append((offset, random.bytes(512 * (1 + Int(random.below(128))))))
        }
        for (offset, bytes) in writes { model.replaceSubrange(offset..<(offset + bytes.count), with: bytes) }
        let planned = writes
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for (offset, bytes) in planned { try await device.write(offset: UInt64(offset), bytes: bytes) }
            }
            group.addTask {
                try await NIOThreadPool.singleton.runIfActive {
                    try device.commit(into: target) { _, _ in }
                    for _ in 0..<4 { try device.commitWritten(into: target, last: false) }
                }
            }
            try await group.waitForAll()
        }
        // The writes are done: the last pass (the pause, in depotd).
        try device.commitWritten(into: target, last: true)
        try target.close()
        let whole = try await device.read(offset: 0, length: size)
        #expect(
            firstDifference(whole, model) == nil,
            "the top reads the guest's data: \(firstDifference(whole, model) ?? "")")
        try Data(model).write(to: URL(fileURLWithPath: dir + "/model.raw"))
        if below == "qcow2" {
            let check = try QemuImg.run("qemu-img", ["check", base])
            #expect(check.status == 0 && check.output.contains("No errors were found"), "\(check.output)")
        }
        let compare = try QemuImg.run("qemu-img", ["compare", "-f", below, "-F", "raw", base, dir + "/model.raw"])
        #expect(compare.status == 0, "the layer below is what the top read: \(compare.output)")
        try await device.close()
    }

}
