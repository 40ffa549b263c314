import ArgumentParser
import DepotCore

struct VolumeFlatten: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flatten", abstract: "Copy a clone's backing data into it so it stands alone (a job).")
    @Argument(help: "POOL/NAME") var volume: String
    @Flag(help: "Wait for it to finish, showing its progress.") var wait = false
    @Option(help: "Copy at most this many MiB/s (default: the daemon's --job-rate).") var rate: Int?
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parseVolumeRef(volume)
        if let rate, rate < 0 { throw ValidationError("--rate must be 0 or more MiB/s") }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let client = try global.client()
            var job = try await client.flatten(try parseVolumeRef(volume), rateMiB: rate)
            if wait { job = try await client.wait(for: job, quiet: global.quiet || global.json) }
            if global.json {
                try Output.json(job)
            } else if wait {
                print("volume \(volume) flattened (job \(job.id))")
            } else {
                print("volume \(volume) is being flattened: job \(job.id) (depot job show \(job.id))")
            }
        }
    }
}
