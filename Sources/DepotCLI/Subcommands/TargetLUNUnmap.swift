import ArgumentParser

struct TargetLUNUnmap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unmap", abstract: "Remove a LUN from a target.")
    @Argument(help: "Target name.") var iqn: String
    @Option(help: "LUN number.") var lun: Int
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateIQN(iqn) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let t = try await global.client().unmapLUN(iqn, lun: lun)
            if global.json { try Output.json(t) } else { print("LUN \(lun) of \(t.iqn) unmapped") }
        }
    }
}
