import ArgumentParser

struct ExportDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Stop exporting a pool and publish.")
    @Argument(help: "Pool name.") var pool: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateName(pool, kind: "pool") }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            try await global.client().deleteExport(pool)
            if global.json { try Output.json(["deleted": pool]) } else { print("export of pool \(pool) deleted") }
        }
    }
}
