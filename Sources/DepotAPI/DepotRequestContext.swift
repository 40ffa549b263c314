import Foundation
import Hummingbird
import NIOCore

/// Request context: Hummingbird's core storage plus the peer address (for
/// the audit log) and a JSON coder with stable output.
public struct DepotRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The token the request authenticated with (set by `BearerAuthMiddleware`).
    public var token: TokenStore.Identity?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    public var requestDecoder: StrictJSONDecoder { StrictJSONDecoder() }

    public var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// The peer's address without its port: what failed logins are counted by.
    var address: String {
        guard let remoteAddress else { return "unknown" }
        return remoteAddress.ipAddress ?? "\(remoteAddress)"
    }

    /// The peer as the audit log names it.
    var client: String {
        guard let remoteAddress else { return "unknown" }
        if let ip = remoteAddress.ipAddress, let port = remoteAddress.port { return "\(ip):\(port)" }
        return "\(remoteAddress)"
    }
}
