/// Names of pools and volumes.
///
/// `[a-z0-9][a-z0-9._-]{0,62}`: safe as a file name on every filesystem, in a
/// URL path segment, in an iSCSI name suffix and in an NFS pseudo path; no
/// `/`, so no path traversal, and no leading `.` so never `.` or `..`.
public enum ObjectName {
    public static let maxLength = 63

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= maxLength else { return false }
        guard isLowerAlnum(first) else { return false }
        return bytes.dropFirst().allSatisfy {
            isLowerAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
        }
    }

    /// Throws `invalidArgument` naming the rule when `name` breaks it.
    public static func validate(_ name: String, kind: String) throws(DepotError) {
        guard isValid(name) else {
            throw .invalidArgument(
                "invalid \(kind) name '\(name)': use 1-63 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit"
            )
        }
    }

    private static func isLowerAlnum(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
    }
}

/// A volume's full name, `POOL/NAME`.
public struct VolumeRef: Hashable, Sendable, CustomStringConvertible {
    public let pool: String
    public let name: String

    public init(pool: String, name: String) {
        self.pool = pool
        self.name = name
    }

    public init(parsing text: String) throws(DepotError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw .invalidArgument("volume must be given as POOL/NAME, got '\(text)'")
        }
        try ObjectName.validate(String(parts[0]), kind: "pool")
        try ObjectName.validate(String(parts[1]), kind: "volume")
        self.init(pool: String(parts[0]), name: String(parts[1]))
    }

    public var description: String { "\(pool)/\(name)" }
}
