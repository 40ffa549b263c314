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

    /// An integer path parameter. JSON Schema's integer is a number whose
    /// fraction is zero, so `1650.0` and `1e3` are integers as a client
    /// library may print them; anything else is 400.
    func integer(_ name: String, saying what: String) throws -> Int {
        let text = try decoded(name)
        if let value = Int(text) { return value }
        if let value = Double(text), value.isFinite, value.rounded() == value, abs(value) < 0x1p53 {
            return Int(value)
        }
        throw APIError(
            status: .badRequest, code: "invalid_argument", message: "\(what) must be a whole number, got '\(text)'")
    }
}
