import ArgumentParser
import DepotCore

struct TargetCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an iSCSI target (admits nobody until an ACL or --allow-any).")
    @Argument(help: "Target name: iqn.YYYY-MM.reversed.domain[:suffix], eui.… or naa.…") var iqn: String
    @Option(help: "TargetAlias sent at login.") var alias: String?
    @Flag(name: .customLong("allow-any"), help: "Admit every initiator.") var allowAny = false
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateIQN(iqn) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let t = try await global.client().createTarget(
                CreateTargetRequest(iqn: iqn, alias: alias, allowAnyInitiator: allowAny))
            if global.json { try Output.json(t) } else { print("target \(t.iqn) created") }
        }
    }
}
