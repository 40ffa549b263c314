import ArgumentParser

struct PoolShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one pool.")
    @Argument(help: "Pool name.") var name: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateName(name, kind: "pool") }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let pool = try await global.client().pool(name)
            if global.json { try Output.json(pool) } else { print(Output.poolDetail(pool)) }
        }
    }
}
