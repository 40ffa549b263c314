import DepotCore
import DepotInitiator
import Foundation

/// `depot-bench fuzz-net` (make fuzz-net): a black-box network fuzzer. It
/// starts a depotd, then `workers` threads open connection after connection
/// to a target that admits anyone and send hostile traffic of every kind
/// (`HostileScenarios`: login — hostile CHAP exchanges against the healthy
/// target among them —, full feature PDUs, lying framing, the dispatch
/// table with hostile CDBs, Data-Out attacks, discovery, logout), with and
/// without digests, while a healthy CHAP session on another target writes
/// and reads back checksummed blocks the whole time. Pass: the daemon never
/// dies, every PDU it sends is well formed, its RSS stays under the limit,
/// and the healthy session sees zero errors and zero mismatches.
struct NetworkFuzzer {
    let depotd: String
    let seconds: Int
    let seed: UInt64
    var workers = 3
    /// The RSS bound; nil: the daemon's idle RSS plus, per fuzzing thread, the
    /// 64 MiB one connection's command buffers may hold (twice its 32 MiB
    /// budget: a VERIFY or ORWRITE holds data-out and medium), plus 96 MiB for
    /// the healthy session, the allocator's own retention and the rest.
    var rssLimit: UInt64?

    static let fuzzTarget = "iqn.2026-11.dev.depot:fuzz"
    static let healthyTarget = "iqn.2026-11.dev.depot:fuzz-healthy"
    static let healthyInitiator = "iqn.2026-11.dev.depot:fuzz-healthy-initiator"
    static let chap = (user: "healthy", secret: "fuzz-healthy-16c")

    func run() async throws {
        print("fuzz-net: seed \(seed), \(seconds) s, \(workers) fuzzing threads, depotd \(depotd)")
        let daemon = try await ScratchDaemon(depotd: depotd)
        defer { daemon.stop() }
        let client = daemon.client
        _ = try await client.createVolume(pool: "default", CreateVolumeRequest(name: "fuzz", sizeBytes: 16 << 20))
        _ = try await client.createVolume(
            pool: "default",
            CreateVolumeRequest(name: "fuzz-thick", sizeBytes: 4 << 20, provisioning: .thick, blockSize: 4096))
        _ = try await client.createVolume(pool: "default", CreateVolumeRequest(name: "healthy", sizeBytes: 64 << 20))
        _ = try await client.createTarget(CreateTargetRequest(iqn: Self.fuzzTarget, allowAnyInitiator: true))
        _ = try await client.mapLUN(Self.fuzzTarget, MapLUNRequest(volume: "default/fuzz"))
        _ = try await client.mapLUN(Self.fuzzTarget, MapLUNRequest(volume: "default/fuzz-thick"))
        _ = try await client.createTarget(CreateTargetRequest(iqn: Self.healthyTarget, allowAnyInitiator: false))
        _ = try await client.addACL(Self.healthyTarget, initiator: Self.healthyInitiator)
        _ = try await client.setCHAP(Self.healthyTarget, CHAPRequest(user: Self.chap.user, secret: Self.chap.secret))
        _ = try await client.mapLUN(Self.healthyTarget, MapLUNRequest(volume: "default/healthy"))
        try await Task.sleep(for: .seconds(1))
        let idle = daemon.memory()
        let rssLimit = self.rssLimit ?? idle + UInt64(workers) * (64 << 20) + (96 << 20)
        print(
            "RSS limit: \(ByteSize.format(rssLimit))\(self.rssLimit == nil ? " (idle \(ByteSize.format(idle)) + \(workers) × 64 MiB + 96 MiB)" : "")"
        )

        let probe = try RawInitiator.session(
            portal: daemon.portal, isid: [0x80, 0xF0, 0, 0, 0, 1], initiator: "iqn.2026-11.dev.depot:fuzz-probe",
            target: Self.fuzzTarget)
        let operations = try HostileSession(probe).supportedOperations()
        _ = try? probe.logout()

        let state = FuzzState()
        let deadline = ContinuousClock.now + .seconds(seconds)
        let portal = daemon.portal
        let seed = self.seed
        let healthy = Thread { Self.healthyLoop(portal: portal, seed: seed, state: state, until: deadline) }
        healthy.stackSize = 1 << 22
        healthy.start()
        for w in 0..<workers {
            let thread = Thread {
                Self.fuzzLoop(
                    portal: portal, worker: w, seed: seed &+ UInt64(w) &* 0x9E37_79B9, operations: operations,
                    state: state, until: deadline)
            }
            thread.stackSize = 1 << 22
            thread.start()
        }
        var samples: [(Int, UInt64)] = []
        var peak = idle
        var died = false
        let start = ContinuousClock.now
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(1))
            guard daemon.process.isRunning else {
                died = true
                break
            }
            let rss = daemon.memory()
            peak = max(peak, rss)
            let elapsed = Int((ContinuousClock.now - start).components.seconds)
            if samples.isEmpty || elapsed - samples.last!.0 >= max(1, seconds / 10) { samples.append((elapsed, rss)) }
        }
        state.stop()
        while state.running > 0 { try await Task.sleep(for: .milliseconds(100)) }
        let end = daemon.process.isRunning ? daemon.memory() : 0
        let hwm = daemon.process.isRunning ? daemon.memory("VmHWM") : 0
        let s = state.snapshot()
        print(
            "connections: \(s.connections) (\(s.byScenario.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))"
        )
        print("hostile PDUs and commands sent: \(s.pdus); connections the target closed: \(s.closed)")
        print("malformed answers: \(s.problems.count)\(s.problems.isEmpty ? "" : "; first: \(s.problems.prefix(5))")")
        print(
            "healthy CHAP session: \(s.healthyOps) verified write+read pairs, \(s.healthyErrors) errors, \(s.healthyMismatches) mismatches\(s.firstHealthyError.map { "; first error: \($0)" } ?? "")"
        )
        print(
            "depotd RSS: idle \(ByteSize.format(idle)), peak \(ByteSize.format(max(peak, hwm))), at the end \(ByteSize.format(end)); over time: \(samples.map { "\($0.0)s \($0.1 >> 20) MiB" }.joined(separator: ", "))"
        )
        var failures: [String] = []
        if died {
            failures.append(
                "depotd DIED (\(daemon.process.terminationReason == .uncaughtSignal ? "signal" : "exit status") \(daemon.process.terminationStatus))"
            )
        }
        if !s.problems.isEmpty { failures.append("\(s.problems.count) malformed answers") }
        if s.healthyErrors > 0 || s.healthyMismatches > 0 || s.healthyOps == 0 {
            failures.append(
                "the healthy session saw \(s.healthyErrors) errors, \(s.healthyMismatches) mismatches in \(s.healthyOps) pairs"
            )
        }
        if max(peak, hwm) > rssLimit {
            failures.append("RSS peak \(ByteSize.format(max(peak, hwm))) over the \(ByteSize.format(rssLimit)) limit")
        }
        if failures.isEmpty {
            print("fuzz-net: PASS (seed \(seed), \(seconds) s)")
            print("fuzz-net: 1 passed, 0 failed")
        } else {
            print("fuzz-net: FAIL (seed \(seed)): \(failures.joined(separator: "; "))")
            print("fuzz-net: 0 passed, 1 failed")
            throw BenchError("fuzz-net failed")
        }
    }

    /// One fuzzing thread: a new connection per scenario until the deadline.
    static func fuzzLoop(
        portal: String, worker: Int, seed: UInt64, operations: [HostileCDBs.Operation], state: FuzzState,
        until deadline: ContinuousClock.Instant
    ) {
        state.started()
        defer { state.finished() }
        var rng = SeededRandom(seed: seed)
        var n = 0
        while ContinuousClock.now < deadline, !state.stopped {
            let scenario = rng.pick(HostileScenarios.Scenario.allCases)
            let scenarios = HostileScenarios(
                portal: portal, target: fuzzTarget, digests: rng.oneIn(3), chapTarget: healthyTarget)
            let isid: [UInt8] = [
                0x80, UInt8(worker), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
                UInt8(truncatingIfNeeded: n), UInt8.random(in: 0...255, using: &rng),
            ]
            let report = scenarios.run(
                scenario, isid: isid, operations: operations, steps: Int.random(in: 5...60, using: &rng), using: &rng)
            state.record(scenario, report)
            n += 1
        }
    }

    /// The healthy session: CHAP login, then write a random-sized pattern at a
    /// random place and read it back, over and over; reconnects never.
    static func healthyLoop(portal: String, seed: UInt64, state: FuzzState, until deadline: ContinuousClock.Instant) {
        state.started()
        defer { state.finished() }
        var rng = SeededRandom(seed: seed ^ 0xFEED)
        do {
            let raw = try RawInitiator(portal: portal, isid: [0x80, 0xEE, 0, 0, 0, 1], timeout: 30)
            let login = try raw.login(initiator: healthyInitiator, target: healthyTarget, chap: chap)
            guard login.bhs[36] == 0 else {
                throw InitiatorError("CHAP login refused: \(login.bhs[36])/\(login.bhs[37])")
            }
            // The power-on unit attention every new nexus meets first.
            _ = try raw.run([0, 0, 0, 0, 0, 0])
            var round: UInt32 = 0
            while ContinuousClock.now < deadline, !state.stopped {
                round &+= 1
                let blocks = Int.random(in: 1...128, using: &rng)
                let lba = UInt32.random(in: 0...UInt32((64 << 20) / 512 - 128), using: &rng)
                var pattern = rng.bytes(blocks * 512)
                pattern.replaceSubrange(0..<4, with: withUnsafeBytes(of: round.bigEndian) { Array($0) })
                let status = try raw.writeBlocks(lba: lba, pattern, immediate: rng.oneIn(2) ? pattern.count : 4096)
                guard status == 0 else {
                    state.healthy(error: "write status \(status) at LBA \(lba)")
                    continue
                }
                guard let back = try raw.readBlocks(lba: lba, length: pattern.count) else {
                    state.healthy(error: "read not GOOD at LBA \(lba)")
                    continue
                }
                state.healthy(ok: back == pattern)
            }
            _ = try? raw.logout()
        } catch {
            state.healthy(error: "\(error)")
        }
    }
}

/// What the fuzzing and healthy threads report, under a lock.
final class FuzzState: @unchecked Sendable {
    struct Snapshot {
        var connections = 0
        var pdus = 0
        var closed = 0
        var byScenario: [String: Int] = [:]
        var problems: [String] = []
        var healthyOps = 0
        var healthyErrors = 0
        var healthyMismatches = 0
        var firstHealthyError: String?
    }

    private let lock = NSLock()
    private var s = Snapshot()
    private var stopFlag = false
    private var threads = 0

    var stopped: Bool { lock.withLock { stopFlag } }
    var running: Int { lock.withLock { threads } }
    func stop() { lock.withLock { stopFlag = true } }
    func started() { lock.withLock { threads += 1 } }
    func finished() { lock.withLock { threads -= 1 } }
    func snapshot() -> Snapshot { lock.withLock { s } }

    func record(_ scenario: HostileScenarios.Scenario, _ report: HostileScenarios.Report) {
        lock.withLock {
            s.connections += 1
            s.pdus += report.pdus
            if report.closedByTarget { s.closed += 1 }
            s.byScenario[scenario.rawValue, default: 0] += 1
            if s.problems.count < 100 { s.problems += report.problems }
        }
    }

    func healthy(ok: Bool) {
        lock.withLock {
            s.healthyOps += 1
            if !ok { s.healthyMismatches += 1 }
        }
    }

    func healthy(error: String) {
        lock.withLock {
            s.healthyErrors += 1
            if s.firstHealthyError == nil { s.firstHealthyError = error }
        }
    }
}
