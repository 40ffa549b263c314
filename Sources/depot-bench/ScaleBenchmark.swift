import DepotCore
import DepotInitiator
import Foundation

/// `depot-bench scale` (make bench-scale): many targets and sessions at once
/// against a release depotd, with PDU-level initiators on their own threads.
///  1. `idle` sessions log in and sit idle: depotd's RSS (goal < 96 MiB for 64).
///  2. `targets` sessions, one per target, log in at the same moment: time
///     until the last is in full feature phase (goal < 5 s for 256).
///  3. `soak` sessions run 4 KiB reads and writes at queue depth `depth` for
///     `seconds`; every block read is checked against the last pattern written
///     there (goal: zero errors, zero mismatches; RSS peak < 128 MiB).
struct ScaleBenchmark {
    let depotd: String
    var targets = 256
    var idle = 64
    var soak = 64
    var depth = 32
    var seconds = 600
    static let volumeBytes = 16 << 20

    func run() async throws {
        let daemon = try await ScratchDaemon(depotd: depotd)
        defer { daemon.stop() }
        let client = daemon.client
        _ = try await client.createPool(CreatePoolRequest(name: "scale"))
        let setUpStart = ContinuousClock.now
        for i in 0..<max(targets, idle, soak) {
            _ = try await client.createVolume(
                pool: "scale", CreateVolumeRequest(name: "v\(i)", sizeBytes: UInt64(Self.volumeBytes)))
            _ = try await client.createTarget(CreateTargetRequest(iqn: Self.iqn(i), allowAnyInitiator: true))
            _ = try await client.mapLUN(Self.iqn(i), MapLUNRequest(volume: "scale/v\(i)"))
        }
        print(
            "set-up: \(max(targets, idle, soak)) thin volumes, targets and LUN maps in \(format(ContinuousClock.now - setUpStart))"
        )

        // 1. Idle sessions.
        let idleRun = Storm(count: idle, portal: daemon.portal)
        try idleRun.run()
        try await Task.sleep(for: .seconds(2))
        let idleRSS = daemon.memory()
        idleRun.logoutAll()
        print(
            "idle: \(idle) sessions logged in, depotd RSS \(ByteSize.format(idleRSS)) — goal < 96 MiB: \(idleRSS < 96 << 20 ? "met" : "MISSED")"
        )

        // 2. Login storm.
        let storm = Storm(count: targets, portal: daemon.portal)
        let elapsed = try storm.run()
        let stormRSS = daemon.memory()
        storm.logoutAll()
        print(
            "storm: \(targets) sessions to \(targets) targets logged in at once in \(format(elapsed)) (depotd RSS \(ByteSize.format(stormRSS))) — goal < 5 s: \(elapsed < .seconds(5) ? "met" : "MISSED")"
        )

        // 3. Soak.
        let result = try Soak(sessions: soak, depth: depth, seconds: seconds, portal: daemon.portal).run()
        let peak = daemon.memory("VmHWM")
        let verdict = result.errors == 0 && result.mismatches == 0 && result.completed > 0
        print(
            "soak: \(soak) sessions × QD\(depth), 4 KiB 50/50 read/write, \(seconds) s: \(result.completed) commands "
                + "(\(result.completed / max(seconds, 1)) IOPS), \(result.reads) reads checked, \(result.errors) errors, \(result.mismatches) mismatches — goal zero errors and mismatches: \(verdict ? "met" : "MISSED")"
        )
        if let first = result.firstError { print("  first error: \(first)") }
        print(
            "depotd peak RSS over the run: \(ByteSize.format(peak)) — goal < 128 MiB: \(peak < 128 << 20 ? "met" : "MISSED")"
        )
        if !verdict { throw BenchError("soak failed") }
    }

    static func iqn(_ i: Int) -> String { "iqn.2026-11.dev.depot:scale\(i)" }
    static func initiator(_ i: Int) -> String { "iqn.2026-11.dev.depot:bench-initiator\(i)" }
    static func isid(_ i: Int) -> [UInt8] {
        [0x80, 0x42, UInt8(i >> 16 & 0xFF), UInt8(i >> 8 & 0xFF), UInt8(i & 0xFF), 0x01]
    }

    func format(_ d: Duration) -> String {
        String(format: "%.2f s", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }
}

/// `count` sessions (session i logs into target i), each on its own thread,
/// all released at the same instant.
final class Storm: @unchecked Sendable {
    let count: Int
    let portal: String
    private let lock = NSLock()
    private var sessions: [RawInitiator] = []
    private var failures: [String] = []

    init(count: Int, portal: String) {
        self.count = count
        self.portal = portal
    }

    /// Logs every session in (and past the power-on unit attention); the time from release to the last login.
    @discardableResult
    func run() throws -> Duration {
        let ready = DispatchGroup()
        let done = DispatchGroup()
        let go = DispatchSemaphore(value: 0)
        for i in 0..<count {
            ready.enter()
            done.enter()
            let thread = Thread {
                ready.leave()
                go.wait()
                defer { done.leave() }
                do {
                    let raw = try RawInitiator.session(
                        portal: self.portal, isid: ScaleBenchmark.isid(i), initiator: ScaleBenchmark.initiator(i),
                        target: ScaleBenchmark.iqn(i), timeout: 30)
                    self.lock.withLock { self.sessions.append(raw) }
                } catch {
                    self.lock.withLock { self.failures.append("session \(i): \(error)") }
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        ready.wait()
        let start = ContinuousClock.now
        for _ in 0..<count { go.signal() }
        done.wait()
        let elapsed = ContinuousClock.now - start
        if let failure = failures.first {
            throw BenchError("\(failures.count) of \(count) logins failed; first: \(failure)")
        }
        return elapsed
    }

    func logoutAll() {
        for raw in sessions { _ = try? raw.logout() }
        sessions.removeAll()
    }
}

/// Mixed 4 KiB reads and writes, `depth` in flight per session, each session
/// on its own volume. A block is never read and written at once, so a read
/// must return exactly the last pattern written there (or zeros).
final class Soak: @unchecked Sendable {
    struct Result {
        var completed = 0
        var reads = 0
        var errors = 0
        var mismatches = 0
        var firstError: String?
    }

    let sessions: Int
    let depth: Int
    let seconds: Int
    let portal: String
    private let lock = NSLock()
    private var total = Result()

    init(sessions: Int, depth: Int, seconds: Int, portal: String) {
        self.sessions = sessions
        self.depth = depth
        self.seconds = seconds
        self.portal = portal
    }

    func run() throws -> Result {
        let done = DispatchGroup()
        let deadline = ContinuousClock.now + .seconds(seconds)
        for i in 0..<sessions {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                let result = self.session(i, until: deadline)
                self.lock.withLock {
                    self.total.completed += result.completed
                    self.total.reads += result.reads
                    self.total.errors += result.errors
                    self.total.mismatches += result.mismatches
                    if self.total.firstError == nil { self.total.firstError = result.firstError }
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        done.wait()
        return total
    }

    /// The 4 KiB a write of generation `generation` puts in `slot`: 16-byte
    /// records naming session, slot, generation and a check word.
    static func pattern(session: Int, slot: Int, generation: UInt32) -> [UInt8] {
        guard generation > 0 else { return [UInt8](repeating: 0, count: 4096) }
        let words: [UInt32] = [
            UInt32(session), UInt32(slot), generation,
            UInt32(session) &* 2_654_435_761 ^ UInt32(slot) &* 40503 ^ generation,
        ]
        var record: [UInt8] = []
        for w in words { record += [UInt8(w >> 24), UInt8(w >> 16 & 0xFF), UInt8(w >> 8 & 0xFF), UInt8(w & 0xFF)] }
        return Array((0..<256).map { _ in record }.joined())
    }

    private func session(_ index: Int, until deadline: ContinuousClock.Instant) -> Result {
        var result = Result()
        func fail(_ why: String) {
            result.errors += 1
            if result.firstError == nil { result.firstError = "session \(index): \(why)" }
        }
        let slots = ScaleBenchmark.volumeBytes / 4096
        var generation = [UInt32](repeating: 0, count: slots)
        var busy = [Bool](repeating: false, count: slots)
        struct Op {
            var slot: Int
            var write: Bool
            var generation: UInt32
            var data: [UInt8] = []
        }
        var inFlight: [UInt32: Op] = [:]
        var rng = SystemRandomNumberGenerator()
        do {
            let raw = try RawInitiator.session(
                portal: portal, isid: ScaleBenchmark.isid(10_000 + index), initiator: ScaleBenchmark.initiator(index),
                target: ScaleBenchmark.iqn(index),
                timeout: 30)
            while true {
                let running = ContinuousClock.now < deadline
                while running, inFlight.count < depth {
                    var slot = Int.random(in: 0..<slots, using: &rng)
                    while busy[slot] { slot = Int.random(in: 0..<slots, using: &rng) }
                    busy[slot] = true
                    let lba = UInt32(slot * 8)
                    if Bool.random(using: &rng) {
                        let next = generation[slot] &+ 1
                        let tag = try raw.command(
                            RawInitiator.write10(lba: lba, blocks: 8), write: 4096,
                            data: Self.pattern(session: index, slot: slot, generation: next))
                        inFlight[tag] = Op(slot: slot, write: true, generation: next)
                    } else {
                        let tag = try raw.command(RawInitiator.read10(lba: lba, blocks: 8), read: 4096)
                        inFlight[tag] = Op(slot: slot, write: false, generation: generation[slot])
                    }
                }
                if inFlight.isEmpty { break }
                guard let pdu = try raw.receive() else { throw InitiatorError("connection closed") }
                switch pdu.opcodeByte {
                case 0x20 where pdu.initiatorTaskTag == 0xFFFF_FFFF:
                    try raw.answer(ping: pdu)
                    continue
                case 0x25, 0x21:
                    break
                default:
                    fail("unexpected PDU opcode \(pdu.opcodeByte)")
                    continue
                }
                guard var op = inFlight[pdu.initiatorTaskTag] else {
                    fail("answer for unknown task \(pdu.initiatorTaskTag)")
                    continue
                }
                if pdu.opcodeByte == 0x25 {
                    op.data += pdu.data
                    inFlight[pdu.initiatorTaskTag] = op
                    if pdu.flags & 0x01 == 0 { continue }
                }
                inFlight[pdu.initiatorTaskTag] = nil
                busy[op.slot] = false
                result.completed += 1
                guard pdu.bhs[3] == 0 else {
                    fail("status \(pdu.bhs[3]) for a \(op.write ? "write" : "read") of slot \(op.slot)")
                    continue
                }
                if op.write {
                    generation[op.slot] = op.generation
                } else {
                    result.reads += 1
                    if op.data != Self.pattern(session: index, slot: op.slot, generation: op.generation) {
                        result.mismatches += 1
                        if result.firstError == nil {
                            result.firstError =
                                "session \(index): slot \(op.slot) does not hold generation \(op.generation)"
                        }
                    }
                }
            }
            _ = try raw.logout()
        } catch {
            fail("\(error)")
        }
        return result
    }
}
