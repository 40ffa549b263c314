import Metrics

/// Data-path counters, rendered on the API's `/metrics` beside the pool
/// gauges: SCSI commands by the path that served them. A share of `general`
/// that stays high under plain I/O says the fast lane is declining (digests
/// on, FUA or write-through, reservations, page-cache misses, large writes).
enum ISCSIMetrics {
    static let fastLaneCommands = Counter(label: "depot_iscsi_commands_total", dimensions: [("path", "fast")])
    static let generalCommands = Counter(label: "depot_iscsi_commands_total", dimensions: [("path", "general")])

    /// `depot_iscsi_login_failures_total{target,reason}`: refused logins
    /// (`authentication`, `authorization`, `locked-out`). Rare, so the
    /// counter is looked up (the factory caches it) at each failure.
    static func loginFailure(target: String, reason: String) {
        Counter(label: "depot_iscsi_login_failures_total", dimensions: [("target", target), ("reason", reason)])
            .increment()
    }
}
