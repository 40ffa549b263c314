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

/// LOG SENSE (SPC-4 §6.8): the supported pages page and the logical block
/// provisioning page (SBC-3 §6.5.1) with the available and used LBA mapping
/// resource counts.
enum LogPages {
    static let all: [SCSIOperation] = [
        .init(opcode: 0x4D, name: "LOG SENSE", cdbLength: 10, access: .unrestricted) { lu, cdb, _ in sense(lu, cdb) }
    ]

    static func sense(_ lu: LogicalUnit, _ cdb: CDB) -> SCSIResult {
        // PPC and SP are not supported; PC 01b (cumulative values) is what is kept.
        if cdb[1] & 0x03 != 0 { return .check(.invalidField(byte: 1, bit: cdb[1] & 0x02 != 0 ? 1 : 0)) }
        let page = cdb[2] & 0x3F
        let subpage = cdb[3]
        let allocation = Int(cdb.u16(7))
        guard subpage == 0 else { return .check(.invalidField(byte: 3)) }
        var body: [UInt8]
        switch page {
        case 0x00:
            body = lu.device.canUnmap ? [0x00, 0x0C] : [0x00]
        case 0x0C where lu.device.canUnmap:
            let unit = UInt64(lu.device.blockSize) << UInt64(lu.thresholdExponent)
            let space = lu.poolSpace.withLockedValue { $0 }
            // SCOPE 10b: the available resources are shared with the pool's other
            // volumes; 01b: the used ones are this LU's own.
            body = parameter(0x0001, UInt32(clamping: (space?.availableBytes ?? 0) / unit), scope: 0x02)
                + parameter(0x0002, UInt32(clamping: ((space?.allocatedBytes ?? 0) + unit - 1) / unit), scope: 0x01)
        default:
            return .check(.invalidField(byte: 2, bit: 5))
        }
        var d: [UInt8] = [page, 0, 0, 0]
        d.put16(UInt16(body.count), at: 2)
        return .ok((d + body).allocated(allocation))
    }

    /// A resource count parameter: code, control (binary list), 8 bytes.
    static func parameter(_ code: UInt16, _ count: UInt32, scope: UInt8) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 12)
        p.put16(code, at: 0)
        p[2] = 0x03
        p[3] = 0x08
        p.put32(count, at: 4)
        p[8] = scope
        return p
    }
}
