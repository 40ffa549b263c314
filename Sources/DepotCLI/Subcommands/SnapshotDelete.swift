import ArgumentParser
import DepotCore

struct SnapshotDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a snapshot (merging it into the layer above it, as a job).",
        discussion: """
            A snapshot nothing is built on goes at once. One that the volume (or a later snapshot) is \
            built on is merged into that layer online, as a job: its data moves up where the layer \
            above has none, then its file goes. A snapshot linked clones are built on is refused.
            """)
    @Argument(help: "POOL/VOLUME@SNAPSHOT") var snapshot: String
    @Flag(help: "Wait for the merge to finish, showing its progress.") var wait = false
    @OptionGroup var global: GlobalOptions

    func validate() throws { _ = try parseSnapshotRef(snapshot) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let client = try global.client()
            guard var job = try await client.deleteSnapshot(try parseSnapshotRef(snapshot)) else {
                if global.json { try Output.json(["deleted": snapshot]) } else { print("snapshot \(snapshot) deleted") }
                return
            }
            if wait { job = try await client.wait(for: job, quiet: global.quiet || global.json) }
            if global.json {
                try Output.json(job)
            } else if wait {
                print("snapshot \(snapshot) merged and deleted (job \(job.id))")
            } else {
                print("snapshot \(snapshot) is being merged: job \(job.id) (depot job show \(job.id))")
            }
        }
    }
}
