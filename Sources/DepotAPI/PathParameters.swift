import Hummingbird

extension Parameters {
    /// A path parameter as the client meant it: the router hands segments
    /// over still percent-encoded (RFC 3986 §2.1), so an IQN whose ':' a
    /// client library escaped arrives as `%3A`. A malformed escape is 400.
    func decoded(_ name: String) throws -> String {
        let raw = try require(name)
        guard let value = raw.removingPercentEncoding else {
            throw APIError(
                status: .badRequest, code: "invalid_argument",
                message: "path parameter '\(name)' has a malformed percent-encoding: \(raw)")
        }
        return value
    }
}
