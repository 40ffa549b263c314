import ArgumentParser
import DepotCore

struct VolumeClone: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clone", abstract: "Make a new volume from a snapshot (linked, or a full copy).",
        discussion: """
            A linked clone is a new qcow2 overlay on the snapshot, in the same pool: instant, and it \
            shares the snapshot's data. --full makes an independent copy in any pool, as a job: only \
            allocated data is copied, with reflinks where the filesystem has them. Either way the \
            clone is a new volume with its own UUID and SCSI identity.
            """)
    @Argument(help: "POOL/VOLUME@SNAPSHOT") var snapshot: String
    @Argument(help: "POOL/NEW") var target: String
    @Flag(help: "An independent copy (a job) instead of a linked clone.") var full = false
    @Flag(help: "Wait for a full clone to finish, showing its progress.") var wait = false
    @Option(help: "Copy at most this many MiB/s (full clone; default: the daemon's --job-rate).") var rate: Int?
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parseSnapshotRef(snapshot)
        _ = try parseVolumeRef(target)
        if let rate, rate < 0 { throw ValidationError("--rate must be 0 or more MiB/s") }
        if rate != nil, !full { throw ValidationError("--rate applies to a full clone (--full)") }
        if wait, !full { throw ValidationError("--wait applies to a full clone (a linked clone is made at once)") }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let client = try global.client()
            let started = try await client.clone(
                try parseSnapshotRef(snapshot), to: try parseVolumeRef(target), full: full, rateMiB: rate)
            guard var job = started.job else {
                if global.json {
                    try Output.json(started.volume)
                } else {
                    print("volume \(target) cloned from \(snapshot)")
                }
                return
            }
            if wait { job = try await client.wait(for: job, quiet: global.quiet || global.json) }
            if global.json {
                try Output.json(job)
            } else if wait {
                print("volume \(target) copied from \(snapshot) (job \(job.id))")
            } else {
                print("volume \(target) is being copied from \(snapshot): job \(job.id) (depot job show \(job.id))")
            }
        }
    }
}
