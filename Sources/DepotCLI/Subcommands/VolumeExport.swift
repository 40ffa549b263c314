import ArgumentParser
import DepotCore
import Foundation

struct VolumeExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a volume or one of its snapshots as a disk image (raw or qcow2).",
        discussion: """
            --to PATH writes a new file on the daemon's machine, inside one of its image directories \
            (depotd --image-dir, default DATA/images), as a job: raw (sparse) or qcow2 (version 3, \
            standing alone, only the data the volume holds). --to - streams the raw image to \
            standard output. POOL/NAME@SNAP exports that snapshot; POOL/NAME exports the volume as it \
            is now through an implicit snapshot (consistent; its LUNs stay online), deleted afterwards.
            """)
    @Argument(help: "POOL/NAME or POOL/NAME@SNAP") var source: String
    @Option(help: "The new image file (an absolute path on the daemon's machine), or - for standard output.")
    var to: String
    @Option(help: "raw or qcow2 (a stream is raw).") var format = "raw"
    @Flag(help: "Wait for the export to a file to finish, showing its progress.") var wait = false
    @Option(help: "Copy at most this many MiB/s (default: the daemon's --job-rate).") var rate: Int?
    @OptionGroup var global: GlobalOptions

    var parsed: (VolumeRef, String?) {
        get throws {
            if source.contains("@") {
                let ref = try parseSnapshotRef(source)
                return (ref.volume, ref.name)
            }
            return (try parseVolumeRef(source), nil)
        }
    }

    func validate() throws {
        _ = try parsed
        guard let kind = VolumeFormat(rawValue: format) else { throw ValidationError("--format is raw or qcow2") }
        if to == "-" {
            if kind != .raw { throw ValidationError("--to - streams raw only for now; write qcow2 with --to PATH") }
            if wait || rate != nil { throw ValidationError("--wait and --rate apply to an export to a file") }
        } else if !to.hasPrefix("/") {
            throw ValidationError("--to must be an absolute path on the daemon's machine, or - for standard output")
        }
        if let rate, rate < 0 { throw ValidationError("--rate must be 0 or more MiB/s") }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let client = try global.client()
            let (volume, snapshot) = try parsed
            if to == "-" {
                try await client.downloadExport(volume, snapshot: snapshot, to: FileHandle.standardOutput)
                return
            }
            var job = try await client.exportVolume(
                volume,
                ImageExportRequest(to: to, format: VolumeFormat(rawValue: format), snapshot: snapshot, rateMiB: rate))
            if wait { job = try await client.wait(for: job, quiet: global.quiet || global.json) }
            if global.json {
                try Output.json(job)
            } else if wait {
                print("\(source) exported to \(to) (job \(job.id))")
            } else {
                print("\(source) is being exported to \(to): job \(job.id) (depot job show \(job.id))")
            }
        }
    }
}
