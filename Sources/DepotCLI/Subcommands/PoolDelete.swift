import ArgumentParser

struct PoolDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a pool (with its volumes only with --force).")
    @Argument(help: "Pool name.") var name: String
    @Flag(help: "Also delete every volume in the pool.") var force = false
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateName(name, kind: "pool") }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            try await global.client().deletePool(name, force: force)
            if global.json { try Output.json(["deleted": name]) } else { print("pool \(name) deleted") }
        }
    }
}
