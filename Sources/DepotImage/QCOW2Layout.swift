import NIOCore

/// A new, empty qcow2 image, laid out as `qemu-img create` lays one out
/// (qcow2.rst): cluster 0 the header, cluster 1 the refcount table, cluster
/// 2 its first refcount block, then the L1 table. Every one of these
/// clusters has refcount 1; no data cluster is allocated.
public enum QCOW2Layout {
    public enum LayoutError: Error, Equatable, CustomStringConvertible {
        case clusterBits(UInt32), tooLarge(maximum: UInt64)

        public var description: String {
            switch self {
            case .clusterBits(let bits): "cluster size \(1 << Int(bits)) is outside 4 KiB…2 MiB"
            case .tooLarge(let maximum): "a qcow2 volume of this cluster size holds at most \(maximum) bytes"
            }
        }
    }

    /// The largest virtual size one refcount table cluster can serve (its
    /// refcount blocks cover the data, the tables and themselves).
    public static func maximumSize(clusterBits: UInt32) -> UInt64 {
        let cluster = UInt64(1) << UInt64(clusterBits)
        // (cluster / 8) refcount blocks × (cluster × 8 / 16) clusters each, less the metadata.
        return (cluster / 8) * (cluster / 2) * cluster / 2
    }

    /// The bytes of an empty version 3 image of `size` bytes.
    public static func emptyImage(size: UInt64, clusterBits: UInt32 = 16) throws(LayoutError) -> [UInt8] {
        guard (12...21).contains(clusterBits) else { throw .clusterBits(clusterBits) }
        guard size <= maximumSize(clusterBits: clusterBits) else {
            throw .tooLarge(maximum: maximumSize(clusterBits: clusterBits))
        }
        let cluster = 1 << Int(clusterBits)
        let span = UInt64(cluster / 8) * UInt64(cluster)  // guest bytes one L2 table maps
        let l1Size = Int((size + span - 1) / span)
        let l1Clusters = max(1, (l1Size * 8 + cluster - 1) / cluster)
        let clusters = 3 + l1Clusters

        var header = QCOW2Header()
        header.version = 3
        header.clusterBits = clusterBits
        header.size = size
        header.l1Size = UInt32(l1Size)
        header.l1TableOffset = UInt64(3 * cluster)
        header.refcountTableOffset = UInt64(cluster)
        header.refcountTableClusters = 1
        header.refcountOrder = 4
        header.headerLength = 112

        var image = ByteBuffer()
        image.reserveCapacity(clusters * cluster)
        image.writeQCOW2Header(header)
        image.writeRepeatingByte(0, count: cluster - image.readableBytes)
        // Refcount table: one block, at cluster 2.
        image.writeInteger(UInt64(2 * cluster))
        image.writeRepeatingByte(0, count: cluster - 8)
        // Refcount block: every cluster of the layout is used once.
        var block = [UInt8](repeating: 0, count: cluster)
        for index in 0..<clusters { QCOW2Refcount.set(&block, index: index, order: 4, to: 1) }
        image.writeBytes(block)
        // L1 table: empty (no L2 tables yet).
        image.writeRepeatingByte(0, count: l1Clusters * cluster)
        return Array(image.readableBytesView)
    }
}
