import ArgumentParser

struct CapacityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capacity", abstract: "Every pool's capacity, use, provisioning and flags.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let report = try await global.client().capacity()
            if global.json {
                try Output.json(report)
            } else {
                print(Output.poolTable(report.pools))
                if let age = report.rescannedSecondsAgo {
                    print(
                        "used bytes as of the last rescan, \(age) s ago (depotd --rescan-interval; depot volume show reads a volume's now)"
                    )
                }
            }
        }
    }
}
