import NIOConcurrencyHelpers

/// Group commit for a device's flushes (SYNCHRONIZE CACHE, FUA, WCE=0): a
/// flush asked for while one runs does not start its own at once; it waits
/// for the next, which then covers everyone who asked meanwhile. A flush
/// never counts on one that started before it was asked for, since that one
/// may not cover writes acknowledged just before the request.
final class FlushGroup: Sendable {
    private enum Turn: Sendable {
        case done((any Error)?)
        case lead
    }

    private struct State {
        /// Flush requests so far, numbered from 1.
        var requested: UInt64 = 0
        var running = false
        var waiting: [(number: UInt64, turn: CheckedContinuation<Turn, Never>)] = []
    }

    private let state = NIOLockedValueBox(State())

    /// Runs `sync` for this caller or waits for a run of it that started
    /// after this call; throws what that run threw.
    func flush(_ sync: @Sendable () async throws -> Void) async throws {
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let lead = state.withLockedValue { s -> Bool in
                s.requested += 1
                if s.running {
                    s.waiting.append((s.requested, continuation))
                    return false
                }
                s.running = true
                return true
            }
            if lead { continuation.resume(returning: .lead) }
        }
        switch turn {
        case .done(let failure):
            if let failure { throw failure }
        case .lead:
            // Every request numbered up to here was made before this sync starts.
            let covered = state.withLockedValue { $0.requested }
            var failure: (any Error)?
            do { try await sync() } catch { failure = error }
            let (finished, next) = state.withLockedValue {
                s -> ([CheckedContinuation<Turn, Never>], CheckedContinuation<Turn, Never>?) in
                let finished = s.waiting.filter { $0.number <= covered }.map(\.turn)
                s.waiting.removeAll { $0.number <= covered }
                guard !s.waiting.isEmpty else {
                    s.running = false
                    return (finished, nil)
                }
                // The longest waiting request leads the next sync, for all who wait.
                return (finished, s.waiting.removeFirst().turn)
            }
            for waiter in finished { waiter.resume(returning: .done(failure)) }
            next?.resume(returning: .lead)
            if let failure { throw failure }
        }
    }
}
