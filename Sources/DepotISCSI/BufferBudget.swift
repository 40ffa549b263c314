import NIOConcurrencyHelpers

/// The bytes of command buffers one connection may hold at once: data-out
/// collected for writes and data-in read for reads, each up to the 32 MiB
/// of MAXIMUM TRANSFER LENGTH. Without it a peer could pipeline the whole
/// command window (128) plus immediate commands of 32 MiB reads of a sparse
/// LU and make the daemon hold gigabytes. A command takes its share before
/// its buffer exists and gives it back once its answer is written; commands
/// that would go past the limit wait their turn, first come first served.
final class BufferBudget: @unchecked Sendable {
    let limit: Int
    private let lock = NIOLock()
    private var used = 0
    private var waiting: [(bytes: Int, resume: CheckedContinuation<Void, Never>)] = []

    init(limit: Int) { self.limit = limit }

    /// What a command of `bytes` is charged: never more than the whole
    /// budget, so every command can run once the others are done.
    func charge(_ bytes: Int) -> Int { min(max(bytes, 0), limit) }

    /// Waits until `charge(bytes)` fits; returns what was taken.
    func take(_ bytes: Int) async -> Int {
        let n = charge(bytes)
        guard n > 0 else { return 0 }
        let now = lock.withLock { () -> Bool in
            if waiting.isEmpty, used + n <= limit {
                used += n
                return true
            }
            return false
        }
        if now { return n }
        await withCheckedContinuation { continuation in
            let resumeNow = lock.withLock { () -> Bool in
                if waiting.isEmpty, used + n <= limit {
                    used += n
                    return true
                }
                waiting.append((n, continuation))
                return false
            }
            if resumeNow { continuation.resume() }
        }
        return n
    }

    /// Gives back what `take` returned and lets waiting commands in, in order.
    func give(_ n: Int) {
        guard n > 0 else { return }
        let ready = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            used -= n
            var ready: [CheckedContinuation<Void, Never>] = []
            while let first = waiting.first, used + first.bytes <= limit {
                used += first.bytes
                ready.append(first.resume)
                waiting.removeFirst()
            }
            return ready
        }
        ready.forEach { $0.resume() }
    }

    /// Bytes taken now (tests).
    var inUse: Int { lock.withLock { used } }
}
