import DepotBackstores
import DepotBlock
import DepotCatalog
import DepotCore
import DepotStorage
import Foundation
import Testing

/// A model test of the data services: thousands of random operations —
/// write, unmap, snapshot, rollback, linked clone, snapshot delete (with
/// its merge), flatten, volume delete — against an in-memory model of
/// every volume and snapshot, the contents compared after each step (the
/// volumes) and every few steps (the snapshots). I/O goes through the
/// devices LUNs serve (`OpenVolumes`), so snapshots and merges swap live
/// backstores. At the end every qcow2 file passes `qemu-img check`. The
/// seed is printed on failure; DEPOT_MODEL_SEED and DEPOT_MODEL_STEPS replay.
@Suite struct ChainModelTests {
    static let chunk = 4096
    static let chunks = 256  // 1 MiB volumes

    struct Model {
        var volumes: [String: [UInt8]] = [:]  // fill byte per 4 KiB chunk
        var snapshots: [String: [UInt8]] = [:]  // "vol@snap"
    }

    @Test func randomOperationsMatchTheModel() async throws {
        let seed =
            ProcessInfo.processInfo.environment["DEPOT_MODEL_SEED"].flatMap(UInt64.init)
            ?? UInt64.random(in: 1...UInt64.max)
        let steps = ProcessInfo.processInfo.environment["DEPOT_MODEL_STEPS"].flatMap(Int.init) ?? 2000
        let fixture = try StorageFixture()
        defer { fixture.cleanup() }
        try await fixture.storage.ensureDefaultPool()
        let run = ModelRun(fixture: fixture, seed: seed)
        for step in 0..<steps {
            try await run.step(step)
            guard try await run.volumesMatch(step) else { return }
            if step % 25 == 0 { try await run.snapshotsMatch(step) }
        }
        try await run.snapshotsMatch(steps)
        try run.imagesPassQemuImgCheck()
    }
}

/// One model test run: the model, the random source, and the daemon's side.
final class ModelRun {
    let fixture: StorageFixture
    let storage: StorageManager
    var random: SplitMix
    var model = ChainModelTests.Model()
    var serial = 0
    let context: String

    init(fixture: StorageFixture, seed: UInt64) {
        self.fixture = fixture
        storage = fixture.storage
        random = SplitMix(state: seed)
        context = "seed \(seed) (replay: DEPOT_MODEL_SEED=\(seed))"
    }

    func ref(_ name: String) -> VolumeRef { VolumeRef(pool: "default", name: name) }

    func device(_ name: String) async throws -> VolumeDevice {
        let record = try #require(try await fixture.catalog.volume(poolId: 1, name: name))
        return try storage.openVolumes.device(
            id: record.id!, path: fixture.root + "/pools/default/" + record.fileName,
            format: record.volumeFormat == .qcow2 ? .qcow2 : .raw, blockSize: 512,
            sizeBytes: UInt64(record.sizeBytes), thin: true)
    }

    /// The fill byte of each 4 KiB chunk (0xFF: a chunk not of one byte, never written so).
    func contents(_ device: any BlockDevice) async throws -> [UInt8] {
        let chunk = ChainModelTests.chunk
        let bytes = try await device.read(offset: 0, length: chunk * ChainModelTests.chunks)
        // A chunk is of one byte when it equals itself shifted by one (memcmp: fast in debug builds too).
        return bytes.withUnsafeBytes { raw in
            (0..<ChainModelTests.chunks).map { i in
                let start = raw.baseAddress! + i * chunk
                return memcmp(start, start + 1, chunk - 1) == 0 ? raw[i * chunk] : 0xFF
            }
        }
    }

    func volumesMatch(_ step: Int) async throws -> Bool {
        for (volume, expected) in model.volumes.sorted(by: { $0.key < $1.key }) {
            let found = try await contents(try await device(volume))
            #expect(found == expected, "step \(step): volume \(volume) \(Self.difference(found, expected)); \(context)")
            if found != expected { return false }
        }
        return true
    }

    /// Where two contents first differ (not the whole arrays: the message stays short).
    static func difference(_ found: [UInt8], _ expected: [UInt8]) -> String {
        guard let i = found.indices.first(where: { $0 < expected.count && found[$0] != expected[$0] }) else {
            return "has \(found.count) chunks, the model \(expected.count)"
        }
        return "differs first at 4 KiB chunk \(i): \(found[i]), the model \(expected[i])"
    }

    func snapshotsMatch(_ step: Int) async throws {
        let listed = try await storage.listSnapshots(volume: nil)
        for info in listed {
            let key = "\(info.volume)@\(info.name)"
            let layer: any BlockDevice =
                info.format == .qcow2
                ? try QCOW2BlockDevice(path: info.path, blockSize: 512, readOnly: true)
                : try FileBlockDevice(path: info.path, blockSize: 512, readOnly: true)
            let found = try await contents(layer)
            let expected = model.snapshots[key] ?? []
            #expect(found == expected, "step \(step): snapshot \(key) \(Self.difference(found, expected)); \(context)")
        }
        #expect(
            Set(listed.map { "\($0.volume)@\($0.name)" }) == Set(model.snapshots.keys),
            "step \(step): snapshot set; \(context)")
    }

    func step(_ step: Int) async throws {
        let names = model.volumes.keys.sorted()
        let roll = random.below(100)
        if names.isEmpty || (roll < 4 && names.count < 6) {
            serial += 1
            let name = "v\(serial)"
            let format: VolumeFormat = random.below(2) == 0 ? .raw : .qcow2
            _ = try await storage.createVolume(
                pool: "default", CreateVolumeRequest(name: name, sizeBytes: 1 << 20, format: format))
            model.volumes[name] = [UInt8](repeating: 0, count: ChainModelTests.chunks)
            return
        }
        let name = names[Int(random.below(UInt64(names.count)))]
        let own = model.snapshots.keys.filter { $0.hasPrefix(name + "@") }.sorted()
        switch roll {
        case 0..<45: try await write(name)
        case 45..<55: try await unmap(name)
        case 55..<67: try await snapshot(name)
        case 67..<75 where !own.isEmpty: try await rollback(name, own)
        case 75..<83 where !own.isEmpty && names.count < 6: try await clone(name, own)
        case 83..<92 where !own.isEmpty: try await deleteSnapshot(name, own, step)
        case 92..<96: try await flatten(name, step)
        case 96..<100 where names.count > 1: try await deleteVolume(name, own, step)
        default: return
        }
    }

    func write(_ name: String) async throws {
        let chunk = ChainModelTests.chunk
        let at = Int(random.below(UInt64(ChainModelTests.chunks)))
        let count = min(Int(random.below(8)) + 1, ChainModelTests.chunks - at)
        let value = UInt8(random.below(250) + 1)
        try await device(name).write(
            offset: UInt64(at * chunk), bytes: [UInt8](repeating: value, count: count * chunk))
        for i in at..<(at + count) { model.volumes[name]![i] = value }
    }

    /// Whole 64 KiB clusters (16 chunks).
    func unmap(_ name: String) async throws {
        let chunk = ChainModelTests.chunk
        let cluster = Int(random.below(UInt64(ChainModelTests.chunks / 16)))
        try await device(name).unmap(offset: UInt64(cluster * 16 * chunk), length: UInt64(16 * chunk))
        for i in (cluster * 16)..<((cluster + 1) * 16) { model.volumes[name]![i] = 0 }
    }

    func snapshot(_ name: String) async throws {
        serial += 1
        let snap = "s\(serial)"
        do {
            _ = try await storage.createSnapshot(SnapshotRef(volume: ref(name), name: snap))
            model.snapshots["\(name)@\(snap)"] = model.volumes[name]
        } catch {
            // Only the depth limit may refuse it, and it says so.
            let message = (error as? DepotError)?.message ?? "\(error)"
            #expect(message.contains("layers"), "\(message); \(context)")
        }
    }

    func pick(_ own: [String]) -> (key: String, snap: String) {
        let key = own[Int(random.below(UInt64(own.count)))]
        return (key, String(key.split(separator: "@")[1]))
    }

    func rollback(_ name: String, _ own: [String]) async throws {
        let (key, snap) = pick(own)
        _ = try await storage.rollback(SnapshotRef(volume: ref(name), name: snap), force: true)
        model.volumes[name] = model.snapshots[key]
    }

    func clone(_ name: String, _ own: [String]) async throws {
        let (key, snap) = pick(own)
        serial += 1
        let clone = "v\(serial)"
        _ = try await storage.linkedClone(SnapshotRef(volume: ref(name), name: snap), as: ref(clone))
        model.volumes[clone] = model.snapshots[key]
    }

    func deleteSnapshot(_ name: String, _ own: [String], _ step: Int) async throws {
        let (key, snap) = pick(own)
        do {
            if let job = try await storage.deleteSnapshot(SnapshotRef(volume: ref(name), name: snap)) {
                let ended = try await storage.jobs.wait(job.id)
                #expect(ended.state == .succeeded, "step \(step): merge \(ended); \(context)")
            }
            model.snapshots[key] = nil
        } catch {
            // Refused only for clones built on it or several layers above it.
            let message = (error as? DepotError)?.message ?? "\(error)"
            #expect(
                message.contains("clone") || message.contains("layers"), "step \(step): \(message); \(context)")
        }
    }

    func flatten(_ name: String, _ step: Int) async throws {
        do {
            let job = try await storage.flatten(ref(name))
            let ended = try await storage.jobs.wait(job.id)
            #expect(ended.state == .succeeded, "step \(step): flatten \(ended); \(context)")
        } catch {
            let message = (error as? DepotError)?.message ?? "\(error)"
            #expect(message.contains("stands alone"), "step \(step): \(message); \(context)")
        }
    }

    func deleteVolume(_ name: String, _ own: [String], _ step: Int) async throws {
        let record = try #require(try await fixture.catalog.volume(poolId: 1, name: name))
        await storage.openVolumes.close(record.id!)  // its LUNs unmapped
        do {
            try await storage.deleteVolume(ref(name), force: true)
            model.volumes[name] = nil
            for key in own { model.snapshots[key] = nil }
        } catch {
            let message = (error as? DepotError)?.message ?? "\(error)"
            #expect(message.contains("clone"), "step \(step): \(message); \(context)")
        }
    }

    func imagesPassQemuImgCheck() throws {
        for file in fixture.files(in: "default") where file.hasSuffix(".qcow2") {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/qemu-img")
            process.arguments = ["check", "-U", fixture.root + "/pools/default/" + file]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            // Open images hold unflushed tables: leaks (3) are allowed, corruption (2) never.
            #expect(process.terminationStatus != 2 && !output.contains("ERROR"), "\(file): \(output); \(context)")
        }
    }
}

/// SplitMix64: small, seeded, reproducible.
struct SplitMix {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}
