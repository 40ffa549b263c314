/// The one error type that crosses layer boundaries.
///
/// A public struct over a private enum (after `NIOSSHError`): callers match on
/// `code`, which stays stable as cases are added; `message` carries the
/// diagnostics an operator needs (names, figures).
public struct DepotError: Error, Hashable, Sendable, CustomStringConvertible {
    fileprivate enum Base: String, Hashable, Sendable {
        case invalidArgument = "invalid_argument"
        case unauthorized = "unauthorized"
        case forbidden = "forbidden"
        case tooManyRequests = "too_many_requests"
        case notFound = "not_found"
        case conflict = "conflict"
        case unprocessable = "unprocessable"
        case insufficientSpace = "insufficient_space"
        case internalError = "internal"
    }

    /// A stable machine-readable code; the `error.code` of the API's JSON body.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate let base: Base
        public var description: String { base.rawValue }
        public var rawValue: String { base.rawValue }

        public static let invalidArgument = Code(base: .invalidArgument)
        public static let unauthorized = Code(base: .unauthorized)
        public static let forbidden = Code(base: .forbidden)
        public static let tooManyRequests = Code(base: .tooManyRequests)
        public static let notFound = Code(base: .notFound)
        public static let conflict = Code(base: .conflict)
        public static let unprocessable = Code(base: .unprocessable)
        public static let insufficientSpace = Code(base: .insufficientSpace)
        public static let internalError = Code(base: .internalError)
    }

    public let code: Code
    public let message: String

    private init(_ base: Base, _ message: String) {
        self.code = Code(base: base)
        self.message = message
    }

    public var description: String { message }

    /// HTTP status the API answers with (RFC 9110 §15). Too little space is
    /// 409 Conflict (§15.5.10: the request conflicts with the pool's state
    /// and may succeed once space is freed), its code `insufficient_space`:
    /// a client's request that would overfill a pool is not a server error,
    /// as RFC 4918's 507 would say.
    public var httpStatus: Int {
        switch code.base {
        case .invalidArgument: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .tooManyRequests: 429
        case .notFound: 404
        case .conflict: 409
        case .unprocessable: 422
        case .insufficientSpace: 409
        case .internalError: 500
        }
    }

    public static func invalidArgument(_ message: String) -> DepotError { .init(.invalidArgument, message) }
    public static func unauthorized(_ message: String) -> DepotError { .init(.unauthorized, message) }
    public static func forbidden(_ message: String) -> DepotError { .init(.forbidden, message) }
    public static func tooManyRequests(_ message: String) -> DepotError { .init(.tooManyRequests, message) }
    public static func notFound(_ message: String) -> DepotError { .init(.notFound, message) }
    public static func conflict(_ message: String) -> DepotError { .init(.conflict, message) }
    public static func unprocessable(_ message: String) -> DepotError { .init(.unprocessable, message) }
    public static func insufficientSpace(_ message: String) -> DepotError { .init(.insufficientSpace, message) }
    public static func internalError(_ message: String) -> DepotError { .init(.internalError, message) }
}
