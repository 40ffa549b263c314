import DepotBlock
import NIOConcurrencyHelpers

/// Thin-provisioning signals (SBC-3 §4.7.3.7, §4.7.3.8): what the daemon's
/// capacity rescans learn of the pool under a thin LU. Crossing the pool's
/// soft threshold (its warning percentage) establishes THIN PROVISIONING
/// SOFT THRESHOLD REACHED for every I_T nexus; while the pool has no free
/// space left, writes that would allocate get SPACE ALLOCATION FAILED WRITE
/// PROTECT, and the LU serves them again by itself once space returns.
public struct PoolSpace: Sendable, Equatable {
    /// Bytes the pool can still allocate.
    public var availableBytes: UInt64
    /// Bytes the volume's file has allocated.
    public var allocatedBytes: UInt64
    /// The pool's usage is at or above its soft threshold.
    public var softThresholdReached: Bool

    public init(availableBytes: UInt64, allocatedBytes: UInt64, softThresholdReached: Bool) {
        self.availableBytes = availableBytes
        self.allocatedBytes = allocatedBytes
        self.softThresholdReached = softThresholdReached
    }

    /// Nothing left to allocate from.
    public var exhausted: Bool { availableBytes == 0 }
}

extension SCSISense {
    /// THIN PROVISIONING SOFT THRESHOLD REACHED (SBC-3 §4.7.3.7.3).
    public static let softThresholdReached = SCSISense(key: unitAttention, asc: 0x38, ascq: 0x07)
}

extension LogicalUnit {
    /// THRESHOLD EXPONENT of VPD B2h: resource counts and thresholds go in
    /// units of 2^exponent blocks, here 1 MiB.
    var thresholdExponent: UInt8 { UInt8(max(0, (1 << 20) / device.blockSize).trailingZeroBitCount) }

    /// Takes the latest figures; announces the soft threshold when the pool
    /// has just crossed it upwards.
    public func updateSpace(_ space: PoolSpace) {
        let previous = poolSpace.withLockedValue { current -> PoolSpace? in
            defer { current = space }
            return current
        }
        spaceExhausted.store(device.canUnmap && space.exhausted, ordering: .relaxed)
        if device.canUnmap, space.softThresholdReached, previous?.softThresholdReached != true {
            announce(.softThresholdReached, except: nil)
        }
    }

    /// Throws `noSpace` for a write that needs new blocks from an exhausted
    /// pool: thin volumes only, and only ranges not yet allocated.
    func checkSpace(offset: UInt64, length: UInt64) async throws {
        guard device.canUnmap else { return }
        var at = offset
        while at < offset + length {
            let (mapped, extent) = try await device.allocation(at: at)
            if !mapped { throw BlockDeviceError.noSpace }
            at += max(extent, 1)
        }
    }
}
