import ArgumentParser
import DepotCore

struct TargetListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List iSCSI targets.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let targets = try await global.client().targets()
            if global.json {
                try Output.json(TargetList(targets: targets))
            } else {
                print(
                    Output.table(
                        ["TARGET", "LUNS", "ACCESS"],
                        targets.map { t in
                            [
                                t.iqn, "\(t.luns.count)",
                                t.allowAnyInitiator ? "any" : "\(t.initiators.count) initiator(s)",
                            ]
                        }, rightAligned: [1]))
            }
        }
    }
}
