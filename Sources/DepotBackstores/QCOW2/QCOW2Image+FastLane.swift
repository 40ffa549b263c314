import CDepotPosix
import DepotImage

/// The fast lane of a qcow2 image: reads and overwrites of clusters this
/// (top) image owns, translated through the L2 cache only — an L2 table not
/// in the cache, an unallocated, zero, compressed or shared cluster, or a
/// range across clusters declines, and the general path serves it. The
/// data moves with RWF_NOWAIT (page cache only), as for raw volumes.
extension QCOW2Image {
    /// Where the guest bytes `[offset, offset + count)` of one cluster are:
    /// the file and host offset of the layer that holds them (this image or
    /// one below, found through each layer's cached L2 tables only), zeros
    /// (a zero cluster, or nothing below), or nil when a table is not cached
    /// or the cluster is compressed — never reading the disk. `owned` is
    /// whether this image itself holds them as a cluster it may overwrite.
    func cachedLocation(_ offset: UInt64, count: Int) -> (CachedLocation, owned: Bool)? {
        let within = Int(offset & UInt64(clusterSize - 1))
        guard count > 0, within + count <= clusterSize, offset + UInt64(count) <= size else { return nil }
        let cluster = offset >> UInt64(clusterBits)
        let found = lock.withLock { () -> QCOW2L2Entry? in
            let l1Index = Int(cluster / UInt64(l2Entries))
            guard l1Index < l1.count else { return .unallocated }
            let l2 = QCOW2L1Entry(raw: l1[l1Index]).l2Offset
            guard l2 != 0 else { return .unallocated }
            guard let table = l2Cache[l2] else { return nil }
            return QCOW2L2Entry(raw: table.entries[Int(cluster % UInt64(l2Entries))], clusterBits: clusterBits)
        }
        switch found {
        case nil, .compressed: return nil
        case .standard(let host, let copied): return (.data(file.fd, host + UInt64(within)), copied)
        case .zero: return (.zeros, false)
        case .unallocated:
            switch backing {
            case nil: return (.zeros, false)
            case let layer as QCOW2Image:
                // The layer below may have larger or smaller clusters, and be smaller.
                guard offset + UInt64(count) <= layer.size else { return offset >= layer.size ? (.zeros, false) : nil }
                return layer.cachedLocation(offset, count: count).map { ($0.0, false) }
            case let raw as RawLayer:
                guard offset + UInt64(count) <= raw.size else { return offset >= raw.size ? (.zeros, false) : nil }
                return (.data(raw.file.fd, offset), false)
            default: return nil
            }
        }
    }

    enum CachedLocation {
        case data(Int32, UInt64)
        case zeros
    }

    /// Reads through the chain on the caller's thread when every piece's
    /// tables are cached and its data is in the page cache (RWF_NOWAIT).
    /// Pieces that lie end to end in one file (clusters written in order)
    /// are read with one call.
    func readNow(at offset: UInt64, into: UnsafeMutableRawBufferPointer) -> Bool {
        guard offset < size, UInt64(into.count) <= size - offset else { return false }
        // Bytes located but not yet read: `count` of them from `host` in `fd`, into `into` at `start`.
        var run: (fd: Int32, host: UInt64, start: Int, count: Int)?
        func read(_ run: (fd: Int32, host: UInt64, start: Int, count: Int)?) -> Bool {
            guard let run else { return true }
            return depot_pread_nowait(run.fd, into.baseAddress! + run.start, run.count, off_t(run.host)) == run.count
        }
        var done = 0
        while done < into.count {
            let at = offset + UInt64(done)
            let within = Int(at & UInt64(clusterSize - 1))
            let count = min(clusterSize - within, into.count - done)
            guard let (location, _) = cachedLocation(at, count: count) else { return false }
            switch location {
            case .zeros:
                guard read(run) else { return false }
                run = nil
                (into.baseAddress! + done).initializeMemory(as: UInt8.self, repeating: 0, count: count)
            case .data(let fd, let host):
                if let r = run, r.fd == fd, r.host + UInt64(r.count) == host {
                    run = (fd, r.host, r.start, r.count + count)
                } else {
                    guard read(run) else { return false }
                    run = (fd, host, done, count)
                }
            }
            done += count
        }
        return read(run)
    }

    /// Writes on the caller's thread (`InlineWrites`: RWF_NOWAIT, else a
    /// small buffered write) to clusters this image owns, and first writes
    /// where only zeros lie below, when each piece's L2 table is cached and
    /// a reserved host cluster is at hand — no table or refcount I/O here.
    /// All or nothing is not promised: false may follow a partial write,
    /// which `write` redoes whole.
    func writeNow(at offset: UInt64, from: UnsafeRawBufferPointer) -> Bool {
        guard writable, offset < size, UInt64(from.count) <= size - offset, inline.mayTry(from.count) else {
            return false
        }
        var done = 0
        while done < from.count {
            let at = offset + UInt64(done)
            let within = Int(at & UInt64(clusterSize - 1))
            let count = min(clusterSize - within, from.count - done)
            guard let host = hostForWriteNow(at),
                inline.write(file.fd, UnsafeRawBufferPointer(rebasing: from[done..<(done + count)]), at: host)
            else { return false }
            done += count
        }
        return true
    }

    /// Where a write at guest `offset` goes, found with the cached tables
    /// only: in a cluster this image owns, or in a fresh reserved one when
    /// only zeros lie below (no backing layer, or a zero cluster keeping no
    /// host cluster) — its L2 entry set now, in memory. A fresh cluster reads
    /// as zeros until the write lands, as the guest's cluster did before, so
    /// a flush that makes the table durable first loses nothing acknowledged.
    /// nil: the general path (an uncached or new table, no reserved cluster
    /// left, copy-on-write, compressed).
    private func hostForWriteNow(_ offset: UInt64) -> UInt64? {
        let within = offset & UInt64(clusterSize - 1)
        let cluster = offset >> UInt64(clusterBits)
        return lock.withLock { () -> UInt64? in
            let l1Index = Int(cluster / UInt64(l2Entries))
            guard l1Index < l1.count else { return nil }
            noteWrite(cluster)
            let l1Entry = QCOW2L1Entry(raw: l1[l1Index])
            let slot = Int(cluster % UInt64(l2Entries))
            guard l1Entry.l2Offset != 0, l1Entry.copied, let raw = l2Cache[l1Entry.l2Offset]?.entries[slot] else {
                return nil
            }
            switch QCOW2L2Entry(raw: raw, clusterBits: clusterBits) {
            case .standard(let host, true):
                return host + within
            case .unallocated where backing == nil, .zero(preallocated: 0, _):
                guard let host = takeReservedCluster() else { return nil }
                l2Cache[l1Entry.l2Offset]?.entries[slot] = QCOW2L2Entry.standard(offset: host, copied: true)
                    .raw(clusterBits: clusterBits)
                l2Cache[l1Entry.l2Offset]?.dirty = true
                return host + within
            default:
                return nil
            }
        }
    }
}
