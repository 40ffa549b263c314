import DepotCore
#if canImport(Glibc)
    import Glibc
#endif

/// A parsed export client: the forms exports(5) and Ganesha's `Clients`
/// both accept. Anything else (netgroups, wildcards, quotes, spaces,
/// parentheses) is refused, so a rule can never inject syntax into either file.
public enum ClientSpec: Equatable, Sendable {
    case anyone
    case host(String)
    /// An address network; a single address is a full-length prefix.
    case network(family: Int32, address: [UInt8], prefix: Int)

    public static func parse(_ text: String) throws(DepotError) -> ClientSpec {
        if text == "*" { return .anyone }
        guard !text.isEmpty, text.utf8.count <= 253 else {
            throw .invalidArgument("export client is empty or too long")
        }
        var addressPart = Substring(text)
        var prefix: Int?
        if let slash = text.firstIndex(of: "/") {
            addressPart = text[..<slash]
            guard let p = Int(text[text.index(after: slash)...]) else {
                throw .invalidArgument("export client '\(text)': bad prefix length")
            }
            prefix = p
        }
        if let bytes = parseAddress(String(addressPart), family: AF_INET) {
            return try network(AF_INET, bytes, prefix ?? 32, text)
        }
        if let bytes = parseAddress(String(addressPart), family: AF_INET6) {
            return try network(AF_INET6, bytes, prefix ?? 128, text)
        }
        guard prefix == nil, isHostName(text) else {
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
        case (.network(let fa, let a, let pa), .network(let fb, let b, let pb)):
            guard fa == fb else { return false }
            return Self.sameNetwork(a, b, min(pa, pb))
        }
    }

    private static func network(_ family: Int32, _ bytes: [UInt8], _ prefix: Int, _ text: String) throws(DepotError)
        -> ClientSpec
    {
        guard prefix >= 0, prefix <= bytes.count * 8 else {
            throw .invalidArgument("export client '\(text)': prefix length must be 0-\(bytes.count * 8)")
        }
        return .network(family: family, address: bytes, prefix: prefix)
    }

    private static func sameNetwork(_ a: [UInt8], _ b: [UInt8], _ bits: Int) -> Bool {
        var remaining = bits
        for i in 0..<a.count where remaining > 0 {
            let take = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if a[i] & mask != b[i] & mask { return false }
            remaining -= take
        }
        return true
    }

    static func parseAddress(_ text: String, family: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16)
        let ok = text.withCString { inet_pton(family, $0, &buffer) } == 1
        guard ok else { return nil }
        return Array(buffer.prefix(family == AF_INET ? 4 : 16))
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
