/// NOP-In pings (RFC 7143 §11.19) for a connection that has gone quiet, and
/// how long an unanswered one is allowed before the peer counts as dead.
/// `interval` nil turns pinging off.
public struct Keepalive: Sendable {
    public var interval: Duration?
    public var timeout: Duration

    public init(interval: Duration? = .seconds(5), timeout: Duration = .seconds(90)) {
        self.interval = interval
        self.timeout = timeout
    }
}
