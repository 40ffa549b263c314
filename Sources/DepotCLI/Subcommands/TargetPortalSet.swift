import ArgumentParser

struct TargetPortalSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Serve a target on some of the daemon's portals only (storage VLANs), or on all of them.",
        discussion: """
            Login and discovery through any other portal neither admit nor list the target. \
            Applies to new logins; sessions already logged in stay.
            """)
    @Argument(help: "Target name.") var iqn: String
    @Option(name: .customLong("portal"), help: "A portal of depotd (HOST:PORT, [IPV6]:PORT). Repeatable.")
    var portals: [String] = []
    @Flag(help: "Serve the target on every portal of the daemon.") var all = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateIQN(iqn)
        guard all != !portals.isEmpty else { throw ValidationError("give --portal HOST:PORT (one or more) or --all") }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let t = try await global.client().setPortals(iqn, all ? nil : portals)
            if global.json { return try Output.json(t) }
            print("\(t.iqn) is served on " + (t.portals?.joined(separator: ", ") ?? "every portal"))
        }
    }
}
