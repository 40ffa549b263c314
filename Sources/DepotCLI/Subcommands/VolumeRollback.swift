import ArgumentParser
import DepotCore

struct VolumeRollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Give a volume a snapshot's content again.",
        discussion: """
            The volume's changes since the snapshot are discarded; newer snapshots are kept. A volume \
            mapped as a LUN is refused unless --force, which tells each session MEDIUM MAY HAVE \
            CHANGED (a host holding it open must re-read it).
            """)
    @Argument(help: "POOL/VOLUME@SNAPSHOT") var snapshot: String
    @Flag(help: "Roll back a volume mapped as a LUN.") var force = false
    @OptionGroup var global: GlobalOptions

    func validate() throws { _ = try parseSnapshotRef(snapshot) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let info = try await global.client().rollback(try parseSnapshotRef(snapshot), force: force)
            if global.json {
                try Output.json(info)
            } else {
                print("volume \(info.pool)/\(info.name) rolled back to \(snapshot)")
            }
        }
    }
}
