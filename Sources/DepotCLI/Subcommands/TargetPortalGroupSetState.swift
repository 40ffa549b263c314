import ArgumentParser
import DepotCore

extension PortalGroupState: ExpressibleByArgument {}

struct TargetPortalGroupSetState: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-state",
        abstract:
            "Set a portal group's ALUA state (maintenance: standby or unavailable moves initiators to the other paths)."
    )
    @Argument(help: "Target name.") var iqn: String
    @Argument(help: "Portal group number (1 = first --portal of depotd).") var group: Int
    @Argument(help: "active-optimized, active-non-optimized, standby or unavailable.") var state: PortalGroupState
    @Flag(help: "Allow a state that leaves the target no active portal group (every initiator loses I/O).") var force =
        false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateIQN(iqn)
        guard group >= 1 else { throw ValidationError("portal group numbers start at 1") }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let groups = try await global.client().setPortalGroupState(iqn, group: group, state: state, force: force)
            if global.json { return try Output.json(PortalGroupList(portalGroups: groups)) }
            print("portal group \(group) of \(iqn) is now \(state.rawValue)")
            if !groups.contains(where: \.state.isActive) {
                print(
                    "warning: \(iqn) has no active portal group: initiators cannot do I/O to its LUNs until one is active again"
                )
            }
        }
    }
}
