import DepotBlock
import NIOConcurrencyHelpers

/// The volumes open as LUN backstores, one `VolumeDevice` per volume id,
/// shared by every LU that serves the volume (read-only maps too: the LU
/// refuses their writes). One opener per volume matters for qcow2 (two
/// would each cache tables the other changes) and lets a snapshot, a
/// rollback or a merge swap the volume's backstore under all its LUs at once.
public final class OpenVolumes: Sendable {
    public enum Format: Sendable { case raw, qcow2 }

    private let open = NIOLockedValueBox<[Int64: VolumeDevice]>([:])
    /// The L2 table cache of each open qcow2 image (`--l2-cache`): 32 MiB
    /// maps 256 GiB of 64 KiB clusters, so 4K random reads over a 64 GiB
    /// allocated image stay in it.
    public let l2CacheBytes: Int

    public init(l2CacheBytes: Int = 32 << 20) {
        self.l2CacheBytes = l2CacheBytes
    }

    /// The volume's device, opened on first use. A volume whose size changed
    /// (a resize) gets a new device; the old one serves its LU until it goes.
    /// `latched`: the flush failure the catalog holds for it; `onLatch`: told
    /// when a flush fails (VolumeDevice's latch). A new device for a resized
    /// volume stays latched as the old one was.
    public func device(
        id: Int64, path: String, format: Format, blockSize: Int, sizeBytes: UInt64, thin: Bool,
        latched: String? = nil, onLatch: @escaping @Sendable (String) -> Void = { _ in }
    ) throws -> VolumeDevice {
        let known = open.withLockedValue { $0[id] }
        if let known, known.sizeBytes == sizeBytes / UInt64(blockSize) * UInt64(blockSize) { return known }
        let backstore = try backstore(path: path, format: format, blockSize: blockSize, thin: thin)
        let device = VolumeDevice(backstore, latched: known?.latchedFailure ?? latched, onLatch: onLatch)
        open.withLockedValue { $0[id] = device }
        return device
    }

    /// A backstore for `path` (what a swap opens after a snapshot or rollback).
    /// `on`: the open qcow2 image `path` names as its backing file, read from
    /// memory rather than opened again (`QCOW2BlockDevice.init`).
    public func backstore(
        path: String, format: Format, blockSize: Int, thin: Bool, on below: QCOW2BlockDevice? = nil
    ) throws -> any BlockDevice {
        switch format {
        case .raw: try FileBlockDevice(path: path, blockSize: blockSize, readOnly: false, thin: thin)
        case .qcow2:
            try QCOW2BlockDevice(
                path: path, blockSize: blockSize, readOnly: false, l2CacheBytes: l2CacheBytes, on: below)
        }
    }

    /// Waits until every layer a snapshot froze has its tables in its file
    /// (`VolumeDevice.settle`): before anything opens a layer file afresh —
    /// a clone, a rollback, a merge, a job, a figure read from the file.
    public func settle(_ id: Int64) async throws { try await existing(id)?.settle() }

    /// The open device of a volume, if an LU serves it.
    public func existing(_ id: Int64) -> VolumeDevice? { open.withLockedValue { $0[id] } }

    /// Forgets the devices not in `served`, closing their qcow2 images
    /// (tables written, reservations given back). The layers their
    /// snapshots froze are written back before they are forgotten, so a
    /// layer file is never opened afresh while its tables are in memory only
    /// (callers serialize this with `device`: TargetManager's changes).
    public func keep(only served: Set<ObjectIdentifier>) async {
        let gone = open.withLockedValue { open in open.filter { !served.contains(ObjectIdentifier($0.value)) } }
        for device in gone.values { try? await device.settle() }
        open.withLockedValue { open in
            for (id, device) in gone where open[id] === device { open[id] = nil }
        }
        for device in gone.values { try? await (device.current as? QCOW2BlockDevice)?.close() }
    }

    /// Closes and forgets one volume's device (its LUs are gone).
    public func close(_ id: Int64) async {
        guard let device = open.withLockedValue({ $0.removeValue(forKey: id) }) else { return }
        try? await device.flush()
        try? await (device.current as? QCOW2BlockDevice)?.close()
    }

    /// At shutdown: every open image closed cleanly; returns the errors by volume id.
    public func closeAll() async -> [(Int64, any Error)] {
        let all = open.withLockedValue { $0 }
        var failures: [(Int64, any Error)] = []
        for (id, device) in all {
            do {
                try await device.flush()
                try await (device.current as? QCOW2BlockDevice)?.close()
            } catch {
                failures.append((id, error))
            }
        }
        return failures
    }
}
