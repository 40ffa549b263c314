import Synchronization

/// Set once to stop a long operation, read from whatever thread runs it: an
/// eager-zeroing create on the I/O threads, the CLI's progress poller. A flag
/// rather than Swift task cancellation, so stopping never cancels work in
/// flight (FoundationNetworking can deadlock when a task is cancelled while
/// its URLSession request completes).
public final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public var isSet: Bool { flag.load(ordering: .acquiring) }
    public func cancel() { flag.store(true, ordering: .releasing) }
}
