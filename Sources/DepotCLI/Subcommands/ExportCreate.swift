import ArgumentParser
import DepotCore

struct ExportCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Export a pool over NFS and publish.",
        discussion: """
            Each --client is a host name, an IPv4/IPv6 address, a CIDR network or '*'. A client may carry \
            its own options after commas, overriding --ro/--squash/--anonuid/--anongid for that rule: \
            --client 10.0.0.0/24 --client '192.168.1.7,ro,squash=all,anonuid=1000,anongid=1000'.
            """)

    @Argument(help: "Pool name.") var pool: String
    @Option(help: "Client rule; repeat for several.") var client: [String] = []
    @Flag(help: "Read-only (default read-write).") var ro = false
    @Option(help: "none, root or all (default root).") var squash: String = "root"
    @Option(help: "Anonymous uid for squashed users.") var anonuid: Int?
    @Option(help: "Anonymous gid for squashed users.") var anongid: Int?
    @Flag(help: "Allow squash none (no_root_squash) for '*'.") var force = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateName(pool, kind: "pool")
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

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let export = try await global.client().createExport(CreateExportRequest(pool: pool, rules: try rules(), force: force))
            if global.json { try Output.json(export) } else {
                for warning in export.warnings ?? [] { print("warning: \(warning)") }
                print("pool \(pool) exported at \(export.path) (pseudo \(export.pseudo), fsid \(export.fsid))")
            }
        }
    }
}
