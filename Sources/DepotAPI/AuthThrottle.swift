import Foundation
import Synchronization

/// Failed API authentications per client address: after `limit` failures
/// within `window`, every further attempt from that address is answered 429
/// (with Retry-After) without looking at its token, until the oldest of
/// those failures is `window` old. Other addresses are never slowed.
public final class AuthThrottle: Sendable {
    public let limit: Int
    public let window: TimeInterval
    /// Addresses tracked at most (a flood from many addresses forgets the stalest, never grows without bound).
    static let capacity = 10_000
    private let failures = Mutex<[String: [Date]]>([:])
    /// Per address, the oldest failure of the window whose 429s were already
    /// written to the audit log: one line per lockout, so a client hammering
    /// while refused cannot rotate the log's history away.
    private let recorded = Mutex<[String: Date]>([:])

    public init(limit: Int = 5, window: TimeInterval = 60) {
        self.limit = limit
        self.window = window
    }

    /// Seconds the address must wait, or nil when it may try now.
    public func retryAfter(_ address: String, now: Date = Date()) -> Int? {
        guard limit > 0 else { return nil }  // 0: never
        return failures.withLock { all -> Int? in
            guard let times = all[address] else { return nil }
            let recent = times.filter { now.timeIntervalSince($0) < window }
            all[address] = recent.isEmpty ? nil : recent
            guard recent.count >= limit, let oldest = recent.first else { return nil }
            return max(1, Int((window - now.timeIntervalSince(oldest)).rounded(.up)))
        }
    }

    /// Whether the 429 answered to `address` now is the first of its lockout (to be audited).
    public func firstRefusal(_ address: String, now: Date = Date()) -> Bool {
        let oldest = failures.withLock { all in
            all[address]?.first { now.timeIntervalSince($0) < window }
        }
        guard let oldest else { return false }
        return recorded.withLock { recorded in
            if recorded[address] == oldest { return false }
            recorded[address] = oldest
            if recorded.count > Self.capacity {
                recorded = recorded.filter { now.timeIntervalSince($0.value) < window }
            }
            return true
        }
    }

    public func fail(_ address: String, now: Date = Date()) {
        guard limit > 0 else { return }
        failures.withLock { all in
            var recent = (all[address] ?? []).filter { now.timeIntervalSince($0) < window }
            recent.append(now)
            // Only the last `limit` matter for the rule.
            if recent.count > limit { recent.removeFirst(recent.count - limit) }
            all[address] = recent
            if all.count > Self.capacity {
                let stale = all.min { ($0.value.last ?? .distantPast) < ($1.value.last ?? .distantPast) }
                if let stale { all[stale.key] = nil }
            }
        }
    }
}
