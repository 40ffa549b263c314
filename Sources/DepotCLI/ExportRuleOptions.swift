import ArgumentParser
import DepotCore

/// The client rules of `export create` and `export set`.
struct ExportRuleOptions: ParsableArguments {
    @Option(help: "Client rule; repeat for several.") var client: [String] = []
    @Flag(help: "Read-only (default read-write).") var ro = false
    @Option(help: "none, root or all (default root).") var squash: String = "root"
    @Option(help: "Anonymous uid for squashed users.") var anonuid: Int?
    @Option(help: "Anonymous gid for squashed users.") var anongid: Int?
    @Flag(help: "Allow squash none (no_root_squash) for '*'.") var force = false

    func validate() throws {
        guard !client.isEmpty else { throw ValidationError("give at least one --client") }
        _ = try rules()
    }

    func rules() throws -> [ExportRule] {
        guard let defaultSquash = ExportSquash(rawValue: squash) else {
            throw ValidationError("--squash must be none, root or all, got '\(squash)'")
        }
        return try client.map { spec in
            let parts = spec.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            guard let host = parts.first, !host.isEmpty else { throw ValidationError("empty --client") }
            var rule = ExportRule(client: host, access: ro ? .ro : .rw, squash: defaultSquash, anonuid: anonuid, anongid: anongid)
            for option in parts.dropFirst() {
                let kv = option.split(separator: "=", maxSplits: 1).map(String.init)
                switch (kv[0], kv.count == 2 ? kv[1] : nil) {
                case ("ro", nil): rule.access = .ro
                case ("rw", nil): rule.access = .rw
                case ("squash", let v?):
                    guard let s = ExportSquash(rawValue: v) else { throw ValidationError("squash must be none, root or all in '\(spec)'") }
                    rule.squash = s
                case ("anonuid", let v?):
                    guard let n = Int(v) else { throw ValidationError("anonuid must be a number in '\(spec)'") }
                    rule.anonuid = n
                case ("anongid", let v?):
                    guard let n = Int(v) else { throw ValidationError("anongid must be a number in '\(spec)'") }
                    rule.anongid = n
                default:
                    throw ValidationError("unknown client option '\(option)' in '\(spec)' (use ro, rw, squash=, anonuid=, anongid=)")
                }
            }
            return rule
        }
    }
}
