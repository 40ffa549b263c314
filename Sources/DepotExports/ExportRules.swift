import DepotCore

/// Checks a set of client rules before anything is stored or rendered.
public enum ExportRules {
    /// Refuses empty sets, bad clients, duplicate or overlapping clients,
    /// anonymous ids out of range, and `squash none` for `*` unless `force`.
    ///
    /// `*` may appear once, as the rule for everyone not named: nfsd prefers a
    /// host or network match over `*` (exports(5), "Machine Name Formats"),
    /// and the Ganesha file lists `*` last, so both servers agree.
    /// Any other overlap would be decided differently by the two servers,
    /// so it is refused.
    public static func validate(_ rules: [ExportRule], force: Bool) throws(DepotError) -> [ExportRule] {
        guard !rules.isEmpty else { throw .invalidArgument("an export needs at least one client rule") }
        var parsed: [(ExportRule, ClientSpec)] = []
        for rule in rules {
            let spec = try ClientSpec.parse(rule.client)
            for id in [rule.anonuid, rule.anongid].compactMap({ $0 }) where !(0...4_294_967_294).contains(id) {
                throw .invalidArgument("anonuid/anongid must be 0-4294967294, got \(id)")
            }
            if spec == .anyone, rule.squash == .none, !force {
                throw .conflict(
                    "squash none (no_root_squash) for '*' gives root on every host; use --force if that is meant")
            }
            for (other, otherSpec) in parsed {
                if spec == otherSpec {
                    throw .conflict("client '\(rule.client)' is given twice")
                }
                if spec != .anyone, otherSpec != .anyone, spec.overlaps(otherSpec) {
                    throw .conflict(
                        "client rules '\(other.client)' (\(other.access.rawValue), squash \(other.squash.rawValue)) and "
                            + "'\(rule.client)' (\(rule.access.rawValue), squash \(rule.squash.rawValue)) overlap; "
                            + "give each host or network one rule")
                }
            }
            var normalised = rule
            if case .host(let name) = spec { normalised.client = name }
            parsed.append((normalised, spec))
        }
        // Specific rules first, `*` last: the order both servers honour.
        return parsed.filter { $0.1 != .anyone }.map(\.0) + parsed.filter { $0.1 == .anyone }.map(\.0)
    }
}
