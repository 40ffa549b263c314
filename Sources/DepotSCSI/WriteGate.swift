import NIOConcurrencyHelpers

/// Orders an LU's atomic operations (COMPARE AND WRITE, WRITE ATOMIC)
/// against every other write: ordinary writes pass together (shared), an
/// atomic operation runs alone (exclusive). Writers waiting for exclusive
/// access hold back new shared entries, so a stream of writes cannot starve
/// them. The uncontended path is one lock round trip on entry and exit.
final class WriteGate: Sendable {
    private struct State {
        var shared = 0
        var exclusive = false
        var waitingShared: [CheckedContinuation<Void, Never>] = []
        var waitingExclusive: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())

    func shared<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let entered = state.withLockedValue { s -> Bool in
            guard !s.exclusive, s.waitingExclusive.isEmpty else { return false }
            s.shared += 1
            return true
        }
        if !entered {
            await withCheckedContinuation { c in
                let now = state.withLockedValue { s -> Bool in
                    if !s.exclusive, s.waitingExclusive.isEmpty {
                        s.shared += 1
                        return true
                    }
                    s.waitingShared.append(c)
                    return false
                }
                if now { c.resume() }
            }
        }
        defer { leaveShared() }
        return try await body()
    }

    func exclusive<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await withCheckedContinuation { c in
            let now = state.withLockedValue { s -> Bool in
                if !s.exclusive, s.shared == 0 {
                    s.exclusive = true
                    return true
                }
                s.waitingExclusive.append(c)
                return false
            }
            if now { c.resume() }
        }
        defer { leaveExclusive() }
        return try await body()
    }

    /// Enters shared without waiting, for a write made synchronously; false
    /// when an atomic operation runs or waits. A true must be paired with
    /// `leaveShared()`.
    func tryEnterShared() -> Bool {
        state.withLockedValue { s in
            guard !s.exclusive, s.waitingExclusive.isEmpty else { return false }
            s.shared += 1
            return true
        }
    }

    func leaveShared() {
        let next = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            s.shared -= 1
            guard s.shared == 0, !s.waitingExclusive.isEmpty else { return nil }
            s.exclusive = true
            return s.waitingExclusive.removeFirst()
        }
        next?.resume()
    }

    private func leaveExclusive() {
        let (next, released) = state.withLockedValue {
            s -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) in
            if !s.waitingExclusive.isEmpty { return (s.waitingExclusive.removeFirst(), []) }
            s.exclusive = false
            let released = s.waitingShared
            s.waitingShared = []
            s.shared += released.count
            return (nil, released)
        }
        next?.resume()
        for c in released { c.resume() }
    }
}
