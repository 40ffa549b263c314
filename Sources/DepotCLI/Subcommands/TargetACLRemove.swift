import ArgumentParser

struct TargetACLRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Stop allowing an initiator.")
    @Argument(help: "Target name.") var iqn: String
    @Argument(help: "Initiator name.") var initiator: String
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateIQN(iqn)
        try validateIQN(initiator)
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let t = try await global.client().removeACL(iqn, initiator: initiator)
            if global.json { try Output.json(t) } else { print("\(initiator) removed from \(t.iqn)") }
        }
    }
}
