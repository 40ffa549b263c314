/// A pool's capacity figures and the admission rules built on them.
///
/// Semantics follow OpenStack Cinder's capacity filter and vSphere's datastore
/// alarms: `usedBytes` is what the filesystem really allocated (st_blocks),
/// `provisionedBytes` the sum of virtual sizes, overcommit is
/// provisioned / capacity and is bounded by `maxOvercommit`
/// (Cinder's `max_over_subscription_ratio`, default 20.0) for thin volumes;
/// thick volumes must fit in free space less the reserve
/// (Cinder's `reserved_percentage`).
public struct CapacityFigures: Sendable, Equatable {
    public var capacityBytes: UInt64
    public var usedBytes: UInt64
    public var provisionedBytes: UInt64
    /// What the filesystem under the pool still has for us (statvfs f_bavail),
    /// so a pool sharing a filesystem never promises more than is there.
    public var filesystemAvailableBytes: UInt64
    public var thresholds: CapacityThresholds

    public init(
        capacityBytes: UInt64, usedBytes: UInt64, provisionedBytes: UInt64,
        filesystemAvailableBytes: UInt64, thresholds: CapacityThresholds
    ) {
        self.capacityBytes = capacityBytes
        self.usedBytes = usedBytes
        self.provisionedBytes = provisionedBytes
        self.filesystemAvailableBytes = filesystemAvailableBytes
        self.thresholds = thresholds
    }

    public var freeBytes: UInt64 {
        let byCapacity = capacityBytes > usedBytes ? capacityBytes - usedBytes : 0
        return min(byCapacity, filesystemAvailableBytes)
    }

    public var reservedBytes: UInt64 {
        UInt64((Double(capacityBytes) * thresholds.reservedPercent / 100).rounded(.down))
    }

    public var overcommitRatio: Double {
        capacityBytes == 0 ? 0 : Double(provisionedBytes) / Double(capacityBytes)
    }

    public var usedPercent: Double {
        capacityBytes == 0 ? 100 : Double(usedBytes) / Double(capacityBytes) * 100
    }

    public var state: CapacityState {
        if usedPercent >= thresholds.criticalPercent { return .critical }
        if usedPercent >= thresholds.warnPercent { return .warning }
        return .ok
    }

    public var overprovisioned: Bool { provisionedBytes > capacityBytes }

    /// Decides whether `size` more bytes of `provisioning` may be added to the
    /// pool; the refusal names the figures it was decided on.
    public func admit(size: UInt64, provisioning: Provisioning, pool: String) throws(DepotError) {
        if provisioning.reservesSpace {
            let usable = freeBytes > reservedBytes ? freeBytes - reservedBytes : 0
            guard size <= usable else {
                throw .insufficientSpace(
                    "pool '\(pool)' cannot reserve \(ByteSize.describe(size)) for a \(provisioning.rawValue) volume: "
                        + "free \(ByteSize.describe(freeBytes)) less reserve \(ByteSize.format(reservedBytes)) "
                        + "(\(reservedBytes) bytes) leaves \(ByteSize.describe(usable))")
            }
        } else {
            // Both figures are the caller's: their sum may not fit 64 bits, which is
            // refused like any overcommit rather than trapping.
            let (total, overflow) = provisionedBytes.addingReportingOverflow(size)
            let after = capacityBytes == 0 || overflow ? Double.infinity : Double(total) / Double(capacityBytes)
            guard after <= thresholds.maxOvercommit else {
                throw .insufficientSpace(
                    "pool '\(pool)' would be overcommitted \(Self.ratio(after))x with \(ByteSize.describe(size)) more: "
                        + "provisioned \(ByteSize.describe(provisionedBytes)) of capacity "
                        + "\(ByteSize.describe(capacityBytes)), max overcommit \(Self.ratio(thresholds.maxOvercommit))x"
                )
            }
        }
    }

    static func ratio(_ value: Double) -> String {
        // A ratio of 1e17 or more (a 1-byte pool, an exabyte volume) has no
        // hundredths worth printing, and would not fit an Int.
        guard value.isFinite else { return "inf" }
        guard abs(value) < 1e15 else { return String(format: "%.3g", value) }
        let hundredths = Int((value * 100).rounded())
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
    }
}

/// Per-pool policy: thresholds and limits.
public struct CapacityThresholds: Sendable, Equatable, Codable {
    public var maxOvercommit: Double
    public var warnPercent: Double
    public var criticalPercent: Double
    public var reservedPercent: Double

    /// Cinder's 20.0 over-subscription; vSphere's 75 % warning and 85 % alert.
    public static let defaults = CapacityThresholds(
        maxOvercommit: 20.0, warnPercent: 75, criticalPercent: 85, reservedPercent: 0)

    public init(maxOvercommit: Double, warnPercent: Double, criticalPercent: Double, reservedPercent: Double) {
        self.maxOvercommit = maxOvercommit
        self.warnPercent = warnPercent
        self.criticalPercent = criticalPercent
        self.reservedPercent = reservedPercent
    }

    public func validate() throws(DepotError) {
        guard maxOvercommit.isFinite, maxOvercommit >= 1.0 else {
            throw .invalidArgument("max overcommit must be at least 1.0, got \(maxOvercommit)")
        }
        for (label, value) in [("warn", warnPercent), ("critical", criticalPercent), ("reserved", reservedPercent)] {
            guard value.isFinite, value >= 0, value <= 100 else {
                throw .invalidArgument("\(label) percent must be between 0 and 100, got \(value)")
            }
        }
        // Across fields (and, for an update, against the pool's settings): 422.
        guard warnPercent <= criticalPercent else {
            throw .unprocessable(
                "warn percent (\(warnPercent)) must not exceed critical percent (\(criticalPercent))")
        }
    }
}

public enum CapacityState: String, Codable, Sendable {
    case ok, warning, critical
}
