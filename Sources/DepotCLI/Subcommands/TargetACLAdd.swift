import ArgumentParser

struct TargetACLAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Allow an initiator to log in.")
    @Argument(help: "Target name.") var iqn: String
    @Argument(help: "Initiator name.") var initiator: String
    @Option(
        name: .customLong("network"),
        help: "Admit the initiator only from this network (CIDR, IPv4 or IPv6; an address is one host). Repeatable.")
    var networks: [String] = []
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateIQN(iqn)
        try validateIQN(initiator)
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let t = try await global.client().addACL(iqn, initiator: initiator, networks: networks)
            if global.json { return try Output.json(t) }
            let from = t.networks?[initiator].map { " from " + $0.joined(separator: ", ") } ?? ""
            print("\(initiator) may log into \(t.iqn)\(from)")
        }
    }
}
