import ArgumentParser
import DepotCore

struct SnapshotShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one snapshot.")
    @Argument(help: "POOL/VOLUME@SNAPSHOT") var snapshot: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { _ = try parseSnapshotRef(snapshot) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let info = try await global.client().snapshot(try parseSnapshotRef(snapshot))
            if global.json { try Output.json(info) } else { print(Output.snapshotDetail(info)) }
        }
    }
}
