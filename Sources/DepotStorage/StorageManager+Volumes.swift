import DepotBackstores
import DepotBlock
import DepotCatalog
import DepotCore
import Foundation

extension StorageManager {
    public func listVolumes(pool name: String?) async throws(DepotError) -> [VolumeInfo] {
        let pools = try await catalog.pools()
        let byId = Dictionary(uniqueKeysWithValues: pools.map { ($0.id!, $0) })
        var poolId: Int64?
        if let name {
            poolId = try await requirePool(name).id
        }
        return try await catalog.volumes(poolId: poolId).compactMap { v in
            byId[v.poolId].map { info(v, pool: $0) }
        }
    }

    /// One volume, its allocated bytes read from the file now (one stat):
    /// writes made over iSCSI show at once here, in lists at the next rescan.
    public func volume(_ ref: VolumeRef) async throws(DepotError) -> VolumeInfo {
        let (pool, volume) = try await requireVolume(ref)
        if volume.volumeState == .ready,
            let status = VolumeFile.status(path: pool.path + "/" + volume.fileName, format: volume.volumeFormat)
        {
            allocated[volume.id!] = status.allocatedBytes
        }
        return try await chainInfo(volume, pool: pool)
    }

    func info(_ v: VolumeRecord, pool: PoolRecord) -> VolumeInfo {
        var result = VolumeInfo(
            pool: pool.name, name: v.name, sizeBytes: UInt64(v.sizeBytes), allocatedBytes: allocated[v.id!] ?? 0,
            provisioning: v.provisioningKind, blockSize: UInt32(v.blockSize), state: v.volumeState, uuid: v.uuid,
            path: pool.path + "/" + v.fileName, createdAt: v.createdAt)
        result.format = v.volumeFormat
        result.progress = progress[v.id!]
        // The open device's latch trips first; the catalog keeps it across restarts.
        if let reason = openVolumes.existing(v.id!)?.latchedFailure ?? v.flushError, result.state == .ready {
            result.state = .error
            result.error = reason
        }
        return result
    }

    /// `info` with the chain: the base snapshot's name and the volume's own snapshots.
    func chainInfo(_ v: VolumeRecord, pool: PoolRecord) async throws(DepotError) -> VolumeInfo {
        var result = info(v, pool: pool)
        let view = try await chainView()
        result.base = v.baseSnapshotId.flatMap { view.snapshots[$0] }.map(view.label)
        let own = view.snapshots.values.filter { $0.volumeId == v.id }
        result.snapshotCount = own.count
        result.snapshotBytes = own.reduce(0) { $0 + (layerAllocated[$1.id!] ?? 0) }
        return result
    }

    public func createVolume(pool poolName: String, _ request: CreateVolumeRequest) async throws(DepotError)
        -> VolumeInfo
    {
        try ObjectName.validate(request.name, kind: "volume")
        let provisioning = request.provisioning ?? .thin
        let blockSize = request.blockSize ?? 512
        try BlockSize.validate(blockSize)
        try Self.validateSize(request.sizeBytes, blockSize: blockSize)
        let format = request.format ?? .raw
        if format == .qcow2, provisioning == .eagerZeroed {
            throw .unprocessable(
                "a qcow2 volume is thin or thick (preallocated, as qemu-img's preallocation=falloc); eager-zeroed qcow2 is not supported"
            )
        }
        let fileName = VolumeRecord.fileName(for: request.name, format: format)
        // 1. Admission and the row in state `creating` (it reserves the name and
        // counts as provisioned), in one change: no other create is admitted
        // against figures that do not count this one.
        let (pool, inserted, cancel) = try await changes.run {
            () async throws(DepotError) -> (PoolRecord, VolumeRecord, CancelFlag) in
            let pool = try await requirePool(poolName)
            if try await catalog.volume(poolId: pool.id!, name: request.name) != nil {
                throw .conflict("volume '\(poolName)/\(request.name)' already exists")
            }
            try await figures(for: pool).admit(size: request.sizeBytes, provisioning: provisioning, pool: poolName)
            let record = try await catalog.insertVolume(
                VolumeRecord(
                    poolId: pool.id!, name: request.name, uuid: UUID().uuidString.lowercased(), fileName: fileName,
                    sizeBytes: Int64(request.sizeBytes), provisioning: provisioning, blockSize: blockSize,
                    state: .creating, createdAt: Timestamp.now(), format: format),
                poolName: poolName, durable: false)
            let id = record.id!
            busy.insert(id)
            if provisioning.reservesSpace { inflightReservations[pool.id!, default: 0] += request.sizeBytes }
            progress[id] = 0
            let cancel = CancelFlag()
            cancels[id] = cancel
            return (pool, record, cancel)
        }
        var record = inserted
        let id = record.id!
        defer {
            busy.remove(id)
            if provisioning.reservesSpace { inflightReservations[pool.id!, default: 0] -= request.sizeBytes }
            progress[id] = nil
            cancels[id] = nil
        }

        // 2. The file, off the actor. 3. The row becomes `ready`.
        let path = pool.path + "/" + fileName
        let size = request.sizeBytes
        do {
            try await runIO { [self] in
                if format == .qcow2 {
                    if provisioning == .thick {
                        try VolumeFile.createPreallocatedQCOW2(path: path, size: size)
                    } else {
                        try VolumeFile.createQCOW2(path: path, size: size)
                    }
                    return
                }
                try VolumeFile.create(
                    path: path, size: size, provisioning: provisioning,
                    progress: { fraction in
                        Task { await self.setProgress(id, fraction) }
                    }, cancelled: { cancel.isSet })
            }
            record.state = VolumeState.ready.rawValue
            try await catalog.updateVolume(record)
        } catch {
            // Undo in reverse order; the file goes first so no orphan survives the row.
            _ = try? await runIO { try VolumeFile.remove(path: path) }
            try? await catalog.deleteVolume(id: id)
            logger.warning(
                "volume create failed", metadata: ["volume": "\(poolName)/\(request.name)", "error": "\(error)"])
            throw error
        }
        allocated[id] = VolumeFile.status(path: path)?.allocatedBytes ?? 0
        progress[id] = nil
        logger.info(
            "volume created",
            metadata: [
                "volume": "\(poolName)/\(request.name)", "size": "\(size)", "provisioning": "\(provisioning.rawValue)",
            ])
        return info(record, pool: pool)
    }

    func setProgress(_ id: Int64, _ fraction: Double) {
        if progress[id] != nil { progress[id] = fraction }
    }

    /// Grows freely (subject to admission); shrinks only with `force`, and
    /// never below the last block holding non-zero data.
    public func resizeVolume(_ ref: VolumeRef, sizeBytes newSize: UInt64, force: Bool) async throws(DepotError)
        -> VolumeInfo
    {
        // Checks, admission and the busy mark in one change; the file work after it.
        let checked = try await changes.run {
            () async throws(DepotError) -> (PoolRecord, VolumeRecord, UInt64)? in
            let (pool, record) = try await requireVolume(ref)
            try requireIdle(record, ref)
            try Self.validateSize(newSize, blockSize: UInt32(record.blockSize), existing: true)
            let oldSize = UInt64(record.sizeBytes)
            if newSize == oldSize { return nil }
            if record.volumeFormat == .qcow2 {
                if newSize < oldSize {
                    throw .unprocessable(
                        "'\(ref)' is a qcow2 volume: it can grow, not shrink (its snapshots and clones keep the size they were taken at); nothing was changed"
                    )
                }
                if record.provisioningKind != .thin, record.baseSnapshotId == nil {
                    throw .unprocessable(
                        "'\(ref)' is a thick qcow2 volume (preallocated); growing one is not supported yet (its new clusters would not be preallocated). Convert it with a full clone to a raw volume, or take a snapshot first (its overlay then grows thin, the space still reserved)"
                    )
                }
            }
            if newSize > oldSize {
                try await figures(for: pool).admit(
                    size: newSize - oldSize, provisioning: record.provisioningKind, pool: ref.pool)
            } else {
                guard force else {
                    throw .conflict(
                        "shrinking '\(ref)' from \(ByteSize.format(oldSize)) to \(ByteSize.format(newSize)) would discard its last "
                            + "\(ByteSize.format(oldSize - newSize)); nothing was changed (a shrink must be asked for with force)"
                    )
                }
            }
            busy.insert(record.id!)
            let reservation = newSize > oldSize && record.provisioningKind.reservesSpace ? newSize - oldSize : 0
            inflightReservations[pool.id!, default: 0] += reservation
            return (pool, record, reservation)
        }
        guard let (pool, unchanged, reservation) = checked else { return try await volume(ref) }
        var record = unchanged
        let blockSize = UInt64(record.blockSize)
        let oldSize = UInt64(record.sizeBytes)
        let provisioning = record.provisioningKind
        let path = pool.path + "/" + record.fileName
        defer {
            busy.remove(record.id!)
            inflightReservations[pool.id!, default: 0] -= reservation
        }
        if newSize < oldSize {
            let lastWritten = try await runIO {
                try VolumeFile.lastNonZeroEnd(path: path, from: newSize, blockSize: blockSize)
            }
            if let lastWritten {
                throw .conflict(
                    "cannot shrink '\(ref)' to \(ByteSize.describe(newSize)): data is written up to byte \(lastWritten) "
                        + "(block \(lastWritten / blockSize - 1)); the smallest safe size is \(ByteSize.describe(lastWritten))"
                )
            }
        }
        // Intent, file, commit: reconcile finishes whichever step a crash cut.
        record.pendingSizeBytes = Int64(newSize)
        try await catalog.updateVolume(record)
        if record.volumeFormat == .qcow2 {
            do {
                try await growImage(record, path: path, to: newSize)
            } catch {
                record.pendingSizeBytes = nil
                try? await catalog.updateVolume(record)
                throw error
            }
        } else {
            try await resizeFile(&record, path: path, from: oldSize, to: newSize, provisioning: provisioning)
        }
        record.sizeBytes = Int64(newSize)
        record.pendingSizeBytes = nil
        try await catalog.updateVolume(record)
        allocated[record.id!] = VolumeFile.status(path: path)?.allocatedBytes ?? 0
        logger.info("volume resized", metadata: ["volume": "\(ref)", "from": "\(oldSize)", "to": "\(newSize)"])
        return info(record, pool: pool)
    }

    /// A raw volume's file to its new size (back to the old one if that fails).
    private func resizeFile(
        _ record: inout VolumeRecord, path: String, from oldSize: UInt64, to newSize: UInt64, provisioning: Provisioning
    ) async throws(DepotError) {
        do {
            try await runIO {
                try VolumeFile.resize(path: path, from: oldSize, to: newSize, provisioning: provisioning)
            }
        } catch {
            record.pendingSizeBytes = nil
            _ = try? await runIO { try VolumeFile.resize(path: path, from: newSize, to: oldSize, provisioning: .thin) }
            try? await catalog.updateVolume(record)
            throw error
        }
    }

    /// A qcow2 volume's active image grown to `newSize`: under its LUs when
    /// they serve it (drained for the header and L1 write; their sessions
    /// then get CAPACITY DATA HAS CHANGED), else in the file alone. The
    /// layers below keep their size (what lies past a backing file reads
    /// as zeros, qcow2.rst).
    private func growImage(_ record: VolumeRecord, path: String, to newSize: UInt64) async throws(DepotError) {
        do {
            if let live = openVolumes.existing(record.id!) {
                try await live.grow(to: newSize) { backstore in
                    guard let image = backstore as? QCOW2BlockDevice else {
                        throw DepotError.internalError("the volume's backstore is not a qcow2 image")
                    }
                    try await image.grow(to: newSize)
                }
            } else {
                let blockSize = Int(record.blockSize)
                let image = try await runIO { try QCOW2BlockDevice(path: path, blockSize: blockSize, readOnly: false) }
                try await image.grow(to: newSize)
                try await image.close()
            }
        } catch let error as DepotError {
            throw error
        } catch let error as QCOW2Error {
            throw .unprocessable("cannot grow '\(record.name)': \(error)")
        } catch BlockDeviceError.noSpace {
            throw .insufficientSpace("cannot grow '\(record.name)': the pool's filesystem is full")
        } catch {
            throw .internalError("growing '\(record.name)': \(error)")
        }
    }

    public func renameVolume(_ ref: VolumeRef, to newName: String) async throws(DepotError) -> VolumeInfo {
        try await changes.run { () async throws(DepotError) -> VolumeInfo in try await rename(ref, to: newName) }
    }

    private func rename(_ ref: VolumeRef, to newName: String) async throws(DepotError) -> VolumeInfo {
        try ObjectName.validate(newName, kind: "volume")
        let (pool, current) = try await requireVolume(ref)
        try requireIdle(current, ref)
        if newName == ref.name { return info(current, pool: pool) }
        busy.insert(current.id!)
        defer { busy.remove(current.id!) }
        var record = try await catalog.beginRename(
            volumeId: current.id!, poolId: pool.id!, poolName: ref.pool, newName: newName)
        let from = pool.path + "/" + record.fileName
        let newFile = VolumeRecord.fileName(for: newName, format: record.volumeFormat)
        let to = pool.path + "/" + newFile
        do {
            try await runIO { try VolumeFile.rename(from: from, to: to) }
        } catch {
            record.pendingName = nil
            try? await catalog.updateVolume(record)
            throw error
        }
        record.name = newName
        record.fileName = newFile
        record.pendingName = nil
        try await catalog.updateVolume(record)
        logger.info("volume renamed", metadata: ["volume": "\(ref)", "to": "\(newName)"])
        return info(record, pool: pool)
    }

    /// Deletes a volume. `force` also cancels a create still running (eager
    /// zeroing): the create stops between chunks, removes its file and row,
    /// and this returns once they are gone.
    public func deleteVolume(_ ref: VolumeRef, force: Bool = false) async throws(DepotError) {
        try await changes.run { () async throws(DepotError) in try await removeVolume(ref, force: force) }
    }

    /// `deleteVolume` inside a change (a forced pool delete runs it for each volume).
    func removeVolume(_ ref: VolumeRef, force: Bool = false) async throws(DepotError) {
        var (pool, record) = try await requireVolume(ref)
        if force, record.volumeState == .creating, let cancel = cancels[record.id!] {
            cancel.cancel()
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, cancels[record.id!] != nil {
                try? await Task.sleep(for: .milliseconds(20))
            }
            guard cancels[record.id!] == nil else {
                throw .conflict("volume '\(ref)': the create did not stop within 60 s")
            }
            logger.info("volume create cancelled by a forced delete", metadata: ["volume": "\(ref)"])
            if try await catalog.volume(poolId: pool.id!, name: ref.name) == nil { return }
            (pool, record) = try await requireVolume(ref)
        }
        try requireIdle(record, ref)
        let mapped = try await catalog.mappings(volumeId: record.id!)
        if !mapped.isEmpty {
            throw .conflict(
                "volume '\(ref)' is mapped as " + mapped.map { "LUN \($0.1) of \($0.0)" }.joined(separator: ", ")
                    + "; unmap it first")
        }
        // Its snapshots go with it (force), but never from under a linked clone.
        let own = try await catalog.snapshots(volumeId: record.id!)
        if !own.isEmpty {
            let view = try await chainView()
            let clones = Set(own.flatMap { view.clones(of: $0).map(view.label) }).sorted()
            if !clones.isEmpty {
                throw .conflict(
                    "volume '\(ref)' has snapshots that linked clones are built on (\(clones.joined(separator: ", "))); flatten or delete them first"
                )
            }
            guard force else {
                throw .conflict(
                    "volume '\(ref)' has \(own.count) snapshot(s) (\(own.map(\.name).joined(separator: ", "))); delete them first, or delete the volume with force to delete them too"
                )
            }
        }
        busy.insert(record.id!)
        defer { busy.remove(record.id!) }
        record.state = VolumeState.deleting.rawValue
        try await catalog.updateVolume(record)
        let path = pool.path + "/" + record.fileName
        do {
            try await runIO { try VolumeFile.remove(path: path) }
        } catch {
            // The file is still there: the volume stays usable.
            record.state = VolumeState.ready.rawValue
            try? await catalog.updateVolume(record)
            throw error
        }
        try await removeSnapshots(of: record, pool: pool)
        try await catalog.deleteVolume(id: record.id!)
        allocated[record.id!] = nil
        logger.info("volume deleted", metadata: ["volume": "\(ref)", "snapshots": "\(own.count)"])
    }

    func requireIdle(_ record: VolumeRecord, _ ref: VolumeRef) throws(DepotError) {
        if busy.contains(record.id!) || record.volumeState == .creating || record.volumeState == .deleting {
            throw .conflict("volume '\(ref)' is busy (\(record.volumeState.rawValue)); try again when it is ready")
        }
    }

    /// For a resize (`existing`), a size that is whole 512-byte sectors but
    /// not whole blocks of a 4096-byte volume is 422: well formed, wrong for
    /// this volume (Docs/openapi.yaml documents sizes in 512-byte multiples).
    static func validateSize(_ size: UInt64, blockSize: UInt32, existing: Bool = false) throws(DepotError) {
        guard size > 0 else { throw .invalidArgument("size must be greater than zero") }
        guard size <= UInt64(Int64.max) else {
            throw .invalidArgument("size too large: \(ByteSize.describe(size)); at most 8 EiB")
        }
        guard size % UInt64(blockSize) == 0 else {
            let message = "size \(ByteSize.describe(size)) is not a multiple of the block size \(blockSize) bytes"
            throw existing && size % 512 == 0 ? .unprocessable(message) : .invalidArgument(message)
        }
    }
}
