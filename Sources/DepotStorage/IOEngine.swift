import NIOPosix

/// Runs blocking file work (open, fallocate, pwrite, fsync, rename) off the
/// async executors, on a thread pool sized to the cores (DESIGN.md: the event
/// loop never blocks).
public struct IOEngine: Sendable {
    private let pool: NIOThreadPool

    public init(pool: NIOThreadPool = .singleton) {
        self.pool = pool
    }

    public func run<T: Sendable>(_ body: @Sendable @escaping () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }
}
