import DepotCore
import Foundation

/// What the REST API parses from a client: each request body type decoded
/// from the input (JSON), and the text parsers its handlers apply to the
/// fields (sizes, names, IQNs, networks, durations). Errors are fine;
/// traps are not. (schemathesis covers the handlers over HTTP.)
enum APIFuzzTargets {
    static func requestBodies(_ data: [UInt8]) {
        let json = Data(data)
        let decoder = JSONDecoder()
        let sent = try? JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed])
        // Decoded, then held to its keys as the API's StrictJSONDecoder does.
        func decode<T: Codable>(_ type: T.Type) {
            guard let value = try? decoder.decode(type, from: json), let sent,
                let again = try? JSONEncoder().encode(value),
                let read = try? JSONSerialization.jsonObject(with: again, options: [.fragmentsAllowed])
            else { return }
            _ = BodyKeys.unread(sent, read: read)
        }
        decode(CreatePoolRequest.self)
        decode(UpdatePoolRequest.self)
        decode(CreateVolumeRequest.self)
        decode(UpdateVolumeRequest.self)
        decode(CreateExportRequest.self)
        decode(UpdateExportRequest.self)
        decode(CreateSnapshotRequest.self)
        decode(RollbackRequest.self)
        decode(CloneRequest.self)
        decode(FlattenRequest.self)
        decode(CreateTargetRequest.self)
        decode(MapLUNRequest.self)
        decode(ACLRequest.self)
        decode(SetPortalsRequest.self)
        decode(CHAPRequest.self)
        decode(SetPortalGroupStateRequest.self)
        decode(CreateTokenRequest.self)
        // Every string in the body through every field parser.
        let strings = sent.map(strings(in:))
        for text in (strings ?? []) + [String(decoding: data, as: UTF8.self)] {
            _ = try? ByteSize.parse(text)
            _ = try? ByteSize.parseChange(text)
            _ = try? ISCSIName.validate(text)
            _ = try? ObjectName.validate(text, kind: "volume")
            _ = try? VolumeRef(parsing: text)
            _ = try? SnapshotRef(parsing: text)
            _ = try? Provisioning(parsing: text)
            _ = try? VolumeFormat(parsing: text)
            _ = try? DurationText.seconds(text)
            if let prefix = try? NetworkPrefix(parsing: text) { _ = try? NetworkPrefix(parsing: "\(prefix)") }
            _ = try? NetworkPrefix(parsing: text, hostBits: true)
        }
    }

    static func strings(in value: Any) -> [String] {
        switch value {
        case let s as String: return [s]
        case let a as [Any]: return a.flatMap(strings(in:))
        case let d as [String: Any]: return d.keys.map { $0 } + d.values.flatMap(strings(in:))
        default: return []
        }
    }
}
