/// The capacity settings a pool create or update may carry.
public protocol PoolSettings {
    var capacityBytes: UInt64? { get }
    var maxOvercommit: Double? { get }
    var warnPercent: Double? { get }
    var criticalPercent: Double? { get }
    var reservedPercent: Double? { get }
}

extension CreatePoolRequest: PoolSettings {}
extension UpdatePoolRequest: PoolSettings {}

extension PoolSettings {
    /// `base` with the given fields replaced, validated as a whole.
    public func thresholds(over base: CapacityThresholds) throws(DepotError) -> CapacityThresholds {
        var result = base
        if let v = maxOvercommit { result.maxOvercommit = v }
        if let v = warnPercent { result.warnPercent = v }
        if let v = criticalPercent { result.criticalPercent = v }
        if let v = reservedPercent { result.reservedPercent = v }
        try result.validate()
        return result
    }

    /// The explicit capacity, if given, checked to fit the catalog's integer.
    public func validatedCapacity() throws(DepotError) -> UInt64? {
        guard let capacity = capacityBytes else { return nil }
        guard capacity > 0, capacity <= UInt64(Int64.max) else {
            throw .invalidArgument("capacity must be between 1 byte and \(ByteSize.describe(UInt64(Int64.max)))")
        }
        return capacity
    }
}
