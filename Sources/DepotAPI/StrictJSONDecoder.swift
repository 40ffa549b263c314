import DepotCore
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
            let problem = BodyKeys.unread(sent, read: read)
        {
            throw APIError(status: .badRequest, code: "invalid_argument", message: problem)
        }
        return value
    }
}
