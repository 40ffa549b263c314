import ArgumentParser
import DepotCore

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Create, list, show and delete snapshots of volumes.",
        subcommands: [SnapshotCreate.self, SnapshotListCommand.self, SnapshotShow.self, SnapshotDelete.self])
}

func parseSnapshotRef(_ text: String) throws -> SnapshotRef {
    do { return try SnapshotRef(parsing: text) } catch { throw ValidationError(error.message) }
}
