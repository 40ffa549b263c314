import Foundation
import Hummingbird

/// Request bodies held to Docs/openapi.yaml, which declares every request
/// schema `additionalProperties: false` and no field nullable unless its
/// type says `null`. Foundation's decoder ignores a key it does not know and
/// takes `null` for an absent field; here both are 400 naming the key. A
/// misspelt optional field (`"provisoning": "thick"`) would otherwise be
/// dropped without a word, and a field an older daemon does not know (an
/// ACL's `networks`) would widen access instead of failing.
///
/// The decoded value is encoded again: a key of the body its encoding lacks
/// is one the type does not read, or a `null` it took for absent. A type that
/// writes `null` out (SetPortalsRequest: null is "every portal") keeps it.
public struct StrictJSONDecoder: RequestDecoder {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws
        -> T
    {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let data = Data(buffer.readableBytesView)
        let value = try JSONDecoder().decode(T.self, from: data)
        if let encodable = value as? any Encodable,
            let sent = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let read = try? JSONSerialization.jsonObject(
                with: JSONEncoder().encode(encodable), options: [.fragmentsAllowed]),
            let problem = Self.unread(sent, read: read, at: "")
        {
            throw APIError(status: .badRequest, code: "invalid_argument", message: problem)
        }
        return value
    }

    /// What of `sent` the decoded value does not hold, said for the client
    /// (`'rules[0].anonuid' is null…`), or nil when it holds all of it.
    static func unread(_ sent: Any, read: Any, at path: String) -> String? {
        switch (sent, read) {
        case (let sent as [String: Any], let read as [String: Any]):
            for key in sent.keys.sorted() {
                let inner = path.isEmpty ? key : "\(path).\(key)"
                guard let kept = read[key] else {
                    // The key is the client's: at most 100 characters of it go into the answer and the audit log.
                    let said = inner.count > 100 ? inner.prefix(100) + "…" : Substring(inner)
                    return sent[key] is NSNull
                        ? "'\(said)' is null: leave the field out or give it a value"
                        : "'\(said)' is not a field of this request"
                }
                if let problem = unread(sent[key] as Any, read: kept, at: inner) { return problem }
            }
            return nil
        case (let sent as [Any], let read as [Any]) where sent.count == read.count:
            for (index, pair) in zip(sent, read).enumerated() {
                if let problem = unread(pair.0, read: pair.1, at: "\(path)[\(index)]") { return problem }
            }
            return nil
        default:
            return nil
        }
    }
}
