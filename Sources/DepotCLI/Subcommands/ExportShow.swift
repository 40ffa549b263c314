import ArgumentParser

struct ExportShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a pool's NFS export.")
    @Argument(help: "Pool name.") var pool: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateName(pool, kind: "pool") }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let e = try await global.client().export(pool)
            if global.json {
                try Output.json(e)
            } else {
                print(
                    Output.table(
                        ["FIELD", "VALUE"],
                        [
                            ["pool", e.pool], ["path", e.path], ["pseudo", e.pseudo], ["fsid", "\(e.fsid)"],
                            ["created", e.createdAt],
                        ]))
                print("")
                print(
                    Output.table(
                        ["CLIENT", "ACCESS", "SQUASH", "ANONUID", "ANONGID"],
                        e.rules.map { r in
                            [
                                r.client, r.access.rawValue, r.squash.rawValue, r.anonuid.map(String.init) ?? "-",
                                r.anongid.map(String.init) ?? "-",
                            ]
                        }))
            }
        }
    }
}
