import DepotCore

/// Rules for the directory a pool lives in.
enum PoolPath {
    /// Absolute, normalised, no `..` or `.` components, no trailing slash.
    static func normalise(_ path: String) throws(DepotError) -> String {
        guard path.hasPrefix("/") else { throw .invalidArgument("pool path must be absolute, got '\(path)'") }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        if parts.contains(where: { $0 == ".." || $0 == "." }) {
            throw .invalidArgument("pool path must not contain '.' or '..' components, got '\(path)'")
        }
        guard !parts.isEmpty else { throw .invalidArgument("pool path must not be '/'") }
        guard !path.utf8.contains(0) else { throw .invalidArgument("pool path contains a NUL byte") }
        return "/" + parts.joined(separator: "/")
    }

    /// True when one path is the other or lies beneath it.
    static func overlaps(_ a: String, _ b: String) -> Bool {
        a == b || a.hasPrefix(b + "/") || b.hasPrefix(a + "/")
    }
}
