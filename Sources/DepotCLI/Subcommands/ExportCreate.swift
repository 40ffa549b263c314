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
    @OptionGroup var options: ExportRuleOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateName(pool, kind: "pool") }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let export = try await global.client().createExport(
                CreateExportRequest(pool: pool, rules: try options.rules(), force: options.force))
            if global.json {
                try Output.json(export)
            } else {
                for warning in export.warnings ?? [] { print("warning: \(warning)") }
                print("pool \(pool) exported at \(export.path) (pseudo \(export.pseudo), fsid \(export.fsid))")
            }
        }
    }
}

struct ExportSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Replace an export's client rules and publish (validated as a create is).",
        discussion: "The rules given replace the export's rules as a whole; the same --client syntax as export create.")

    @Argument(help: "Pool name.") var pool: String
    @OptionGroup var options: ExportRuleOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateName(pool, kind: "pool") }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let export = try await global.client().updateExport(
                CreateExportRequest(pool: pool, rules: try options.rules(), force: options.force))
            if global.json {
                try Output.json(export)
            } else {
                for warning in export.warnings ?? [] { print("warning: \(warning)") }
                print(
                    "export of pool \(pool) now has \(export.rules.count) rule(s): "
                        + export.rules.map { "\($0.client) \($0.access.rawValue)" }.joined(separator: ", "))
            }
        }
    }
}
