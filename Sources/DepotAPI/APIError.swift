import DepotCore
import Foundation
import Hummingbird

/// A `DepotError` as an HTTP response: `{"error": {"code", "message"}}`.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    /// More headers for the answer (Retry-After on a 429).
    var headers = HTTPFields()

    init(_ error: DepotError) {
        self.status = HTTPResponse.Status(code: error.httpStatus)
        self.code = error.code.rawValue
        self.message = error.message
    }

    init(status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(ErrorBody(code: code, message: message))
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"depot\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error into the JSON error body, so clients parse one shape.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = DepotRequestContext
    /// What tells 404 from 405 when no route matched.
    var routes: RouteTable? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            throw methodNotAllowed(request) ?? Self.apiError(for: error)
        } catch {
            let answer = Self.apiError(for: error)
            if answer.status == .internalServerError, !(error is APIError), !(error is DepotError) {
                context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            }
            throw answer
        }
    }

    /// 405 with `Allow` when routes serve the path under other methods
    /// (the router's own 404 says only that no route matched).
    func methodNotAllowed(_ request: Request) -> APIError? {
        guard let routes else { return nil }
        let allowed = routes.methods(at: request.uri.path)
        guard !allowed.isEmpty, !allowed.contains(request.method.rawValue) else { return nil }
        var answer = APIError(
            status: .methodNotAllowed, code: Self.code(for: .methodNotAllowed),
            message:
                "\(request.method.rawValue) is not served at \(request.uri.path); it takes \(allowed.joined(separator: ", "))"
        )
        answer.headers[.allow] = allowed.joined(separator: ", ")
        return answer
    }

    /// The JSON error an error is answered with.
    static func apiError(for error: any Error) -> APIError {
        switch error {
        case let error as APIError: return error
        case let error as DepotError: return APIError(error)
        case let error as HTTPError:
            return APIError(
                status: error.status, code: code(for: error.status), message: error.body ?? error.status.reasonPhrase)
        case is DecodingError:
            return APIError(
                status: .badRequest, code: DepotError.Code.invalidArgument.rawValue,
                message: "request body is not valid JSON for this call")
        default:
            return APIError(
                status: .internalServerError, code: DepotError.Code.internalError.rawValue, message: "\(error)")
        }
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: DepotError.Code.invalidArgument.rawValue
        case 401: DepotError.Code.unauthorized.rawValue
        case 403: DepotError.Code.forbidden.rawValue
        case 404: DepotError.Code.notFound.rawValue
        case 409: DepotError.Code.conflict.rawValue
        case 413: "payload_too_large"
        case 422: DepotError.Code.unprocessable.rawValue
        case 429: DepotError.Code.tooManyRequests.rawValue
        default: "http_\(status.code)"
        }
    }
}
