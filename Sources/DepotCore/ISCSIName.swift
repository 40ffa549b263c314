/// iSCSI names (RFC 7143 §4.2.7): `iqn.YYYY-MM.reversed.domain[:suffix]`,
/// `eui.` + 16 hex digits, `naa.` + 16 or 32 hex digits; at most 223 bytes.
/// Compared in lower case (§4.2.7.1: names are case-insensitive after stringprep).
public enum ISCSIName {
    public static func validate(_ name: String) throws(DepotError) -> String {
        let lower = name.lowercased()
        func bad(_ why: String) -> DepotError { .invalidArgument("invalid iSCSI name '\(name)': \(why)") }
        guard lower.utf8.count <= 223 else { throw bad("longer than 223 bytes") }
        let hex = Set("0123456789abcdef")
        if lower.hasPrefix("eui.") {
            let digits = lower.dropFirst(4)
            guard digits.count == 16, digits.allSatisfy(hex.contains) else { throw bad("eui. takes 16 hex digits") }
            return lower
        }
        if lower.hasPrefix("naa.") {
            let digits = lower.dropFirst(4)
            guard digits.count == 16 || digits.count == 32, digits.allSatisfy(hex.contains) else {
                throw bad("naa. takes 16 or 32 hex digits")
            }
            return lower
        }
        guard lower.hasPrefix("iqn.") else { throw bad("use iqn.YYYY-MM.reversed.domain[:suffix], eui. or naa.") }
        let rest = Array(lower.dropFirst(4))
        guard rest.count > 8, rest[4] == "-", rest[7] == ".",
            rest[0..<4].allSatisfy(\.isNumber), rest[5..<7].allSatisfy(\.isNumber),
            let month = Int(String(rest[5..<7])), (1...12).contains(month)
        else { throw bad("iqn. must be followed by a date YYYY-MM and a dot") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-.:")
        guard rest[8...].allSatisfy(allowed.contains) else { throw bad("only a-z, 0-9, '-', '.', ':' are allowed") }
        let authority = rest[8...].prefix { $0 != ":" }
        guard !authority.isEmpty, authority.first != ".", authority.last != "." else {
            throw bad("naming authority missing")
        }
        return lower
    }
}
