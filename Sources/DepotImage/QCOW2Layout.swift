import NIOCore

/// A new, empty qcow2 image, laid out as `qemu-img create` lays one out
/// (qcow2.rst): cluster 0 the header, cluster 1 the refcount table, cluster
/// 2 its first refcount block, then the L1 table. Every one of these
/// clusters has refcount 1; no data cluster is allocated.
public enum QCOW2Layout {
    public enum LayoutError: Error, Equatable, CustomStringConvertible {
        case clusterBits(UInt32), tooLarge(maximum: UInt64), backingName(String)

        public var description: String {
            switch self {
            case .clusterBits(let bits): "cluster size \(1 << Int(bits)) is outside 4 KiB…2 MiB"
            case .tooLarge(let maximum): "a qcow2 volume of this cluster size holds at most \(maximum) bytes"
            case .backingName(let name): "backing file name '\(name)' does not fit in the image header"
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

    /// The bytes of an empty version 3 image of `size` bytes; with `backing`,
    /// an overlay: every cluster reads through to that file (its name as the
    /// overlay resolves it, relative to the overlay's directory, and its
    /// format in the backing format extension).
    public static func emptyImage(size: UInt64, clusterBits: UInt32 = 16, backing: Backing? = nil)
        throws(LayoutError) -> [UInt8]
    {
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
        image.writeBytes(try headerCluster(header, backing: backing))
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

    /// A backing file as an overlay names it.
    public struct Backing: Sendable, Equatable {
        public var name: String
        public var format: String

        public init(name: String, format: String) {
            self.name = name
            self.format = format
        }
    }

    /// Cluster 0 of an image: `header` with its backing file (name after the
    /// extensions, format as the backing format extension) or none, padded
    /// to the cluster. The header's own backing fields and any backing
    /// format extension are replaced. Used to create overlays and to rebase
    /// an image in place (merge, flatten), which rewrites only this cluster.
    public static func headerCluster(_ original: QCOW2Header, backing: Backing?) throws(LayoutError) -> [UInt8] {
        var header = original
        header.extensions.removeAll { $0.type == QCOW2HeaderExtension.backingFormat }
        header.backingFileOffset = 0
        header.backingFileSize = 0
        if let backing {
            header.extensions.insert(
                QCOW2HeaderExtension(type: QCOW2HeaderExtension.backingFormat, data: Array(backing.format.utf8)), at: 0)
        }
        var probe = ByteBuffer()
        let headerBytes = probe.writeQCOW2Header(header)
        let name = Array((backing?.name ?? "").utf8)
        // qcow2.rst: the name is at most 1023 bytes and lies within cluster 0 here.
        guard name.count <= 1023, headerBytes + name.count <= header.clusterSize else {
            throw .backingName(backing?.name ?? "")
        }
        if backing != nil {
            header.backingFileOffset = UInt64(headerBytes)
            header.backingFileSize = UInt32(name.count)
        }
        var cluster = ByteBuffer()
        cluster.reserveCapacity(header.clusterSize)
        cluster.writeQCOW2Header(header)
        cluster.writeBytes(name)
        cluster.writeRepeatingByte(0, count: header.clusterSize - cluster.readableBytes)
        return Array(cluster.readableBytesView)
    }
}

extension QCOW2Layout {
    /// Where a preallocated image keeps its guest data.
    public struct Preallocation: Sendable, Equatable {
        /// The first data cluster's offset; guest cluster i is at dataOffset + i × cluster.
        public var dataOffset: UInt64
        /// The file's length (the end of the last data cluster).
        public var fileSize: UInt64
    }

    /// A version 3 image of `size` bytes with every guest cluster allocated
    /// up front, as `qemu-img create -o preallocation=falloc` makes one: the
    /// header, refcount table and blocks (every cluster counted once), the L1
    /// table, every L2 table (each entry a data cluster, COPIED), then the
    /// data clusters in guest order. `write(offset, bytes)` receives the
    /// metadata piece by piece (at most one L2 table's worth at a time, so a
    /// 1 TiB image does not need its 128 MiB of tables in memory at once);
    /// the caller fallocates the data area (reads of it are zeros).
    public static func preallocated(
        size: UInt64, clusterBits: UInt32 = 16, write: (UInt64, [UInt8]) throws -> Void
    ) throws -> Preallocation {
        guard (12...21).contains(clusterBits) else { throw LayoutError.clusterBits(clusterBits) }
        let cluster = UInt64(1) << UInt64(clusterBits)
        let l2Entries = cluster / 8
        let data = (size + cluster - 1) / cluster
        let tables = (data + l2Entries - 1) / l2Entries
        let l1Clusters = max(1, (tables * 8 + cluster - 1) / cluster)
        // Refcount blocks (16-bit) and the table pointing at them cover every cluster, themselves too.
        let perBlock = cluster / 2
        var blocks: UInt64 = 1
        var tableClusters: UInt64 = 1
        while true {
            let total = 1 + tableClusters + blocks + l1Clusters + tables + data
            let needBlocks = (total + perBlock - 1) / perBlock
            let needTable = max(1, (needBlocks * 8 + cluster - 1) / cluster)
            if needBlocks == blocks, needTable == tableClusters { break }
            blocks = needBlocks
            tableClusters = needTable
        }
        guard tableClusters <= 1 << 10 else {
            throw LayoutError.tooLarge(maximum: maximumSize(clusterBits: clusterBits))
        }
        let tableOffset = cluster
        let blocksOffset = tableOffset + tableClusters * cluster
        let l1Offset = blocksOffset + blocks * cluster
        let l2Offset = l1Offset + l1Clusters * cluster
        let dataOffset = l2Offset + tables * cluster
        let total = dataOffset / cluster + data

        var header = QCOW2Header()
        header.version = 3
        header.clusterBits = clusterBits
        header.size = size
        header.l1Size = UInt32(tables)
        header.l1TableOffset = l1Offset
        header.refcountTableOffset = tableOffset
        header.refcountTableClusters = UInt32(tableClusters)
        header.refcountOrder = 4
        header.headerLength = 112
        try write(0, try headerCluster(header, backing: nil))

        func entries(_ values: [UInt64], padTo count: UInt64) -> [UInt8] {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(Int(count * cluster))
            for value in values { buffer.writeInteger(value) }
            buffer.writeRepeatingByte(0, count: Int(count * cluster) - buffer.readableBytes)
            return Array(buffer.readableBytesView)
        }
        try write(tableOffset, entries((0..<blocks).map { blocksOffset + $0 * cluster }, padTo: tableClusters))
        for b in 0..<blocks {
            var block = [UInt8](repeating: 0, count: Int(cluster))
            let first = b * perBlock
            for index in 0..<min(perBlock, total > first ? total - first : 0) {
                QCOW2Refcount.set(&block, index: Int(index), order: 4, to: 1)
            }
            try write(blocksOffset + b * cluster, block)
        }
        let copied: UInt64 = 1 << 63
        try write(l1Offset, entries((0..<tables).map { (l2Offset + $0 * cluster) | copied }, padTo: l1Clusters))
        for t in 0..<tables {
            let firstGuest = t * l2Entries
            let count = min(l2Entries, data - firstGuest)
            try write(
                l2Offset + t * cluster,
                entries((0..<count).map { (dataOffset + (firstGuest + $0) * cluster) | copied }, padTo: 1))
        }
        return Preallocation(dataOffset: dataOffset, fileSize: dataOffset + data * cluster)
    }
}
