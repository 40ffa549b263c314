import ArgumentParser

struct TargetCHAPClear: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "clear", abstract: "Stop requiring CHAP.")
    @Argument(help: "Target name.") var iqn: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateIQN(iqn) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let t = try await global.client().clearCHAP(iqn)
            if global.json { try Output.json(t) } else { print("CHAP cleared on \(t.iqn)") }
        }
    }
}
