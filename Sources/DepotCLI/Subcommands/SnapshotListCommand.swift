import ArgumentParser
import DepotCore

struct SnapshotListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List snapshots (of one volume, or all).")
    @Argument(help: "POOL/VOLUME (all volumes when left out)") var volume: String?
    @OptionGroup var global: GlobalOptions

    func validate() throws { if let volume { _ = try parseVolumeRef(volume) } }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let list = try await global.client().snapshots(volume: try volume.map(parseVolumeRef))
            if global.json { try Output.json(SnapshotList(snapshots: list)) } else { print(Output.snapshotTable(list)) }
        }
    }
}
