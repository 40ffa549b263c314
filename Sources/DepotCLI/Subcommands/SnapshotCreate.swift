import ArgumentParser
import DepotCore

struct SnapshotCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Snapshot a volume: its data now is kept, a new layer takes its writes.",
        discussion: """
            The volume's active layer becomes the snapshot (read-only) and a new, empty qcow2 overlay \
            on it becomes the active layer; this takes the same time whatever the volume's size, and a \
            LUN in use keeps running (writes in flight finish first). A snapshot of a thick volume \
            needs free space of the volume's size for its overwrites.
            """)
    @Argument(help: "POOL/VOLUME@SNAPSHOT") var snapshot: String
    @Flag(help: "Take a snapshot of a thick volume even without free space for its overwrites.")
    var allowOvercommit = false
    @OptionGroup var global: GlobalOptions

    func validate() throws { _ = try parseSnapshotRef(snapshot) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let info = try await global.client().createSnapshot(
                try parseSnapshotRef(snapshot), allowOvercommit: allowOvercommit)
            if global.json { try Output.json(info) } else { print("snapshot \(snapshot) created") }
        }
    }
}
