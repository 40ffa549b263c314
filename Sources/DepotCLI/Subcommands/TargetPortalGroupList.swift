import ArgumentParser
import DepotCore

struct TargetPortalGroupList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Portal groups of a target and their ALUA states.")
    @Argument(help: "Target name.") var iqn: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateIQN(iqn) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let groups = try await global.client().portalGroups(iqn)
            if global.json { return try Output.json(PortalGroupList(portalGroups: groups)) }
            print(
                Output.table(
                    ["GROUP", "PORTAL", "STATE"], groups.map { ["\($0.group)", $0.portal, $0.state.rawValue] },
                    rightAligned: [0]))
        }
    }
}
