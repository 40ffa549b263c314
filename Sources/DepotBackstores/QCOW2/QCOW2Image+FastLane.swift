import CDepotPosix
import DepotImage

/// The fast lane of a qcow2 image: reads and overwrites of clusters this
/// (top) image owns, translated through the L2 cache only — an L2 table not
/// in the cache, an unallocated, zero, compressed or shared cluster, or a
/// range across clusters declines, and the general path serves it. The
/// data moves with RWF_NOWAIT (page cache only), as for raw volumes.
extension QCOW2Image {
    /// The host offset of guest `offset` when `count` bytes from there lie in
    /// one cluster this image owns and its L2 table is cached; nil otherwise.
    /// Never reads the disk.
    func cachedHostOffset(_ offset: UInt64, count: Int) -> UInt64? {
        let within = Int(offset & UInt64(clusterSize - 1))
        guard count > 0, within + count <= clusterSize, offset + UInt64(count) <= size else { return nil }
        let cluster = offset >> UInt64(clusterBits)
        return lock.withLock { () -> UInt64? in
            let l1Index = Int(cluster / UInt64(l2Entries))
            guard l1Index < l1.count else { return nil }
            let l2 = QCOW2L1Entry(raw: l1[l1Index]).l2Offset
            guard l2 != 0, let table = l2Cache[l2] else { return nil }
            let entry = QCOW2L2Entry(raw: table.entries[Int(cluster % UInt64(l2Entries))], clusterBits: clusterBits)
            guard case .standard(let host, true) = entry else { return nil }
            return host + UInt64(within)
        }
    }

    func readNow(at offset: UInt64, into: UnsafeMutableRawBufferPointer) -> Bool {
        guard let host = cachedHostOffset(offset, count: into.count) else { return false }
        return depot_pread_nowait(file.fd, into.baseAddress!, into.count, off_t(host)) == into.count
    }

    /// Only where the filesystem takes RWF_NOWAIT writes (XFS, btrfs; not ext4).
    func writeNow(at offset: UInt64, from: UnsafeRawBufferPointer) -> Bool {
        guard writable, let host = cachedHostOffset(offset, count: from.count) else { return false }
        return depot_pwrite_nowait(file.fd, from.baseAddress!, from.count, off_t(host)) == from.count
    }
}
