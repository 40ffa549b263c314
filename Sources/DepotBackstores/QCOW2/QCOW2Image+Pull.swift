import DepotImage

/// Pulling data up a chain: what a merge (a snapshot streamed into the
/// layer above it) and a flatten (a clone made independent) do before the
/// image is rebased. Each cluster is copied only where this image has none
/// of its own, under the image's lock, so a guest write that allocated it
/// meanwhile is never overwritten; the copied bytes are what the guest
/// reads there now, so the guest sees no change while it runs.
extension QCOW2Image {
    var below: (any ChainLayer)? { backing }

    func nextOwnData(from offset: UInt64) throws -> UInt64? {
        let cluster = UInt64(clusterSize)
        var index = offset / cluster
        let count = (size + cluster - 1) / cluster
        return try lock.withLock { () throws -> UInt64? in
            while index < count {
                let l1Index = Int(index / UInt64(l2Entries))
                guard l1Index < l1.count else { return nil }
                let l2 = QCOW2L1Entry(raw: l1[l1Index]).l2Offset
                if l2 == 0 {
                    index = UInt64(l1Index + 1) * UInt64(l2Entries)
                    continue
                }
                let table = try l2Table(at: l2)
                var slot = Int(index % UInt64(l2Entries))
                while slot < table.count, index < count {
                    if QCOW2L2Entry(raw: table[slot], clusterBits: clusterBits) != .unallocated {
                        return max(offset, index * cluster)
                    }
                    slot += 1
                    index += 1
                }
            }
            return nil
        }
    }

    /// Copies into this image the cluster at `index` as the layers below read
    /// it, if this image has nothing of its own there; returns the bytes
    /// copied (0 when it had, or when the cluster reads as zeros and no layer
    /// will remain below: `baseRemains` false, as for a flatten).
    func pull(cluster index: UInt64, baseRemains: Bool) throws -> Int {
        guard writable, let backing else { return 0 }
        let start = index << UInt64(clusterBits)
        guard start < size else { return 0 }
        // Read outside the lock (the layers below are read-only), check and write under it.
        var content = [UInt8](repeating: 0, count: clusterSize)
        let inside = Int(min(UInt64(clusterSize), size - start))
        try content.withUnsafeMutableBytes {
            try backing.read(at: start, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<inside]))
        }
        let zeros = content.allSatisfy { $0 == 0 }
        if zeros, !baseRemains { return 0 }
        return try lock.withLock { () throws -> Int in
            guard try entry(ofCluster: index) == .unallocated else { return 0 }
            if zeros, header.version >= 3 {
                try setEntry(ofCluster: index, .zero(preallocated: 0, copied: false))
                return 0
            }
            let host = try allocateCluster()
            try file.write(at: host, content)
            try setEntry(ofCluster: index, .standard(offset: host, copied: true))
            return clusterSize
        }
    }
}
