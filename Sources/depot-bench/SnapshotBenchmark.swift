import DepotCLI
import DepotCore
import DepotInitiator
import Foundation

/// `depot-bench snapshots`: snapshot and linked-clone latency on a 1 TiB
/// volume while an initiator writes at QD32, and the worst I/O latency the
/// initiator saw while the snapshots were taken (the switch drains the
/// writes in flight, so this is what a VM notices). Not a test: goals are
/// printed as met or MISSED.
struct SnapshotBenchmark {
    let depotd: String
    var snapshots = 20
    var clones = 50
    static let iqn = "iqn.2026-12.dev.depot:snapbench"

    func run() async throws {
        let daemon = try await ScratchDaemon(depotd: depotd)
        defer { daemon.stop() }
        let client = daemon.client
        // Thin 1 TiB volumes, fifty-one of them provisioned: a pool allowed that much overcommit.
        _ = try await client.createPool(CreatePoolRequest(name: "snap", maxOvercommit: 1000))
        _ = try await client.createVolume(pool: "snap", CreateVolumeRequest(name: "big", sizeBytes: 1 << 40))
        _ = try await client.createTarget(CreateTargetRequest(iqn: Self.iqn, allowAnyInitiator: true))
        _ = try await client.mapLUN(Self.iqn, MapLUNRequest(volume: "snap/big"))
        let load = WriteLoad(portal: daemon.portal, target: Self.iqn, depth: 32, spanBytes: 4 << 30)
        let loader = Thread { load.run() }
        loader.stackSize = 1 << 20
        loader.start()
        try await Task.sleep(for: .seconds(2))
        let ref = VolumeRef(pool: "snap", name: "big")
        var snapshotTimes: [Duration] = []
        var windows: [(ContinuousClock.Instant, ContinuousClock.Instant)] = []
        for i in 0..<snapshots {
            let start = ContinuousClock.now
            _ = try await client.createSnapshot(SnapshotRef(volume: ref, name: "s\(i)"))
            let end = ContinuousClock.now
            snapshotTimes.append(end - start)
            windows.append((start, end))
            try await Task.sleep(for: .milliseconds(250))
        }
        var cloneTimes: [Duration] = []
        let clonesStart = ContinuousClock.now
        for i in 0..<clones {
            let start = ContinuousClock.now
            _ = try await client.clone(
                SnapshotRef(volume: ref, name: "s0"), to: VolumeRef(pool: "snap", name: "c\(i)"), full: false,
                rateMiB: nil)
            cloneTimes.append(ContinuousClock.now - start)
        }
        let clonesTotal = ContinuousClock.now - clonesStart
        try await Task.sleep(for: .seconds(1))
        load.stop()
        while !load.finished { try await Task.sleep(for: .milliseconds(20)) }

        let ops = load.completed
        let all = ops.map { $0.end - $0.start }.sorted()
        let during = ops.filter { op in windows.contains { op.end >= $0.0 && op.start <= $0.1 } }
            .map { $0.end - $0.start }.sorted()
        print(
            "snapshots of a 1 TiB volume under QD32 4 KiB random writes (\(ops.count) writes, \(load.errors) errors):")
        print(
            "  snapshot create: p50 \(ms(percentile(snapshotTimes.sorted(), 50))), p99 \(ms(percentile(snapshotTimes.sorted(), 99))), "
                + "max \(ms(snapshotTimes.max() ?? .zero)) — goal p99 < 500 ms: \(percentile(snapshotTimes.sorted(), 99) < .milliseconds(500) ? "met" : "MISSED")"
        )
        let rest = snapshotTimes.dropFirst().sorted()
        print(
            "  the first (of the raw volume, with what the warm-up left dirty): \(ms(snapshotTimes.first ?? .zero)); the other \(rest.count): "
                + "p50 \(ms(percentile(Array(rest), 50))), p99 \(ms(percentile(Array(rest), 99)))")
        print(
            "  initiator write latency: p50 \(ms(percentile(all, 50))), p99 \(ms(percentile(all, 99))), max \(ms(all.last ?? .zero)); "
                + "worst while a snapshot was taken \(ms(during.last ?? .zero)) (\(during.count) writes overlapped the switches)"
        )
        print(
            "linked clones of the 1 TiB snapshot: \(clones) in \(ms(clonesTotal)) (p50 \(ms(percentile(cloneTimes.sorted(), 50))), "
                + "p99 \(ms(percentile(cloneTimes.sorted(), 99)))) — goal \(clones) in < 10 s: \(clonesTotal < .seconds(10) ? "met" : "MISSED")"
        )
        if load.errors > 0 { throw BenchError("the initiator saw \(load.errors) failed writes") }
    }

    func percentile(_ sorted: [Duration], _ p: Int) -> Duration {
        guard !sorted.isEmpty else { return .zero }
        return sorted[min(sorted.count - 1, sorted.count * p / 100)]
    }

    func ms(_ d: Duration) -> String {
        String(format: "%.1f ms", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }
}

/// QD`depth` random 4 KiB writes over the first `spanBytes` of LUN 0 on one
/// session, each write's start and end recorded.
final class WriteLoad: @unchecked Sendable {
    struct Op {
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
    }

    let portal: String
    let target: String
    let depth: Int
    let spanBytes: Int
    private let lock = NSLock()
    private var ops: [Op] = []
    private var stopping = false
    private var done = false
    private(set) var errors = 0

    init(portal: String, target: String, depth: Int, spanBytes: Int) {
        self.portal = portal
        self.target = target
        self.depth = depth
        self.spanBytes = spanBytes
    }

    func stop() { lock.withLock { stopping = true } }
    var finished: Bool { lock.withLock { done } }
    var completed: [Op] { lock.withLock { ops } }

    func run() {
        defer { lock.withLock { done = true } }
        var started: [UInt32: ContinuousClock.Instant] = [:]
        let data = [UInt8](repeating: 0x5A, count: 4096)
        do {
            let raw = try RawInitiator.session(
                portal: portal, isid: [0x80, 0, 0, 0, 0x5E, 0x01], initiator: "iqn.2026-12.dev.depot:snapbench-load",
                target: target, timeout: 30)
            while true {
                let running = !lock.withLock { stopping }
                while running, started.count < depth {
                    let lba = UInt32(Int.random(in: 0..<(spanBytes / 4096)) * 8)
                    let tag = try raw.command(RawInitiator.write10(lba: lba, blocks: 8), write: 4096, data: data)
                    started[tag] = .now
                }
                if started.isEmpty { break }
                guard let pdu = try raw.receive() else { throw InitiatorError("connection closed") }
                if pdu.opcodeByte == 0x20, pdu.initiatorTaskTag == 0xFFFF_FFFF {
                    try raw.answer(ping: pdu)
                    continue
                }
                guard pdu.opcodeByte == 0x21, let start = started.removeValue(forKey: pdu.initiatorTaskTag) else {
                    continue
                }
                let end = ContinuousClock.now
                lock.withLock {
                    ops.append(Op(start: start, end: end))
                    if pdu.bhs[3] != 0 { errors += 1 }
                }
            }
            _ = try raw.logout()
        } catch {
            lock.withLock { errors += 1 }
            FileHandle.standardError.write(Data("write load: \(error)\n".utf8))
        }
    }
}
