#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/24`, `fd00::/64`); a bare
/// address is its full-length prefix. What iSCSI ACLs scope initiators by
/// and export rules match clients by.
public struct NetworkPrefix: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6), host bits cleared.
    public let address: [UInt8]
    public let length: Int

    public var isIPv4: Bool { address.count == 4 }

    /// Parses `ADDRESS[/LENGTH]`. Host bits set below the prefix are refused
    /// (`10.0.0.1/24` is a typo for either the host or the network) unless
    /// `hostBits` allows them, as exports(5) does; they are then cleared.
    /// A malformed text is invalidArgument (400); a well-formed network with
    /// host bits set is unprocessable (422), the syntax being right.
    public init(parsing text: String, hostBits: Bool = false) throws(DepotError) {
        // inet_pton reads a C string: "10.0.0.1\0anything" would pass as 10.0.0.1.
        guard !text.utf8.contains(0) else { throw .invalidArgument("network contains a NUL byte") }
        var addressPart = Substring(text)
        var length: Int?
        if let slash = text.firstIndex(of: "/") {
            addressPart = text[..<slash]
            let digits = text[text.index(after: slash)...]
            // Decimal without leading zeros, as Docs/openapi.yaml's Network pattern says.
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                digits == "0" || digits.first != "0", let p = Int(digits)
            else {
                throw .invalidArgument("network '\(text)': bad prefix length")
            }
            length = p
        }
        guard let bytes = Self.address(String(addressPart)) else {
            throw .invalidArgument("network '\(text)' is not an IPv4 or IPv6 address or CIDR network")
        }
        let bits = length ?? bytes.count * 8
        guard bits >= 0, bits <= bytes.count * 8 else {
            throw .invalidArgument("network '\(text)': prefix length must be 0-\(bytes.count * 8)")
        }
        guard hostBits || Self.masked(bytes, bits) == bytes else {
            throw .unprocessable(
                "network '\(text)' has host bits set; the network is \(Self.text(Self.masked(bytes, bits)))/\(bits)")
        }
        self.address = Self.masked(bytes, bits)
        self.length = bits
    }

    /// Whether `host` (a textual address, as a socket reports its peer) is in
    /// the network. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a
    /// dual-stack socket reports) counts as its IPv4 address.
    public func contains(_ host: String) -> Bool {
        guard var bytes = Self.address(host) else { return false }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
        return bytes.count == address.count && Self.masked(bytes, length) == address
    }

    /// Whether some address lies in both networks.
    public func overlaps(_ other: NetworkPrefix) -> Bool {
        address.count == other.address.count
            && Self.masked(address, min(length, other.length)) == Self.masked(other.address, min(length, other.length))
    }

    public var description: String { "\(Self.text(address))/\(length)" }

    /// The 4 or 16 bytes of a textual address; nil when it is neither form.
    public static func address(_ text: String) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16)
        if text.withCString({ inet_pton(AF_INET, $0, &buffer) }) == 1 { return Array(buffer.prefix(4)) }
        if text.withCString({ inet_pton(AF_INET6, $0, &buffer) }) == 1 { return buffer }
        return nil
    }

    static func masked(_ bytes: [UInt8], _ bits: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count {
            let keep = min(8, max(0, bits - i * 8))
            out[i] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        return out
    }

    static func text(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        return ok ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }
}
