@testable import DepotBackstores
import DepotBlock
import DepotImage
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The qcow2 backstore against qemu-img: images qemu-img made read as
/// `qemu-img convert -O raw` says they do; images Depot wrote pass
/// `qemu-img check` and `qemu-img compare` equal to a model of every write.
@Suite struct QCOW2ImageTests {
    static let mib = 1 << 20

    /// The header as Depot parses it says what `qemu-img info` says, and
    /// writes back to the same bytes.
    @Test(arguments: [("1.1", 16), ("0.10", 16), ("1.1", 12), ("1.1", 21)])
    func headersReadAsQemuImgInfoSays(compat: String, clusterBits: Int) throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "raw", dir + "/base.raw", "64M"])
        try QemuImg.must(
            "qemu-img",
            [
                "create", "-q", "-f", "qcow2", "-o", "compat=\(compat),cluster_size=\(1 << clusterBits)", "-b",
                "base.raw", "-F", "raw", dir + "/top.qcow2", "100M",
            ])
        let info = try QemuImg.info(dir + "/top.qcow2")
        let bytes = try ImageFile(path: dir + "/top.qcow2", writable: false).read(at: 0, count: 1 << clusterBits)
        var buffer = ByteBuffer(bytes: bytes)
        let header = try buffer.readQCOW2Header()
        #expect(header.version == (compat == "1.1" ? 3 : 2))
        #expect(header.clusterSize == info["cluster-size"] as? Int)
        #expect(Int(header.size) == info["virtual-size"] as? Int)
        #expect(header.backingFormat == (compat == "1.1" ? "raw" : info["backing-filename-format"] as? String))
        #expect(header.openRefusal == nil)
        var written = ByteBuffer()
        let length = written.writeQCOW2Header(header)
        #expect(Array(written.readableBytesView) == Array(bytes[0..<length]))
    }

    /// qemu-img and qemu-io write data, zero clusters and a backing file's
    /// worth of patterns; every byte Depot reads is what qemu-img convert reads.
    @Test(arguments: [("1.1", 65536), ("0.10", 65536), ("1.1", 4096), ("1.1", 2 << 20)])
    func imagesQemuMadeReadIdentically(compat: String, clusterSize: Int) throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "raw", dir + "/base.raw", "24M"])
        try QemuImg.must("qemu-io", ["-f", "raw", "-c", "write -P 0x11 0 24M", dir + "/base.raw"])
        try QemuImg.must(
            "qemu-img",
            [
                "create", "-q", "-f", "qcow2", "-o", "compat=\(compat),cluster_size=\(clusterSize)", "-b",
                dir + "/base.raw", "-F", "raw", dir + "/mid.qcow2", "32M",
            ])
        let midWrites = ["write -P 0x22 1M 3M", "write -P 0x23 5000 7000"]
        for command in midWrites { try QemuImg.must("qemu-io", ["-f", "qcow2", "-c", command, dir + "/mid.qcow2"]) }
        try QemuImg.must(
            "qemu-img",
            [
                "create", "-q", "-f", "qcow2", "-o", "compat=\(compat),cluster_size=\(clusterSize)", "-b",
                "mid.qcow2", "-F", "qcow2", dir + "/top.qcow2", "40M",
            ])
        var topWrites = ["write -P 0x33 2M 64k", "write -P 0x34 20M 5M", "write -P 0x35 33M 1M"]
        if compat == "1.1" { topWrites.append("write -z 1M 1M") }  // zero clusters over the backing data
        for command in topWrites { try QemuImg.must("qemu-io", ["-f", "qcow2", "-c", command, dir + "/top.qcow2"]) }
        try QemuImg.must(
            "qemu-img", ["convert", "-f", "qcow2", "-O", "raw", dir + "/top.qcow2", dir + "/expected.raw"])
        let expected = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/expected.raw")))

        let image = try QCOW2Image(path: dir + "/top.qcow2", writable: false)
        #expect(image.chain == [dir + "/top.qcow2", dir + "/mid.qcow2", dir + "/base.raw"])
        #expect(image.size == UInt64(expected.count))
        var read = [UInt8](repeating: 0xEE, count: expected.count)
        // Odd-sized reads at odd offsets, so pieces straddle clusters and layers.
        var at = 0
        var step = 777_777
        try read.withUnsafeMutableBytes { all in
            while at < expected.count {
                let count = min(step, expected.count - at)
                try image.read(at: UInt64(at), into: UnsafeMutableRawBufferPointer(rebasing: all[at..<(at + count)]))
                at += count
                step = step % 3 == 0 ? step / 3 : step * 2 + 1
                step = max(1, min(step, 3 * Self.mib))
            }
        }
        let differs = firstDifference(read, expected)
        #expect(differs == nil, "\(differs ?? "")")
    }

    /// Random writes and unmaps through the device, with and without a
    /// backing file, against an in-memory model: after a flush and close,
    /// qemu-img check finds the image clean (no leaks, no corruption) and
    /// qemu-img compare finds it equal to the model.
    @Test(arguments: [(false, 65536, UInt64(1)), (true, 65536, 2), (true, 4096, 3), (false, 2 << 20, 4)])
    func writesDepotMakesPassQemuImgCheckAndCompare(backed: Bool, clusterSize: Int, seed: UInt64) async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let size = 48 * Self.mib
        var model = [UInt8](repeating: 0, count: size)
        var random = SeededBytes(state: seed)
        var backing: [String] = []
        if backed {
            let base = random.bytes(size)
            try Data(base).write(to: URL(fileURLWithPath: dir + "/base.raw"))
            model = base
            backing = ["-b", "base.raw", "-F", "raw"]
        }
        try QemuImg.must(
            "qemu-img",
            ["create", "-q", "-f", "qcow2", "-o", "cluster_size=\(clusterSize)"] + backing + [dir + "/v.qcow2", "48M"])
        do {
            let device = try QCOW2BlockDevice(path: dir + "/v.qcow2", blockSize: 512, readOnly: false)
            for step in 0..<300 {
                let offset = Int(random.below(UInt64(size - 1)))
                let count = min(
                    size - offset, 1 + Int(random.below(UInt64(random.below(4) == 0 ? 3 * Self.mib : 9000))))
                if step % 7 == 6 {
                    // UNMAP is block granular, as the SCSI core sends it.
                    let start = offset / 512 * 512
                    let length = max(512, count / 512 * 512)
                    guard start + length <= size else { continue }
                    try await device.unmap(offset: UInt64(start), length: UInt64(length))
                    for i in start..<(start + length) { model[i] = 0 }
                } else {
                    let bytes = random.bytes(count)
                    try await device.write(offset: UInt64(offset), bytes: bytes)
                    model.replaceSubrange(offset..<(offset + count), with: bytes)
                }
                if step % 50 == 0 {
                    let probe = Int(random.below(UInt64(size - 4096)))
                    let got = try await device.read(offset: UInt64(probe), length: 4096)
                    #expect(got == Array(model[probe..<(probe + 4096)]), "seed \(seed) step \(step)")
                }
                if step % 40 == 39 { try await device.flush() }
            }
            try await device.flush()
            let whole = try await device.read(offset: 0, length: size)
            let differs = firstDifference(whole, model)
            #expect(differs == nil, "seed \(seed): the device reads back what was written: \(differs ?? "")")
        }
        try Data(model).write(to: URL(fileURLWithPath: dir + "/model.raw"))
        let check = try QemuImg.run("qemu-img", ["check", "-f", "qcow2", dir + "/v.qcow2"])
        #expect(check.status == 0, "seed \(seed): \(check.output)")
        #expect(check.output.contains("No errors were found"), "seed \(seed): \(check.output)")
        #expect(!check.output.contains("leaked"), "seed \(seed): \(check.output)")
        let compare = try QemuImg.run(
            "qemu-img", ["compare", "-f", "qcow2", "-F", "raw", dir + "/v.qcow2", dir + "/model.raw"])
        #expect(compare.status == 0, "seed \(seed): \(compare.output)")
    }

    /// Compressed clusters (qemu-img convert -c: deflate) read as their data;
    /// a write into one rewrites that cluster uncompressed, and the image
    /// still passes qemu-img check and compare.
    @Test(arguments: [65536, 4096])
    func compressedClustersReadAndAWriteRewritesThem(clusterSize: Int) async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var random = SeededBytes(state: UInt64(clusterSize))
        // Compressible: runs of one byte and random stretches.
        var content: [UInt8] = []
        while content.count < 8 * Self.mib {
            content +=
                random.below(2) == 0
                ? [UInt8](repeating: UInt8(random.below(256)), count: 1 + Int(random.below(40_000)))
                : random.bytes(1 + Int(random.below(20_000)))
        }
        content = Array(content.prefix(8 * Self.mib))
        try Data(content).write(to: URL(fileURLWithPath: dir + "/src.raw"))
        try QemuImg.must(
            "qemu-img",
            [
                "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=\(clusterSize)", dir + "/src.raw",
                dir + "/c.qcow2",
            ])
        let info = try QemuImg.info(dir + "/c.qcow2")
        #expect((info["actual-size"] as? Int ?? .max) < content.count, "qemu-img compressed it")
        do {
            let device = try QCOW2BlockDevice(path: dir + "/c.qcow2", blockSize: 512, readOnly: false)
            let whole = try await device.read(offset: 0, length: content.count)
            let differs = firstDifference(whole, content)
            #expect(differs == nil, "\(differs ?? "")")
            let patch = random.bytes(3000)
            try await device.write(offset: 1_000_000, bytes: patch)
            content.replaceSubrange(1_000_000..<1_003_000, with: patch)
            #expect(try await device.read(offset: 990_000, length: 20_000) == Array(content[990_000..<1_010_000]))
            try await device.close()
        }
        try Self.expectCleanAndEqual(dir + "/c.qcow2", to: content, in: dir)
    }

    /// What a kill -9 leaves (the file after a flush, more writes unflushed,
    /// reserved clusters not taken): qemu-img check finds it clean — the
    /// reservation is a hole with refcount 0, free space. A leak (a refcount
    /// written, its table not) is reclaimed by the next writable open. A
    /// refcount below the references is refused as corrupt.
    @Test func aCrashLeavesOnlyLeaksTheNextOpenReclaims() async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/v.qcow2", "32M"])
        var random = SeededBytes(state: 99)
        let data = random.bytes(3 * Self.mib + 12345)
        let device = try QCOW2BlockDevice(path: dir + "/v.qcow2", blockSize: 512, readOnly: false)
        try await device.write(offset: 5 * UInt64(Self.mib), bytes: data)
        try await device.flush()
        // Written, not flushed: a crash may lose it, and must lose nothing else.
        try await device.write(offset: 20 * UInt64(Self.mib), bytes: random.bytes(200_000))
        try FileManager.default.copyItem(atPath: dir + "/v.qcow2", toPath: dir + "/crash.qcow2")
        try FileManager.default.copyItem(atPath: dir + "/v.qcow2", toPath: dir + "/corrupt.qcow2")
        var model = [UInt8](repeating: 0, count: 32 * Self.mib)
        model.replaceSubrange((5 * Self.mib)..<(5 * Self.mib + data.count), with: data)
        try Data(model).write(to: URL(fileURLWithPath: dir + "/model.raw"))

        var check = try QemuImg.run("qemu-img", ["check", dir + "/crash.qcow2"])
        #expect(check.status == 0 && check.output.contains("No errors were found"), "\(check.output)")
        #expect(!check.output.contains("leaked"), "\(check.output)")
        let compare = try QemuImg.run(
            "qemu-img", ["compare", "-f", "qcow2", "-F", "raw", dir + "/crash.qcow2", dir + "/model.raw"])
        #expect(compare.status == 0, "\(compare.output)")

        // A leak by hand: the last cluster of the file (reserved, not taken) given refcount 1.
        do {
            let file = try ImageFile(path: dir + "/crash.qcow2", writable: true, locking: false)
            var head = ByteBuffer(bytes: try file.read(at: 0, count: 65536))
            let header = try head.readQCOW2Header()
            var table = ByteBuffer(bytes: try file.read(at: header.refcountTableOffset, count: 8))
            let first = table.readInteger(as: UInt64.self)
            let block = try #require(first)
            var counts = try file.read(at: block, count: header.clusterSize)
            let last = Int(file.size) / header.clusterSize - 1
            #expect(QCOW2Refcount.get(counts, index: last, order: 4) == 0, "the reservation is free space")
            QCOW2Refcount.set(&counts, index: last, order: 4, to: 1)
            try file.write(at: block, counts)
        }
        check = try QemuImg.run("qemu-img", ["check", dir + "/crash.qcow2"])
        #expect(check.status == 3 && check.output.contains("1 leaked clusters"), "\(check.output)")
        let reopened = try QCOW2Image(path: dir + "/crash.qcow2", writable: true)
        #expect(reopened.reclaimed > 0)
        try reopened.close()
        check = try QemuImg.run("qemu-img", ["check", dir + "/crash.qcow2"])
        #expect(check.status == 0 && check.output.contains("No errors were found"), "\(check.output)")
        #expect(!check.output.contains("leaked"), "the leak is reclaimed: \(check.output)")
        let again = try QemuImg.run(
            "qemu-img", ["compare", "-f", "qcow2", "-F", "raw", dir + "/crash.qcow2", dir + "/model.raw"])
        #expect(again.status == 0, "\(again.output)")

        // The first refcount block zeroed: every cluster referenced with refcount 0.
        let file = try ImageFile(path: dir + "/corrupt.qcow2", writable: true, locking: false)
        var head = ByteBuffer(bytes: try file.read(at: 0, count: 65536))
        let header = try head.readQCOW2Header()
        var table = ByteBuffer(bytes: try file.read(at: header.refcountTableOffset, count: 8))
        let first = table.readInteger(as: UInt64.self)
        let block = try #require(first)
        try file.write(at: block, [UInt8](repeating: 0, count: header.clusterSize))
        do {
            _ = try QCOW2Image(path: dir + "/corrupt.qcow2", writable: true)
            Issue.record("an image with referenced clusters of refcount 0 was opened")
        } catch let error as QCOW2Error {
            guard case .corrupt = error else {
                Issue.record("\(error)")
                return
            }
            #expect("\(error)".contains("refcount"))
        }
        try await device.close()
    }

    /// The fast lane makes first writes where only zeros lie below on the
    /// caller's thread, into clusters already reserved (no table or refcount
    /// I/O); the pool path makes the tables and reservations. A flush while
    /// they land, a close, and the image passes qemu-img check (no leaks:
    /// the unused reservation is cut off the end of the file) and compare.
    /// Over a backing file a first write needs copy-on-write: declined.
    @Test func firstWritesInPlaceUseReservedClusters() async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let size = 64 * Self.mib
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/v.qcow2", "64M"])
        var model = [UInt8](repeating: 0, count: size)
        var random = SeededBytes(state: 7)
        var inPlace = 0
        do {
            let device = try QCOW2BlockDevice(path: dir + "/v.qcow2", blockSize: 512, readOnly: false)
            // No L2 table yet: the pool path makes it.
            let first = random.bytes(4096)
            #expect(!first.withUnsafeBytes { device.writeNow(offset: 512, from: $0) })
            try await device.write(offset: 512, bytes: first)
            model.replaceSubrange(512..<4608, with: first)
            for cluster in 1..<(size / 65536) {
                let offset = cluster * 65536 + Int(random.below(60)) * 1024
                let bytes = random.bytes(4096)
                if bytes.withUnsafeBytes({ device.writeNow(offset: UInt64(offset), from: $0) }) {
                    inPlace += 1
                } else {
                    try await device.write(offset: UInt64(offset), bytes: bytes)
                }
                model.replaceSubrange(offset..<(offset + 4096), with: bytes)
                if cluster % 100 == 0 { try await device.flush() }
            }
            let whole = try await device.read(offset: 0, length: size)
            #expect(firstDifference(whole, model) == nil, "\(firstDifference(whole, model) ?? "")")
            try await device.close()
        }
        #expect(inPlace > 0, "no first write was made in place")
        let file = try ImageFile(path: dir + "/v.qcow2", writable: false)
        #expect(file.size < UInt64(size + Self.mib), "the unused reservation is cut off: \(file.size) bytes")
        try Self.expectCleanAndEqual(dir + "/v.qcow2", to: model, in: dir)

        // Over a backing file an unallocated cluster is copy-on-write: the pool's.
        try QemuImg.must(
            "qemu-img", ["create", "-q", "-f", "qcow2", "-b", "v.qcow2", "-F", "qcow2", dir + "/top.qcow2"])
        let top = try QCOW2BlockDevice(path: dir + "/top.qcow2", blockSize: 512, readOnly: false)
        _ = try await top.read(offset: 0, length: 4096)
        #expect(![UInt8](repeating: 1, count: 4096).withUnsafeBytes { top.writeNow(offset: 0, from: $0) })
        try await top.close()
    }

    /// Flushes racing writers through an L2 cache of four tables: a table a
    /// flush has taken must stay cached until written — evicted and read
    /// back from the file before the write lands, it returns without the
    /// entries in flight, and its next write-out puts that older table over
    /// them (the writes vanish, their clusters leak).
    @Test func flushesRacingWritersThroughATinyCacheLoseNoWrite() async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let size = 64 * Self.mib
        let block = 4096
        try QemuImg.must(
            "qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", dir + "/v.qcow2", "64M"])
        let writers = 4
        let perWriter = 1500
        // Writer w owns the blocks b with b % writers == w: each block's last write is known.
        var plans: [[(block: Int, bytes: [UInt8])]] = []
        var model = [UInt8](repeating: 0, count: size)
        for w in 0..<writers {
            var random = SeededBytes(state: UInt64(100 + w))
            var plan: [(block: Int, bytes: [UInt8])] = []
            for _ in 0..<perWriter {
                let b = Int(random.below(UInt64(size / block / writers))) * writers + w
                let bytes = random.bytes(block)
                plan.append((b, bytes))
                model.replaceSubrange((b * block)..<((b + 1) * block), with: bytes)
            }
            plans.append(plan)
        }
        do {
            let device = try QCOW2BlockDevice(
                path: dir + "/v.qcow2", blockSize: 512, readOnly: false, l2CacheBytes: 4 * 4096)
            let done = NIOLockedValueBox(false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for plan in plans {
                    group.addTask {
                        for (b, bytes) in plan { try await device.write(offset: UInt64(b * block), bytes: bytes) }
                    }
                }
                group.addTask {
                    var flushes = 0
                    while !done.withLockedValue({ $0 }) || flushes == 0 {
                        try await device.flush()
                        flushes += 1
                    }
                }
                for _ in 0..<writers { try await group.next() }
                done.withLockedValue { $0 = true }
                try await group.waitForAll()
            }
            try await device.close()
        }
        let reopened = try QCOW2BlockDevice(path: dir + "/v.qcow2", blockSize: 512, readOnly: true)
        let whole = try await reopened.read(offset: 0, length: size)
        #expect(firstDifference(whole, model) == nil, "\(firstDifference(whole, model) ?? "")")
        try Self.expectCleanAndEqual(dir + "/v.qcow2", to: model, in: dir)
    }

    /// Growing an image over a smaller raw backing file: with 4 KiB clusters
    /// 16 MiB → 1.5 GiB outgrows the one-cluster L1 table (a new one is
    /// written and the old freed); with 64 KiB clusters it does not. The
    /// new range reads zeros and takes writes; qemu-img reads the new size,
    /// finds the image clean (no leak: the old L1 went back) and equal.
    @Test(arguments: [(4096, UInt64(1536) << 20), (65536, UInt64(1) << 30)])
    func growingKeepsDataAndQemuImgAgrees(clusterSize: Int, newSize: UInt64) async throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var random = SeededBytes(state: UInt64(clusterSize))
        let base = random.bytes(4 * Self.mib)
        try Data(base).write(to: URL(fileURLWithPath: dir + "/base.raw"))
        try QemuImg.must(
            "qemu-img",
            ["create", "-q", "-f", "qcow2", "-o", "cluster_size=\(clusterSize)", "-b", "base.raw", "-F", "raw"]
                + [dir + "/v.qcow2", "16M"])
        let early = random.bytes(3 * Self.mib)
        let late = random.bytes(Self.mib)
        let lateAt = newSize - UInt64(2 * Self.mib) - 4096
        do {
            let device = try QCOW2BlockDevice(path: dir + "/v.qcow2", blockSize: 512, readOnly: false)
            try await device.write(offset: UInt64(2 * Self.mib), bytes: early)
            let l1Before = device.image.l1Offset
            if clusterSize == 4096 {
                // Past what its one-cluster refcount table counts: refused, nothing changed.
                await #expect(throws: QCOW2Error.self) { try await device.grow(to: UInt64(3) << 30) }
                #expect(device.sizeBytes == UInt64(16 * Self.mib))
            }
            try await device.grow(to: newSize)
            #expect(device.sizeBytes == newSize)
            #expect(
                (device.image.l1Offset != l1Before) == (clusterSize == 4096), "the L1 table moves only when it must")
            let zeros = try await device.read(offset: newSize - 8192, length: 8192)
            #expect(zeros == [UInt8](repeating: 0, count: 8192))
            try await device.write(offset: lateAt, bytes: late)
            try await device.close()
        }
        let info = try QemuImg.info(dir + "/v.qcow2")
        #expect((info["virtual-size"] as? NSNumber)?.uint64Value == newSize, "\(info)")
        let check = try QemuImg.run("qemu-img", ["check", dir + "/v.qcow2"])
        #expect(check.status == 0 && check.output.contains("No errors were found"), "\(check.output)")
        #expect(!check.output.contains("leaked"), "\(check.output)")
        // The expected disk, sparse: the backing's 4 MiB, the writes, zeros elsewhere.
        let model = FileManager.default.createFile(atPath: dir + "/model.raw", contents: nil)
        #expect(model)
        let handle = try #require(FileHandle(forWritingAtPath: dir + "/model.raw"))
        try handle.truncate(atOffset: newSize)
        try handle.seek(toOffset: 0)
        handle.write(Data(base))
        try handle.seek(toOffset: UInt64(2 * Self.mib))
        handle.write(Data(early))
        try handle.seek(toOffset: lateAt)
        handle.write(Data(late))
        try handle.close()
        let compare = try QemuImg.run(
            "qemu-img", ["compare", "-f", "qcow2", "-F", "raw", dir + "/v.qcow2", dir + "/model.raw"])
        #expect(compare.status == 0, "\(compare.output)")
    }

    /// Images Depot must not serve are refused with the reason named.
    @Test func corruptAndUnknownFeaturesAreRefusedByName() throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/v.qcow2", "16M"])
        let file = try ImageFile(path: dir + "/v.qcow2", writable: true, locking: false)
        var features = ByteBuffer(bytes: try file.read(at: 72, count: 8))
        let original = features.readInteger(as: UInt64.self) ?? 0
        func setFeatures(_ value: UInt64) throws {
            var bytes = ByteBuffer()
            bytes.writeInteger(value)
            try file.write(at: 72, Array(bytes.readableBytesView))
        }
        try setFeatures(original | QCOW2Header.corruptBit)
        #expect(throws: QCOW2Error.self) { _ = try QCOW2Image(path: dir + "/v.qcow2", writable: false) }
        do { _ = try QCOW2Image(path: dir + "/v.qcow2", writable: false) } catch {
            #expect("\(error)".contains("marked corrupt"))
        }
        try setFeatures(original | 1 << 40)
        do {
            _ = try QCOW2Image(path: dir + "/v.qcow2", writable: false)
            Issue.record("an unknown incompatible feature was not refused")
        } catch { #expect("\(error)".contains("unknown incompatible feature bit(s) 40")) }
        try setFeatures(original)
        // A refcount table the file says is 4 G clusters long (the opener allocates it whole).
        let tableClusters = try file.read(at: 56, count: 4)
        try file.write(at: 56, [0xFF, 0xFF, 0xFF, 0xFF])
        do {
            _ = try QCOW2Image(path: dir + "/v.qcow2", writable: false)
            Issue.record("a refcount table of 4 G clusters was accepted")
        } catch { #expect("\(error)".contains("refcount table of 4294967295 clusters")) }
        try file.write(at: 56, tableClusters)
        #expect(try QCOW2Image(path: dir + "/v.qcow2", writable: true).size == 16 << 20)
        try Data([1, 2, 3, 4]).write(to: URL(fileURLWithPath: dir + "/not.qcow2"))
        do {
            _ = try QCOW2Image(path: dir + "/not.qcow2", writable: false)
            Issue.record("a file that is not qcow2 was opened")
        } catch { #expect("\(error)".contains("not a qcow2 image")) }
    }

    /// qemu-img check finds `image` clean and qemu-img compare finds it equal to `model`.
    static func expectCleanAndEqual(_ image: String, to model: [UInt8], in dir: String) throws {
        try Data(model).write(to: URL(fileURLWithPath: dir + "/model.raw"))
        let check = try QemuImg.run("qemu-img", ["check", image])
        #expect(check.status == 0 && check.output.contains("No errors were found"), "\(check.output)")
        let compare = try QemuImg.run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", image, dir + "/model.raw"])
        #expect(compare.status == 0, "\(compare.output)")
    }

    /// Found by `make fuzz` (qcow2 target): a header whose L1 or refcount
    /// table offset is past the largest file offset trapped converting it to
    /// off_t. Tables (and the backing name) must lie inside the file.
    @Test(arguments: [(40, UInt64(0xFFFF_FFFF_FFFF_0000)), (40, 1 << 40), (48, 1 << 62), (8, UInt64.max - 3)])
    func aHostileTableOffsetIsRefusedNotATrap(field: Int, value: UInt64) throws {
        let dir = try QemuImg.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/hostile.qcow2"
        try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", path, "1M"])
        if field == 8 {  // a backing file name at a hostile offset
            try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", dir + "/base.qcow2", "1M"])
            try QemuImg.must("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", path])
        }
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for i in 0..<8 { bytes[field + i] = UInt8(truncatingIfNeeded: value >> (56 - 8 * i)) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: QCOW2Error.self) { _ = try QCOW2Image(path: path, writable: true) }
        #expect(throws: QCOW2Error.self) { _ = try QCOW2Image(path: path, writable: false) }
    }
}
