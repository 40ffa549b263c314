import ArgumentParser
import DepotCore

struct PoolShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one pool.")
    @Argument(help: "Pool name.") var name: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { try validateName(name, kind: "pool") }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let client = try global.client()
            let pool = try await client.pool(name)
            if global.json {
                try Output.json(pool)
                return
            }
            print(Output.poolDetail(pool))
            // Its volumes, so "what is in this pool" needs no second command.
            let volumes = try await client.volumes(pool: name)
            print(
                volumes.isEmpty
                    ? "volumes: none"
                    : "volumes: "
                        + volumes.map { "\($0.name) (\(ByteSize.format($0.sizeBytes)) \($0.provisioning.rawValue))" }
                        .joined(separator: ", "))
        }
    }
}
