import NIOConcurrencyHelpers
import NIOPosix
import Synchronization

/// Persistent reservations of one volume (SPC-4 §5.12), shared by every LU
/// object that serves it. With APTPL set, each change is stored through
/// `persist` before the command completes, so registrations and the
/// reservation survive a restart of the daemon (SPC-4 §5.12.4).
public final class PersistentReservations: Sendable {
    private let state: NIOLockedValueBox<PRState>
    /// Stores the state (nil: nothing to keep); throws when it cannot.
    public typealias Persist = @Sendable (PRState?) throws -> Void
    private let persist: Persist?
    /// A reservation is in force: the per-command check reads only this
    /// while there is none (the common case).
    private let reserved: Synchronization.Atomic<Bool>

    public init(restoring saved: PRState? = nil, persist: Persist? = nil) {
        self.state = NIOLockedValueBox(saved ?? PRState())
        self.persist = persist
        self.reserved = Synchronization.Atomic(saved?.reservation != nil)
    }

    public var current: PRState { state.withLockedValue { $0 } }

    /// Whether any persistent reservation is in force (one atomic load).
    var inForce: Bool { reserved.load(ordering: .acquiring) }

    func conflicts(_ access: PRAccess, from nexus: ITNexus) -> Bool {
        guard reserved.load(ordering: .acquiring) else { return false }
        return state.withLockedValue { state in
            state.reservation != nil && state.conflicts(access, from: nexus)
        }
    }

    /// Whether another nexus holds a persistent reservation (RESERVE(6)/(10)
    /// then conflicts: SPC-4 §5.12.3).
    func reservedByOther(than nexus: ITNexus) -> Bool {
        state.withLockedValue { $0.reservation != nil && !$0.isHolder(nexus) }
    }

    func report(_ cdb: CDB) -> SCSIResult {
        state.withLockedValue { $0.report(cdb) }
    }

    /// One PERSISTENT RESERVE OUT: the transition and, when it is to persist,
    /// the catalog write happen under the lock on the thread pool, so stored
    /// states follow each other in the order they were made.
    func out(_ cdb: CDB, _ data: [UInt8], from nexus: ITNexus) async throws -> (SCSIResult, [PRAttention]) {
        let request: PROutRequest
        do { request = try PROutRequest.parse(cdb, data) } catch { return (error.result, []) }
        let persist = self.persist
        return try await NIOThreadPool.singleton.runIfActive { [self] in
            try state.withLockedValue { current -> (SCSIResult, [PRAttention]) in
                var next = current
                let attentions: [PRAttention]
                do { attentions = try next.apply(request, from: nexus) } catch let refusal as PRFailure {
                    return (refusal.result, [])
                }
                if next != current, let persist, next.aptpl || current.aptpl {
                    try persist(next.aptpl && !next.isEmpty ? next : nil)
                }
                current = next
                reserved.store(next.reservation != nil, ordering: .releasing)
                return (.ok(), attentions)
            }
        }
    }
}

extension SCSISense {
    /// PERSISTENT RESERVE OUT sense codes (SPC-4 §5.12, table of ASC/ASCQ assignments).
    static let invalidReleaseOfPersistentReservation = SCSISense(key: illegalRequest, asc: 0x26, ascq: 0x04)
    static let reservationsPreempted = SCSISense(key: unitAttention, asc: 0x2A, ascq: 0x03)
    static let reservationsReleased = SCSISense(key: unitAttention, asc: 0x2A, ascq: 0x04)
    static let registrationsPreempted = SCSISense(key: unitAttention, asc: 0x2A, ascq: 0x05)
}
