import ArgumentParser

struct TargetDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a target (its LUN maps and ACL go with it).")
    @Argument(help: "Target name.") var iqn: String
    @Flag(help: "Close logged-in sessions instead of refusing.") var force = false
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateIQN(iqn) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            try await global.client().deleteTarget(iqn, force: force)
            if global.json { try Output.json(["deleted": iqn]) } else { print("target \(iqn) deleted") }
        }
    }
}
