import ArgumentParser
import DepotCore

struct PoolListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List pools with their capacity.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let pools = try await global.client().pools()
            if global.json { try Output.json(PoolList(pools: pools)) } else { print(Output.poolTable(pools)) }
        }
    }
}
