import ArgumentParser
import DepotCore
import Foundation

struct VolumeImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Make a new volume from a disk image file (raw or qcow2), as a job.",
        discussion: """
            FILE is a path on the daemon's machine, inside one of its image directories (depotd \
            --image-dir, default DATA/images) or pool directories, or - to stream the image from \
            standard input (spooled sparse into the pool's directory, then imported). Its format is told by its \
            content: raw, or qcow2 (v2 or v3, compressed clusters, zero clusters, a backing chain \
            inside those directories, which is flattened into the volume). VMDK, VHDX and VHD \
            images are recognised and refused for now. Only the data the image holds is written: \
            holes, unallocated and zero clusters stay unallocated. The new volume has the image's \
            size (rounded up to 512 bytes). Cancelled or failed, the new volume is removed.
            """)
    @Argument(help: "POOL/NAME of the new volume") var volume: String
    @Option(help: "The image: an absolute path on the daemon's machine, or - (standard input, streamed).")
    var from: String
    @Option(help: "What FILE must be: auto (by its content), raw or qcow2.") var format = "auto"
    @Option(name: .customLong("as"), help: "The new volume's format: raw or qcow2.") var asFormat = "raw"
    @Option(help: "thin or thick (a raw volume's file fully allocated).") var provisioning = "thin"
    @Flag(help: "Wait for the import to finish, showing its progress.") var wait = false
    @Option(help: "Copy at most this many MiB/s (default: the daemon's --job-rate).") var rate: Int?
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parseVolumeRef(volume)
        if from.hasPrefix("http://") || from.hasPrefix("https://") {
            throw ValidationError(
                "--from takes a path on the daemon's machine or - (standard input); URLs are not supported yet")
        }
        guard from.hasPrefix("/") || from == "-" else {
            throw ValidationError("--from must be an absolute path on the daemon's machine, or - for standard input")
        }
        guard ["auto", "raw", "qcow2"].contains(format) else { throw ValidationError("--format is auto, raw or qcow2") }
        guard VolumeFormat(rawValue: asFormat) != nil else { throw ValidationError("--as is raw or qcow2") }
        guard ["thin", "thick"].contains(provisioning) else { throw ValidationError("--provisioning is thin or thick") }
        if let rate, rate < 0 { throw ValidationError("--rate must be 0 or more MiB/s") }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let client = try global.client()
            let request = ImportVolumeRequest(
                from: from, format: format, as: VolumeFormat(rawValue: asFormat),
                provisioning: Provisioning(rawValue: provisioning), rateMiB: rate)
            let ref = try parseVolumeRef(volume)
            let started =
                from == "-"
                ? try await client.uploadVolume(ref, request, from: FileHandle.standardInput)
                : try await client.importVolume(ref, request)
            guard var job = started.job else { return }
            if wait { job = try await client.wait(for: job, quiet: global.quiet || global.json) }
            if global.json {
                try Output.json(job)
            } else if wait {
                print("volume \(volume) imported from \(from) (job \(job.id))")
            } else {
                print("volume \(volume) is being imported from \(from): job \(job.id) (depot job show \(job.id))")
            }
        }
    }
}
