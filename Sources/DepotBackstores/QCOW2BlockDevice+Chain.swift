import DepotBlock
import DepotImage
import NIOCore
#if canImport(Glibc)
    import Glibc
#endif

/// Chain operations the data services run on an image (blocking: jobs call
/// them on the I/O threads).
extension QCOW2BlockDevice {
    /// The cluster size of the top image.
    public var clusterSize: Int { image.clusterSize }

    /// Copies into this image what the `layers` layers right below it hold
    /// (nil: every layer below — a flatten), from guest offset `start` on,
    /// where this image has nothing of its own. After each cluster copied or
    /// passed, `step(offset reached, bytes copied)` runs; it may throw (a
    /// cancelled job) and the pull stops there, the image consistent (what
    /// was copied reads the same as before). Guest I/O may run meanwhile.
    public func pull(layers: Int?, start: UInt64 = 0, step: (UInt64, Int) throws -> Void) throws {
        var sources: [any ChainLayer] = []
        var layer = image.backing
        while let current = layer, layers.map({ sources.count < $0 }) ?? true {
            sources.append(current)
            layer = current.below
        }
        let baseRemains = layer != nil
        let cluster = UInt64(image.clusterSize)
        var position = start / cluster * cluster
        while position < image.size {
            guard let found = try Self.nextOwnData(in: sources, from: position), found < image.size else { break }
            let index = found / cluster
            let copied = try image.pull(cluster: index, baseRemains: baseRemains)
            position = (index + 1) * cluster
            try step(min(position, image.size), copied)
        }
        try image.flush()
    }

    /// Bytes the layer right below the top has of its own that the top
    /// shadows with its own (a merge of that layer frees them), and that it
    /// does not (a merge copies them up).
    public func mergeFigures() throws -> (shadowed: UInt64, unshadowed: UInt64) {
        guard let below = image.backing else { return (0, 0) }
        let cluster = UInt64(image.clusterSize)
        var shadowed: UInt64 = 0
        var unshadowed: UInt64 = 0
        var position: UInt64 = 0
        while position < image.size, let found = try below.nextOwnData(from: position), found < image.size {
            let index = found / cluster
            let mine = try image.lock.withLock { try image.entry(ofCluster: index) } != .unallocated
            let span = min(cluster, image.size - index * cluster)
            if mine { shadowed += span } else { unshadowed += span }
            position = (index + 1) * cluster
        }
        return (shadowed, unshadowed)
    }

    /// The first offset at or after `position` where any of `layers` has data of its own.
    static func nextOwnData(in layers: [any ChainLayer], from position: UInt64) throws -> UInt64? {
        var next: UInt64?
        for layer in layers {
            if let found = try layer.nextOwnData(from: position), found < next ?? .max { next = found }
        }
        return next
    }

    /// Rewrites the backing file an image names (cluster 0 only; the
    /// tables are untouched): a merge points the layer above a merged
    /// snapshot at the snapshot's own base, a flatten at none. The image
    /// must not be open for writing elsewhere. Durable when it returns.
    public static func rebase(path: String, backing: QCOW2Layout.Backing?) throws {
        let file = try ImageFile(path: path, writable: true)
        var head = ByteBuffer(bytes: try file.read(at: 0, count: 1 << 16))
        let header: QCOW2Header
        do { header = try head.readQCOW2Header() } catch {
            throw QCOW2Error.refused(path: path, why: error.description)
        }
        let cluster: [UInt8]
        do { cluster = try QCOW2Layout.headerCluster(header, backing: backing) } catch {
            throw QCOW2Error.refused(path: path, why: error.description)
        }
        try file.write(at: 0, cluster)
        try file.sync()
    }

    /// The backing file name and format an image names, if any.
    public static func backing(of path: String) throws -> QCOW2Layout.Backing? {
        let file = try ImageFile(path: path, writable: false)
        var head = ByteBuffer(bytes: try file.read(at: 0, count: Int(min(file.size, 2 << 20))))
        let header: QCOW2Header
        do { header = try head.readQCOW2Header() } catch {
            throw QCOW2Error.refused(path: path, why: error.description)
        }
        guard header.backingFileOffset != 0, header.backingFileSize > 0 else { return nil }
        let name = try file.read(at: header.backingFileOffset, count: Int(min(header.backingFileSize, 1023)))
        return QCOW2Layout.Backing(name: String(decoding: name, as: UTF8.self), format: header.backingFormat ?? "")
    }
}

extension QCOW2BlockDevice {
    /// Closes the image now, on the caller's thread (a job's): tables
    /// written, unused reservations given back.
    public func closeNow() throws { try image.close() }

    /// Writes the guest data of the whole chain into `fd` (a file of the
    /// image's size, sparse): only where some layer has data, and nothing for
    /// stretches that read as zeros. `step(offset reached, bytes written)`
    /// after each piece; it may throw to stop.
    public func copyData(to fd: Int32, step: (UInt64, Int) throws -> Void) throws {
        var layers: [any ChainLayer] = []
        var layer: (any ChainLayer)? = image
        while let current = layer {
            layers.append(current)
            layer = current.below
        }
        let cluster = UInt64(image.clusterSize)
        let size = image.size
        var position: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while position < size {
            guard let found = try Self.nextOwnData(in: layers, from: position), found < size else { break }
            // A run from the cluster holding `found`, up to 1 MiB.
            let start = found / cluster * cluster
            let count = Int(min(UInt64(buffer.count), size - start))
            try buffer.withUnsafeMutableBytes {
                try image.read(at: start, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]))
            }
            var written = 0
            // Written cluster by cluster, all-zero clusters left as holes.
            var at = 0
            while at < count {
                let piece = min(Int(cluster), count - at)
                let zero = buffer[at..<(at + piece)].allSatisfy { $0 == 0 }
                if !zero {
                    try buffer.withUnsafeBytes { raw in
                        var done = 0
                        while done < piece {
                            let n = pwrite(
                                fd, raw.baseAddress! + at + done, piece - done, off_t(start) + off_t(at + done))
                            guard n > 0 else {
                                throw errno == ENOSPC
                                    ? BlockDeviceError.noSpace
                                    : BlockDeviceError.io("write: \(String(cString: strerror(errno)))")
                            }
                            done += n
                        }
                    }
                    written += piece
                }
                at += piece
            }
            position = start + UInt64(count)
            try step(position, written)
        }
    }
}
