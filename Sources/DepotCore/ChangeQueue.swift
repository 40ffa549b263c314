import Synchronization

/// Runs a manager's check-then-act sections one at a time, in arrival order.
///
/// The managers are actors and reach the catalog through GRDB's async API,
/// so an actor method suspends at every catalog call and another call may
/// run in between (actor reentrancy). A section that checks and then acts
/// on what it checked (a name is free, the pool admits the size, then the
/// row that reserves it) enters the queue first, so no other section sees
/// the state between its check and its act. Long file work (eager zeroing,
/// a shrink's scan) runs outside any section: it holds a row or a busy mark
/// instead, and a second change to that volume is refused, not queued.
public final class ChangeQueue: Sendable {
    private struct State {
        var busy = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    public init() {}

    /// Runs `body` when every section that entered before has left.
    public func run<T, E: Error>(
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws(E) -> T
    ) async throws(E) -> T {
        await enter()
        defer { leave() }
        return try await body()
    }

    private func enter() async {
        await withCheckedContinuation { (turn: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state in
                if state.busy {
                    state.waiting.append(turn)
                    return false
                }
                state.busy = true
                return true
            }
            if now { turn.resume() }
        }
    }

    private func leave() {
        // The turn passes straight to the next section: `busy` stays set.
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.busy = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
