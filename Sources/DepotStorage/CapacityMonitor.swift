import Logging
import ServiceLifecycle

/// Periodic rescan of every volume file's allocation, so figures stay
/// current when files grow through paths the daemon does not own.
public struct CapacityMonitor: Service {
    let storage: StorageManager
    let interval: Duration
    let logger: Logger
    /// Runs after every rescan (the iSCSI target passes the figures on to its LUs).
    let afterRescan: @Sendable () async -> Void

    public init(
        storage: StorageManager, interval: Duration, logger: Logger,
        afterRescan: @escaping @Sendable () async -> Void = {}
    ) {
        self.afterRescan = afterRescan
        self.storage = storage
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { try await self.loop() }
    }

    private func loop() async throws {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            do {
                let changed = try await storage.rescan()
                if changed > 0 { logger.debug("capacity rescan", metadata: ["changed": "\(changed)"]) }
                await afterRescan()
            } catch {
                logger.error("capacity rescan failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
