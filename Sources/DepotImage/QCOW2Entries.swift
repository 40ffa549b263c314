/// qcow2 L1 and L2 table entries and refcounts (qcow2.rst "Cluster
/// mapping", "Host cluster management"). Entries are 64-bit big-endian;
/// the values here are the decoded forms.

/// An L1 entry: where the L2 table of one span of the disk is.
public struct QCOW2L1Entry: Sendable, Equatable {
    /// Bits 9-55: the L2 table's host offset (cluster aligned); 0 = none.
    public var l2Offset: UInt64
    /// Bit 63 (COPIED): the L2 table's refcount is exactly 1, so it may be written in place.
    public var copied: Bool

    static let offsetMask: UInt64 = 0x00FF_FFFF_FFFF_FE00

    public init(l2Offset: UInt64, copied: Bool) {
        self.l2Offset = l2Offset
        self.copied = copied
    }

    public init(raw: UInt64) {
        l2Offset = raw & Self.offsetMask
        copied = raw & (1 << 63) != 0
    }

    public var raw: UInt64 { (l2Offset & Self.offsetMask) | (copied ? 1 << 63 : 0) }
}

/// An L2 entry: what one guest cluster is.
public enum QCOW2L2Entry: Sendable, Equatable {
    /// Not allocated here: read through to the backing file (zeros without one).
    case unallocated
    /// Reads as zeros (v3 bit 0), whether or not a host cluster is kept for it
    /// (`preallocated`, 0 = none).
    case zero(preallocated: UInt64, copied: Bool)
    /// Data at a cluster-aligned host offset.
    case standard(offset: UInt64, copied: Bool)
    /// Deflate-compressed data: `offset` (byte granular) and the bytes that
    /// may hold it (a whole number of 512-byte sectors from the offset's sector).
    case compressed(offset: UInt64, length: Int)

    static let standardOffsetMask: UInt64 = 0x00FF_FFFF_FFFF_FE00

    /// Decodes an entry of an image with `2^clusterBits`-byte clusters.
    public init(raw: UInt64, clusterBits: UInt32) {
        if raw & (1 << 62) != 0 {
            // Compressed descriptor: x = 62 - (cluster_bits - 8); bits 0..x-1 the
            // host offset, bits x..61 the count of additional 512-byte sectors.
            let x = 62 - (UInt64(clusterBits) - 8)
            let offset = raw & ((1 << x) - 1)
            let sectors = (raw & ((1 << 62) - 1)) >> x
            let length = Int((sectors + 1) * 512 - (offset & 511))
            self = .compressed(offset: offset, length: length)
            return
        }
        let copied = raw & (1 << 63) != 0
        let offset = raw & Self.standardOffsetMask
        if raw & 1 != 0 {
            self = .zero(preallocated: offset, copied: copied)
        } else if offset == 0 {
            self = .unallocated
        } else {
            self = .standard(offset: offset, copied: copied)
        }
    }

    /// The entry as stored (compressed entries are never written by Depot).
    public func raw(clusterBits: UInt32) -> UInt64 {
        switch self {
        case .unallocated: 0
        case .zero(let offset, let copied): (offset & Self.standardOffsetMask) | 1 | (copied ? 1 << 63 : 0)
        case .standard(let offset, let copied): (offset & Self.standardOffsetMask) | (copied ? 1 << 63 : 0)
        case .compressed(let offset, let length):
            {
                let x = 62 - (UInt64(clusterBits) - 8)
                let sectors = (UInt64(length) + (offset & 511) + 511) / 512 - 1
                return (1 << 62) | (sectors << x) | offset
            }()
        }
    }

    /// The host cluster this entry holds a reference to, if any.
    public var hostCluster: UInt64? {
        switch self {
        case .standard(let offset, _): offset
        case .zero(let offset, _): offset == 0 ? nil : offset
        case .unallocated, .compressed: nil
        }
    }
}

/// Reading and writing one refcount of a refcount block (`1 << order` bits
/// each, big-endian, packed; qcow2.rst "refcount_order").
public enum QCOW2Refcount {
    public static func get(_ block: [UInt8], index: Int, order: UInt32) -> UInt64 {
        let bits = 1 << Int(order)
        if bits >= 8 {
            let bytes = bits / 8
            var value: UInt64 = 0
            for i in 0..<bytes { value = value << 8 | UInt64(block[index * bytes + i]) }
            return value
        }
        let perByte = 8 / bits
        let byte = block[index / perByte]
        let shift = (index % perByte) * bits
        return UInt64(byte >> UInt8(shift)) & ((1 << UInt64(bits)) - 1)
    }

    public static func set(_ block: inout [UInt8], index: Int, order: UInt32, to value: UInt64) {
        let bits = 1 << Int(order)
        if bits >= 8 {
            let bytes = bits / 8
            for i in 0..<bytes {
                block[index * bytes + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (bytes - 1 - i)))
            }
            return
        }
        let perByte = 8 / bits
        let shift = UInt8((index % perByte) * bits)
        let mask = UInt8((1 << bits) - 1) << shift
        block[index / perByte] = (block[index / perByte] & ~mask) | (UInt8(truncatingIfNeeded: value) << shift & mask)
    }

    /// The largest refcount `order` can hold.
    public static func maximum(order: UInt32) -> UInt64 { order >= 6 ? .max : (1 << (1 << UInt64(order))) - 1 }
}
