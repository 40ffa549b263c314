import ArgumentParser

struct TargetShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a target, its LUNs and ACL.")
    @Argument(help: "Target name.") var iqn: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateIQN(iqn) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let t = try await global.client().target(iqn)
            if global.json { try Output.json(t) } else { print(Output.targetDetail(t)) }
        }
    }
}
