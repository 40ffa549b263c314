import DepotBlock
import NIOConcurrencyHelpers

/// Group commit for a device's flushes (SYNCHRONIZE CACHE, FUA, WCE=0): a
/// flush asked for while one runs does not start its own; it waits for the
/// next, which then covers everyone who asked meanwhile. A flush never
/// counts on one that started before it was asked for, since that one may
/// not cover writes acknowledged just before the request: each sync covers
/// exactly the requests taken, under the lock, right before it starts.
///
/// The syncs run one after another on one thread at a time, which `start`
/// provides (a thread of the I/O pool) when none is running; the callbacks
/// run there, as each sync ends — a caller on an event loop answers from
/// there without a task in between (`request`).
final class FlushGroup: Sendable {
    typealias Done = @Sendable ((any Error)?) -> Void

    private struct State {
        var waiting: [Done] = []
        var running = false
    }

    private let state = NIOLockedValueBox(State())
    /// Runs its argument where it may block; false: not at all (shut down).
    private let start: @Sendable (@escaping @Sendable (Bool) -> Void) -> Void
    private let sync: @Sendable () throws -> Void

    init(
        start: @escaping @Sendable (@escaping @Sendable (Bool) -> Void) -> Void,
        sync: @escaping @Sendable () throws -> Void
    ) {
        self.start = start
        self.sync = sync
    }

    /// Asks for a sync that starts after this call; `done` gets its outcome.
    func request(_ done: @escaping Done) {
        let lead = state.withLockedValue { s -> Bool in
            s.waiting.append(done)
            if s.running { return false }
            s.running = true
            return true
        }
        if lead { start { self.drain(active: $0) } }
    }

    /// `request`, awaited; throws what the sync threw.
    func flush() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            request { failure in
                if let failure { continuation.resume(throwing: failure) } else { continuation.resume() }
            }
        }
    }

    /// Syncs for the requests made so far, then for those made meanwhile,
    /// until none waits.
    private func drain(active: Bool) {
        while true {
            let batch = state.withLockedValue { s -> [Done] in
                defer { s.waiting = [] }
                if s.waiting.isEmpty { s.running = false }
                return s.waiting
            }
            guard !batch.isEmpty else { return }
            var failure: (any Error)?
            if active {
                do { try sync() } catch { failure = error }
            } else {
                failure = BlockDeviceError.io("the I/O threads are shut down")
            }
            for done in batch { done(failure) }
        }
    }
}
