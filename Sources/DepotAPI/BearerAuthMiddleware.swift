import DepotCore
import Foundation
import HTTPTypes
import Hummingbird

/// Every route but `/health` needs `Authorization: Bearer TOKEN` (RFC 6750
/// §2.1), a token the store knows and that has not expired. Failures are
/// written to the audit log and counted per client address: after too many,
/// the address is answered 429 with Retry-After (RFC 6585 §4) until its
/// window passes.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = DepotRequestContext
    let tokens: TokenStore
    let throttle: AuthThrottle
    let audit: AuditLog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let address = context.address
        if let wait = throttle.retryAfter(address) {
            // Once per lockout in the audit log (the failures that caused it are each there).
            if throttle.firstRefusal(address) {
                await record(
                    request, context, "too many failed authentications from \(address); refused for \(wait) s", 429)
            }
            var error = APIError(
                DepotError.tooManyRequests(
                    "too many failed authentications from \(address); retry in \(wait) seconds"))
            error.headers[.retryAfter] = "\(wait)"
            throw error
        }
        let verdict: TokenStore.Verdict
        let prefix = "bearer "
        if let header = request.headers[.authorization], header.count > prefix.count,
            header.lowercased().hasPrefix(prefix)
        {
            verdict = tokens.verify(String(header.dropFirst(prefix.count)))
        } else {
            try await refuse(request, context, "missing bearer token (Authorization: Bearer ...)")
        }
        switch verdict {
        case .valid(let identity):
            var context = context
            context.token = identity
            return try await next(request, context)
        case .expired(let name):
            try await refuse(request, context, "token '\(name)' has expired")
        case .unknown:
            try await refuse(request, context, "invalid bearer token")
        }
    }

    private func refuse(_ request: Request, _ context: Context, _ why: String) async throws -> Never {
        throttle.fail(context.address)
        await record(request, context, "unauthorized: \(why)", 401)
        throw APIError(DepotError.unauthorized(why))
    }

    private func record(_ request: Request, _ context: Context, _ outcome: String, _ status: Int) async {
        await audit.append(
            .init(
                time: Timestamp.now(), client: context.client, action: "\(request.method.rawValue) \(request.uri.path)",
                object: AuditMiddleware.object(from: request.uri.path), outcome: outcome, status: status))
    }
}

/// A route group's rule: reads need `reads`, everything else `changes`; a
/// token with less gets 403 naming the role needed.
struct RoleMiddleware: RouterMiddleware {
    typealias Context = DepotRequestContext
    let reads: TokenRole
    let changes: TokenRole

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let needed = request.method == .get || request.method == .head ? reads : changes
        guard let token = context.token else { throw APIError(DepotError.unauthorized("not authenticated")) }
        guard token.role.allows(needed) else {
            throw APIError(
                DepotError.forbidden(
                    "\(request.method.rawValue) \(request.uri.path) needs the \(needed.rawValue) role; "
                        + "token '\(token.name)' is \(token.role.rawValue)"))
        }
        return try await next(request, context)
    }
}
