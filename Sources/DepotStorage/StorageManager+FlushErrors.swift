import DepotCatalog
import DepotCore

/// The flush-error latch of a volume (`VolumeDevice`): a failed flush is
/// recorded in the catalog, so the volume stays in `error` across restarts,
/// until an operator who has checked it clears it.
extension StorageManager {
    /// Called when a volume's device latches: the reason is stored and logged.
    public func recordFlushFailure(volumeId: Int64, _ reason: String) async {
        logger.critical(
            "flush failed: SYNCHRONIZE CACHE and FUA writes of the volume fail until `depot volume clear-error`",
            metadata: ["volume": "\(volumeId)", "error": "\(reason)"])
        do {
            try await catalog.setVolumeFlushError(id: volumeId, reason)
        } catch {
            logger.error("the flush failure could not be recorded", metadata: ["error": "\(error)"])
        }
    }

    /// Volumes in error per pool name (`depot_pool_volumes_in_error`).
    public func volumesInError() async throws(DepotError) -> [String: Int] {
        let pools = Dictionary(uniqueKeysWithValues: try await catalog.pools().map { ($0.id!, $0.name) })
        var result: [String: Int] = [:]
        for v in try await catalog.volumes()
        where v.flushError != nil || openVolumes.existing(v.id!)?.latchedFailure != nil {
            guard let name = pools[v.poolId] else { continue }
            result[name, default: 0] += 1
        }
        return result
    }

    /// `depot volume clear-error`: flushes reach the volume's file again.
    /// Refused when the volume is not in error. The first flush after it
    /// asks the file system afresh; a failure latches the volume again.
    public func clearError(_ ref: VolumeRef) async throws(DepotError) -> VolumeInfo {
        let (pool, volume) = try await requireVolume(ref)
        let device = openVolumes.existing(volume.id!)
        guard let reason = device?.latchedFailure ?? volume.flushError else {
            throw .conflict("volume \(ref) is not in error")
        }
        try await catalog.setVolumeFlushError(id: volume.id!, nil)
        device?.clearLatch()
        logger.warning("flush error cleared by the operator", metadata: ["volume": "\(ref)", "was": "\(reason)"])
        var cleared = volume
        cleared.flushError = nil
        return info(cleared, pool: pool)
    }
}
