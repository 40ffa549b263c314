import ArgumentParser
import DepotCore

/// The client rules of `export create` and `export set`.
struct ExportRuleOptions: ParsableArguments {
    @Option(help: "Client rule; repeat for several.") var client: [String] = []
    @Flag(help: "Read-only (default read-write).") var ro = false
    @Option(
        help:
            "none, root or all. Default: none (root access, which ESXi and Proxmox need for datastores) for the clients named, root for '*'."
    )
    var squash: String?
    @Option(help: "Anonymous uid for squashed users.") var anonuid: Int?
    @Option(help: "Anonymous gid for squashed users.") var anongid: Int?
    @Flag(help: "Allow squash none (no_root_squash) for '*'.") var force = false

    func validate() throws {
        guard !client.isEmpty else { throw ValidationError("give at least one --client") }
        _ = try rules()
    }

    func rules() throws -> [ExportRule] {
        let given: ExportSquash?
        if let squash {
            guard let value = ExportSquash(rawValue: squash) else {
                throw ValidationError("--squash must be none, root or all, got '\(squash)'")
            }
            given = value
        } else {
            given = nil
        }
        return try client.map { spec in
            let parts = spec.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            guard let host = parts.first, !host.isEmpty else { throw ValidationError("empty --client") }
            // Hypervisors mount NFS datastores as root and read root's 0600 images: the
            // clients named get root access unless told otherwise; the world ('*') never
            // does by default (Docs/NFS.md).
            let squash = given ?? (host == "*" ? .root : .none)
            var rule = ExportRule(
                client: host, access: ro ? .ro : .rw, squash: squash, anonuid: anonuid, anongid: anongid)
            for option in parts.dropFirst() {
                let kv = option.split(separator: "=", maxSplits: 1).map(String.init)
                switch (kv[0], kv.count == 2 ? kv[1] : nil) {
                case ("ro", nil): rule.access = .ro
                case ("rw", nil): rule.access = .rw
                case ("squash", let v?):
                    guard let s = ExportSquash(rawValue: v) else {
                        throw ValidationError("squash must be none, root or all in '\(spec)'")
                    }
                    rule.squash = s
                case ("anonuid", let v?):
                    guard let n = Int(v) else { throw ValidationError("anonuid must be a number in '\(spec)'") }
                    rule.anonuid = n
                case ("anongid", let v?):
                    guard let n = Int(v) else { throw ValidationError("anongid must be a number in '\(spec)'") }
                    rule.anongid = n
                default:
                    throw ValidationError(
                        "unknown client option '\(option)' in '\(spec)' (use ro, rw, squash=, anonuid=, anongid=)")
                }
            }
            return rule
        }
    }
}
