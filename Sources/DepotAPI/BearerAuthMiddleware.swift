import DepotCore
import Hummingbird

/// Every route but `/health` needs `Authorization: Bearer TOKEN` (RFC 6750 §2.1).
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = DepotRequestContext
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let header = request.headers[.authorization] else {
            throw APIError(DepotError.unauthorized("missing bearer token (Authorization: Bearer ...)"))
        }
        let prefix = "Bearer "
        guard header.count > prefix.count, header.lowercased().hasPrefix(prefix.lowercased()),
            Self.constantTimeEqual(Array(header.utf8.dropFirst(prefix.utf8.count)), Array(token.utf8))
        else {
            throw APIError(DepotError.unauthorized("invalid bearer token"))
        }
        return try await next(request, context)
    }

    /// Compares without an early exit, so timing does not leak the token.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}
