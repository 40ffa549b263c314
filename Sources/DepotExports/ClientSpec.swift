import DepotCore

/// A parsed export client: the forms exports(5) and Ganesha's `Clients`
/// both accept. Anything else (netgroups, wildcards, quotes, spaces,
/// parentheses) is refused, so a rule can never inject syntax into either file.
public enum ClientSpec: Equatable, Sendable {
    case anyone
    case host(String)
    /// An address network; a single address is a full-length prefix.
    case network(NetworkPrefix)

    public static func parse(_ text: String) throws(DepotError) -> ClientSpec {
        if text == "*" { return .anyone }
        guard !text.isEmpty, text.utf8.count <= 253 else {
            throw .invalidArgument("export client is empty or too long")
        }
        if text.contains("/") || NetworkPrefix.address(text) != nil {
            return .network(try NetworkPrefix(parsing: text, hostBits: true))
        }
        guard isHostName(text) else {
            throw .invalidArgument(
                "export client '\(text)' is not a host name, an IPv4/IPv6 address, a CIDR network, or '*'")
        }
        return .host(text.lowercased())
    }

    /// Whether some client could match both specs. Host names are compared
    /// by name only (their addresses are DNS's business).
    public func overlaps(_ other: ClientSpec) -> Bool {
        switch (self, other) {
        case (.anyone, _), (_, .anyone): return true
        case (.host(let a), .host(let b)): return a == b
        case (.host, .network), (.network, .host): return false
        case (.network(let a), .network(let b)): return a.overlaps(b)
        }
    }

    /// RFC 1123 host names: dot-separated labels of letters, digits and '-'.
    static func isHostName(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            guard !label.isEmpty, label.utf8.count <= 63, label.first != "-", label.last != "-" else { return false }
            return label.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D
            }
        }
    }
}
