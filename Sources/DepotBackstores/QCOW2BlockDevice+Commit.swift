import CDepotPosix
import DepotBlock
import DepotImage
#if canImport(Glibc)
    import Glibc
#endif

/// The layer right below a volume's top image, opened writable to take the
/// top's data (a merge that commits down, as QEMU's block-commit): a raw
/// file, or a qcow2 image. Only clusters the top holds of its own are
/// written here, so what the top reads through to — the rest of this layer
/// — never changes while the top serves.
public final class CommitTarget: @unchecked Sendable {
    private let raw: ImageFile?
    private let image: QCOW2Image?
    public let path: String

    public init(path: String, format: String) throws {
        self.path = path
        if format == "qcow2" {
            image = try QCOW2Image(path: path, writable: true)
            raw = nil
        } else {
            raw = try ImageFile(path: path, writable: true)
            image = nil
        }
    }

    var size: UInt64 { image?.size ?? raw!.size }

    func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        if let image { try image.write(at: offset, bytes) } else { try raw!.write(at: offset, bytes) }
    }

    /// The range reads as zeros: a hole in a raw file; zero clusters (or
    /// zeros written, for pieces) in a qcow2 image.
    func zero(at offset: UInt64, length: UInt64) throws {
        if let image {
            try image.unmap(at: offset, length: length)
        } else if depot_punch_hole(raw!.fd, off_t(offset), off_t(length)) != 0 {
            throw BlockDeviceError.io("punch hole in \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Makes everything written durable and closes the image.
    public func close() throws {
        if let image { try image.close() } else { try raw!.sync() }
    }
}

extension QCOW2BlockDevice {
    /// Bytes of the guest clusters this image holds of its own (data or zeros).
    public func ownBytes() throws -> UInt64 {
        let cluster = UInt64(image.clusterSize)
        var total: UInt64 = 0
        var position: UInt64 = 0
        while let found = try image.nextOwnData(from: position), found < image.size {
            let index = found / cluster
            total += min(cluster, image.size - index * cluster)
            position = (index + 1) * cluster
        }
        return total
    }

    /// Writes every guest cluster this image holds of its own into `target`
    /// (the layer below it), and from now on notes the clusters guest writes
    /// change (`commitWritten` copies them again). Guest I/O may run.
    /// `step(offset reached, bytes copied)` after each cluster; it may throw
    /// (a cancelled job): tracking stops, the image is as it was, and the
    /// target holds some of this image's clusters — which this image
    /// shadows, so the guest reads as before.
    public func commit(into target: CommitTarget, step: (UInt64, Int) throws -> Void) throws {
        guard target.size >= image.size else {
            throw QCOW2Error.refused(path: target.path, why: "it is smaller than the layer above it")
        }
        image.lock.withLock { image.writesSeen = [] }
        do {
            let cluster = UInt64(image.clusterSize)
            var position: UInt64 = 0
            while let found = try image.nextOwnData(from: position), found < image.size {
                let index = found / cluster
                let copied = try commitCluster(index, into: target)
                position = (index + 1) * cluster
                try step(min(position, image.size), copied)
            }
        } catch {
            image.lock.withLock { image.writesSeen = nil }
            throw error
        }
    }

    /// Copies again the clusters written since the last pass (in the final
    /// pass, with the I/O drained: `last`, which stops the tracking);
    /// returns how many there were.
    @discardableResult
    public func commitWritten(into target: CommitTarget, last: Bool) throws -> Int {
        let written = image.lock.withLock { () -> Set<UInt64> in
            defer { image.writesSeen = last ? nil : [] }
            return image.writesSeen ?? []
        }
        do {
            for index in written.sorted() { _ = try commitCluster(index, into: target) }
        } catch {
            image.lock.withLock { image.writesSeen = nil }
            throw error
        }
        return written.count
    }

    /// Stops noting writes (a commit abandoned).
    public func stopTracking() { image.lock.withLock { image.writesSeen = nil } }

    /// One guest cluster as this image holds it, written into `target`:
    /// data copied, zeros as zeros, nothing where it holds nothing.
    private func commitCluster(_ index: UInt64, into target: CommitTarget) throws -> Int {
        let cluster = UInt64(image.clusterSize)
        let start = index * cluster
        guard start < image.size else { return 0 }
        let count = Int(min(cluster, image.size - start))
        switch try image.lock.withLock({ try image.entry(ofCluster: index) }) {
        case .unallocated:
            return 0
        case .zero:
            try target.zero(at: start, length: UInt64(count))
            return 0
        case .standard, .compressed:
            var content = [UInt8](repeating: 0, count: count)
            try content.withUnsafeMutableBytes { try image.read(at: start, into: $0) }
            try content.withUnsafeBytes { try target.write(at: start, $0) }
            return count
        }
    }
}
