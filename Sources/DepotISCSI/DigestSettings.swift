import NIOConcurrencyHelpers

/// Which digests a connection uses; switched on by the login when the full
/// feature phase starts, read by the frame decoder for every PDU.
public final class DigestSettings: Sendable {
    private let state = NIOLockedValueBox<(header: Bool, data: Bool)>((false, false))

    public init() {}

    public var current: (header: Bool, data: Bool) { state.withLockedValue { $0 } }

    public func enable(header: Bool, data: Bool) { state.withLockedValue { $0 = (header, data) } }
}
