import DepotImage
import NIOCore

extension QCOW2Image {
    /// Grows the guest size to `newSize` (qcow2.rst: the header's `size`;
    /// what lies past a backing file's end reads as zeros, so the layers
    /// below keep theirs). The new clusters read as zeros (nothing maps
    /// them). When the L1 table no longer reaches, a larger one is written
    /// to new clusters first, then the header names it — in QEMU's order
    /// (block/qcow2-cluster.c, qcow2_grow_l1_table): new table and its
    /// refcounts durable, then the header's size, L1 size and L1 offset in
    /// one write within its first sector, durable, then the old table's
    /// clusters freed. A crash at any point leaves the old image or the new
    /// one, with leaked clusters at worst. The caller keeps I/O away (the
    /// volume's device is drained around it).
    func grow(to newSize: UInt64) throws {
        guard writable else { throw QCOW2Error.refused(path: file.path, why: "it is open read-only") }
        let cluster = UInt64(clusterSize)
        guard newSize > size else { return }
        // The refcount table is not grown: it must count every cluster the
        // new size may take (data, and tables about 1/8192 of that at 64 KiB).
        let countable = UInt64(refcountTable.count) * UInt64(refcountsPerBlock) * cluster / 2
        let entries = (newSize / cluster + (newSize % cluster == 0 ? 0 : 1) + UInt64(l2Entries) - 1) / UInt64(l2Entries)
        guard newSize <= countable, entries * 8 <= 32 << 20 else {
            throw QCOW2Error.refused(
                path: file.path,
                why: "a qcow2 image with \(clusterSize)-byte clusters and this refcount table holds at most "
                    + "\(min(countable, (32 << 20) / 8 * UInt64(l2Entries) * cluster)) bytes")
        }
        try flushing.withLock {
            // Every table as it is now durable: the header write below is then the only change.
            try flushUnderFlushing()
            try lock.withLock {
                var oldTable: [UInt64] = []
                var table = l1
                var tableOffset = l1Offset
                let bytes = Int(entries) * 8
                let clusters = (bytes + clusterSize - 1) / clusterSize
                let oldClusters = (l1.count * 8 + clusterSize - 1) / clusterSize
                if entries > UInt64(l1.count), clusters <= oldClusters {
                    // The clusters the table has hold the longer one: written in place (past the old L1 size).
                    table += [UInt64](repeating: 0, count: Int(entries) - l1.count)
                    try file.write(at: l1Offset, Self.encode(table))
                    try file.sync()
                } else if entries > UInt64(l1.count) {
                    // reserve appends the clusters it made, end to end: taken first, in order.
                    try reserve(clusters)
                    let made = Array(reserved.suffix(clusters))
                    reserved.removeLast(clusters)
                    reserved.insert(contentsOf: made, at: 0)
                    let hosts = (0..<clusters).compactMap { _ in takeReservedCluster() }
                    table += [UInt64](repeating: 0, count: Int(entries) - l1.count)
                    var padded = Self.encode(table)
                    padded += [UInt8](repeating: 0, count: clusters * clusterSize - padded.count)
                    try file.write(at: hosts[0], padded)
                    try writeDirtyRefblocks()
                    try file.sync()
                    oldTable = (0..<oldClusters).map { l1Offset + UInt64($0) * cluster }
                    tableOffset = hosts[0]
                }
                // size (offset 24), crypt method (32), L1 size (36), L1 offset (40): one write.
                var fields = ByteBuffer()
                fields.writeInteger(newSize)
                fields.writeInteger(header.cryptMethod)
                fields.writeInteger(UInt32(table.count))
                fields.writeInteger(tableOffset)
                try file.write(at: 24, Array(fields.readableBytesView))
                // Written, the header may name the new table: every later table write goes there.
                l1 = table
                l1Offset = tableOffset
                guestSize.store(newSize, ordering: .releasing)
                try file.sync()
                guard !oldTable.isEmpty else { return }
                for host in try dropReferences(oldTable) { file.punchHole(at: host, length: cluster) }
                try file.sync()
            }
        }
    }
}
