import DepotCore
import Yams

/// A declarative file for `depot apply -f FILE` (see Targets/*.yaml).
///
/// ```yaml
/// pools:
///   - name: gold
///     capacity: 100G          # optional; else the filesystem's size
///     maxOvercommit: 4        # optional thresholds as in `depot pool create`
///     volumes:
///       - name: vm1
///         size: 20G
///         provisioning: thin  # thin | thick | eager-zeroed
///         blockSize: 512
///         format: raw         # raw | qcow2
///         snapshots: [base]   # snapshots that must exist (made if missing, never deleted)
///       - name: vm2
///         clone: vm1@base     # a linked clone of that snapshot (same pool); no size
///         full: false         # true: an independent copy (a job) instead
/// ```
public struct ApplySpec: Decodable, Sendable, Equatable {
    public struct Pool: Decodable, Sendable, Equatable {
        public var name: String
        public var path: String?
        public var capacity: SizeValue?
        public var maxOvercommit: Double?
        public var warnPercent: Double?
        public var criticalPercent: Double?
        public var reservedPercent: Double?
        public var volumes: [Volume]?
    }

    public struct Volume: Decodable, Sendable, Equatable {
        public var name: String
        /// Required unless the volume is a clone (its size is the snapshot's).
        public var size: SizeValue?
        public var provisioning: Provisioning?
        public var blockSize: UInt32?
        public var format: VolumeFormat?
        public var snapshots: [String]?
        /// `VOLUME@SNAP` (same pool) or `POOL/VOLUME@SNAP`.
        public var clone: String?
        public var full: Bool?
    }

    public var pools: [Pool]

    /// Parses a file's text with strict keys (`ApplyKeys`): an unknown key is
    /// an error naming `file` and the line.
    public static func parse(yaml: String, file: String) throws -> ApplySpec {
        try ApplyKeys.check(yaml: yaml, file: file)
        return try parse(yaml: yaml)
    }

    public static func parse(yaml: String) throws -> ApplySpec {
        do {
            return try YAMLDecoder().decode(ApplySpec.self, from: yaml)
        } catch let error as DecodingError {
            throw CLIFailure("invalid apply file: \(ApplySpec.describe(error))")
        } catch {
            throw CLIFailure("invalid apply file: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .keyNotFound(let key, let ctx): return "missing '\(key.stringValue)' at \(path(ctx.codingPath))"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx):
            return "\(ctx.debugDescription) at \(path(ctx.codingPath))"
        @unknown default: return "\(error)"
        }
    }
}

/// A size written as `20G` or as a plain byte count.
public struct SizeValue: Decodable, Sendable, Equatable {
    public var bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text: String
        if let number = try? container.decode(UInt64.self) {
            text = String(number)
        } else {
            text = try container.decode(String.self)
        }
        do { bytes = try ByteSize.parse(text) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }
}
