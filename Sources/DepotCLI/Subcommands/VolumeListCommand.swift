import ArgumentParser
import DepotCore

struct VolumeListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List volumes.")
    @Option(help: "Only this pool.") var pool: String?
    @OptionGroup var global: GlobalOptions

    func validate() throws { if let pool { try validateName(pool, kind: "pool") } }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let volumes = try await global.client().volumes(pool: pool)
            if global.json { try Output.json(VolumeList(volumes: volumes)) } else { print(Output.volumeTable(volumes)) }
        }
    }
}
