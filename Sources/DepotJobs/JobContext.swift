import DepotCore
import Foundation
import Synchronization

/// What a running job's work sees: where to report progress, whether it was
/// cancelled, and its throttle. `advance` is called from the job's blocking
/// thread after each piece of work; it sleeps there to hold the rate and
/// throws `JobCancelled` once the job is cancelled, so the work stops at a
/// piece boundary (where it is consistent).
public final class JobContext: Sendable {
    public let id: String
    /// The job's own parameters, as it stored them.
    public let parameters: String
    let cancelFlag = CancelFlag()
    private let done = Atomic<UInt64>(0)
    private let total: Atomic<UInt64>
    /// Bytes per second; 0 is no limit.
    public let limit: UInt64
    private let started = ContinuousClock.now
    /// Bytes counted against the throttle (since `started`).
    private let throttled = Atomic<UInt64>(0)

    init(id: String, parameters: String, total: UInt64, limit: UInt64) {
        self.id = id
        self.parameters = parameters
        self.total = Atomic(total)
        self.limit = limit
    }

    public var bytesDone: UInt64 { done.load(ordering: .relaxed) }
    public var bytesTotal: UInt64 { total.load(ordering: .relaxed) }
    public var isCancelled: Bool { cancelFlag.isSet }

    /// The work found its size (a copy counts its extents first).
    public func setTotal(_ bytes: UInt64) { total.store(bytes, ordering: .relaxed) }

    /// `bytes` more done (`moved` of them copied, which is what the
    /// throttle counts). Blocking: sleeps to hold the rate.
    public func advance(_ bytes: UInt64, moved: UInt64? = nil) throws {
        done.add(bytes, ordering: .relaxed)
        if cancelFlag.isSet { throw JobCancelled() }
        guard limit > 0 else { return }
        let counted = throttled.add(moved ?? bytes, ordering: .relaxed).newValue
        let due = Double(counted) / Double(limit)
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        if due > elapsed { Thread.sleep(forTimeInterval: min(due - elapsed, 5)) }
        if cancelFlag.isSet { throw JobCancelled() }
    }

    /// Work that moves through its object in order (a pull, a copy by guest
    /// offset): done up to `offset`, `moved` bytes copied on the way there.
    public func advance(to offset: UInt64, moved: UInt64) throws {
        let done = bytesDone
        try advance(offset > done ? offset - done : 0, moved: moved)
    }

    /// Throws `JobCancelled` if the job was cancelled (between phases).
    public func checkCancelled() throws {
        if cancelFlag.isSet { throw JobCancelled() }
    }
}

/// Thrown by `JobContext.advance` once its job is cancelled.
public struct JobCancelled: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "cancelled" }
}
