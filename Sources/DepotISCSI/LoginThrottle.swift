import Foundation
import NIOConcurrencyHelpers

/// Failed logins per initiator name and source address: after `limit`
/// authentication or authorization failures of one pair within `window`,
/// that pair's logins are refused (02/01) for `lockout` without their
/// secret being checked. Another address, or another initiator name, is not
/// affected. `limit` 0 turns it off.
public final class LoginThrottle: Sendable {
    public let limit: Int
    public let window: TimeInterval
    public let lockout: TimeInterval
    /// Pairs tracked at most; past it the stalest is forgotten (a flood of
    /// invented names cannot grow the daemon without end).
    static let capacity = 10_000

    struct Record {
        var failures: [Date]
        var lockedUntil: Date?
        var last: Date
        /// Whether a refusal of the current lockout has been reported (one audit line per lockout).
        var refusalReported = false
    }

    private let records = NIOLockedValueBox<[String: Record]>([:])

    public init(limit: Int = 5, window: TimeInterval = 60, lockout: TimeInterval = 60) {
        self.limit = max(0, limit)
        self.window = window
        self.lockout = lockout
    }

    static func key(_ initiator: String, _ address: String) -> String { initiator.lowercased() + "\u{0}" + address }

    /// Seconds the pair is still locked out for, or nil.
    public func lockedFor(initiator: String, address: String, now: Date = Date()) -> Int? {
        guard limit > 0 else { return nil }
        return records.withLockedValue { all -> Int? in
            guard let until = all[Self.key(initiator, address)]?.lockedUntil, until > now else { return nil }
            return max(1, Int(until.timeIntervalSince(now).rounded(.up)))
        }
    }

    /// Whether a refusal during the pair's lockout is the first (to be
    /// audited): a client retrying while locked out cannot flood the log.
    public func firstRefusal(initiator: String, address: String) -> Bool {
        records.withLockedValue { all -> Bool in
            let key = Self.key(initiator, address)
            guard var record = all[key], !record.refusalReported else { return false }
            record.refusalReported = true
            all[key] = record
            return true
        }
    }

    /// Counts a failure; true when it starts a lockout.
    @discardableResult
    public func fail(initiator: String, address: String, now: Date = Date()) -> Bool {
        guard limit > 0 else { return false }
        let key = Self.key(initiator, address)
        return records.withLockedValue { all -> Bool in
            var record = all[key] ?? Record(failures: [], lockedUntil: nil, last: now)
            record.failures = record.failures.filter { now.timeIntervalSince($0) < window } + [now]
            if record.failures.count > limit { record.failures.removeFirst(record.failures.count - limit) }
            record.last = now
            var locked = false
            if record.failures.count >= limit, (record.lockedUntil ?? .distantPast) <= now {
                record.lockedUntil = now.addingTimeInterval(lockout)
                record.failures = []
                record.refusalReported = false
                locked = true
            }
            all[key] = record
            if all.count > Self.capacity, let stale = all.min(by: { $0.value.last < $1.value.last }) {
                all[stale.key] = nil
            }
            return locked
        }
    }
}

/// A refused login, as the audit log and the metrics tell it.
public struct LoginFailure: Sendable {
    public let initiator: String
    public let address: String
    public let target: String
    /// `authentication`, `authorization` or `locked-out`.
    public let reason: String
    public let detail: String
}
