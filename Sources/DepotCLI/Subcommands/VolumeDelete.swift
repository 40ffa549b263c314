import ArgumentParser

struct VolumeDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a volume and its file.")
    @Argument(help: "POOL/NAME") var volume: String
    @Flag(
        help:
            "Also delete its snapshots (never those linked clones are built on), and cancel a create still running (eager zeroing)."
    ) var force = false
    @OptionGroup var global: GlobalOptions

    func validate() throws { _ = try parseVolumeRef(volume) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let ref = try parseVolumeRef(volume)
            try await global.client().deleteVolume(ref, force: force)
            if global.json { try Output.json(["deleted": ref.description]) } else { print("volume \(ref) deleted") }
        }
    }
}
