import DepotSCSI
import NIOConcurrencyHelpers

/// A logged-in session as `depot session list` shows it.
public struct SessionSnapshot: Sendable {
    public var id: Int
    public var initiator: String
    /// The target IQN, or nil for a discovery session.
    public var target: String?
    public var portal: String
    public var peer: String
    public var isid: String
    public var tsih: UInt16
    public var parameters: [String: String]
    public var commandsInFlight: Int
    public var loggedInAt: ContinuousClock.Instant
}

/// Live sessions, with a way to close each (forced target deletion).
public final class SessionRegistry: Sendable {
    private struct Entry: Sendable {
        var snapshot: SessionSnapshot
        let close: @Sendable () -> Void
        let requestLogout: @Sendable (Int) -> Void
        let commandsInFlight: @Sendable () -> Int
        /// The session's I_T nexus, and a way to abort its tasks on one LU.
        let nexus: ITNexus
        let abortTasks: @Sendable (LogicalUnit) async -> Void
        /// Where the session logged in, as login checked it: the directory's
        /// portal of its group and the peer's host.
        let access: Access
    }

    private let entries = NIOLockedValueBox<[Int: Entry]>([:])
    private let counter = NIOLockedValueBox<UInt16>(0)

    /// The next target session identifying handle (TSIH, RFC 7143 §11.12.6): never 0.
    func nextTSIH() -> UInt16 {
        counter.withLockedValue { value in
            value = value &+ 1 == 0 ? 1 : value &+ 1
            return value
        }
    }

    public init() {}

    func register(
        _ snapshot: SessionSnapshot, close: @escaping @Sendable () -> Void,
        requestLogout: @escaping @Sendable (Int) -> Void = { _ in },
        commandsInFlight: @escaping @Sendable () -> Int = { 0 }, nexus: ITNexus = .none,
        abortTasks: @escaping @Sendable (LogicalUnit) async -> Void = { _ in },
        access: Access = Access(portal: nil, host: "")
    ) {
        let entry = Entry(
            snapshot: snapshot, close: close, requestLogout: requestLogout, commandsInFlight: commandsInFlight,
            nexus: nexus, abortTasks: abortTasks, access: access)
        entries.withLockedValue { $0[snapshot.id] = entry }
    }

    /// Closes the live sessions of this initiator port (name and ISID) with
    /// `target` and waits, up to 5 s, until they are gone (their reservations
    /// released and tasks ended); returns how many there were.
    func reinstate(initiator: String, isid: String, target: String) async -> Int {
        let old = entries.withLockedValue { entries in
            entries.values.filter {
                $0.snapshot.initiator.lowercased() == initiator.lowercased() && $0.snapshot.isid == isid
                    && $0.snapshot.target == target
            }
        }
        for entry in old { entry.close() }
        await waitUntilGone(Set(old.map(\.snapshot.id)), within: .seconds(5))
        return old.count
    }

    /// Returns once none of `ids` is registered any more, or `limit` has passed.
    private func waitUntilGone(_ ids: Set<Int>, within limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while !ids.isEmpty, ContinuousClock.now < deadline {
            if entries.withLockedValue({ $0.keys.allSatisfy { !ids.contains($0) } }) { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The targets (lowercased IQNs) this initiator has sessions logged in to.
    func targets(of initiator: String) -> Set<String> {
        let name = initiator.lowercased()
        return entries.withLockedValue { entries in
            Set(
                entries.values.filter { $0.snapshot.initiator.lowercased() == name }.compactMap {
                    $0.snapshot.target?.lowercased()
                })
        }
    }

    func remove(_ id: Int) {
        _ = entries.withLockedValue { $0.removeValue(forKey: id) }
    }

    /// Every session, with its commands in flight read now.
    public var all: [SessionSnapshot] {
        entries.withLockedValue { Array($0.values) }.map { entry in
            var snapshot = entry.snapshot
            snapshot.commandsInFlight = entry.commandsInFlight()
            return snapshot
        }.sorted { $0.id < $1.id }
    }

    /// Asks every session to log out (Async Message, event 1) within `seconds`,
    /// then closes those still there; returns how many were asked.
    @discardableResult
    public func logoutAll(within seconds: Int) async -> Int {
        let chosen = entries.withLockedValue { Array($0.values) }
        chosen.forEach { $0.requestLogout(seconds) }
        let ids = Set(chosen.map(\.snapshot.id))
        await waitUntilGone(ids, within: .seconds(seconds))
        let left = entries.withLockedValue { $0.values.filter { ids.contains($0.snapshot.id) }.map(\.close) }
        left.forEach { $0() }
        return chosen.count
    }

    /// Aborts the tasks on `lu` of every session whose nexus `chosen` accepts
    /// and returns once they have ended (PREEMPT AND ABORT, SPC-4 §5.12.11.2.5).
    func abortTasks(on lu: LogicalUnit, where chosen: @Sendable (ITNexus) -> Bool) async {
        let aborters = entries.withLockedValue { $0.values.filter { chosen($0.nexus) }.map(\.abortTasks) }
        for abort in aborters { await abort(lu) }
    }

    /// What a login was admitted by: the portal (nil: one the directory does
    /// not know) and the initiator's host.
    public struct Access: Sendable {
        public var portal: String?
        public var host: String
    }

    /// Closes the sessions logged into a target that `stillAdmitted` no
    /// longer lets in (an ACL entry removed or narrowed, the target bound to
    /// other portals) and returns them. Access is checked at login; without
    /// this a revoked initiator would keep its LUNs until it logged out (LIO
    /// shuts down the sessions of a deleted node ACL the same way).
    @discardableResult
    func closeSessions(
        notAdmittedBy stillAdmitted: (_ target: String, _ initiator: String, _ access: Access) -> Bool
    ) -> [SessionSnapshot] {
        let chosen = entries.withLockedValue { entries in
            entries.values.filter { entry in
                guard let target = entry.snapshot.target else { return false }  // discovery
                return !stillAdmitted(target, entry.snapshot.initiator, entry.access)
            }
        }
        chosen.forEach { $0.close() }
        return chosen.map(\.snapshot)
    }

    /// Closes every connection of sessions logged into `target`; returns how many.
    @discardableResult
    public func closeSessions(of target: String) -> Int {
        let closers = entries.withLockedValue { $0.values.filter { $0.snapshot.target == target }.map(\.close) }
        closers.forEach { $0() }
        return closers.count
    }
}
