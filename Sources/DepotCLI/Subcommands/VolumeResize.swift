import ArgumentParser
import DepotCore

struct VolumeResize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resize", abstract: "Grow a volume; shrink only with --force, never below written data.")
    @Argument(help: "POOL/NAME") var volume: String
    @Option(help: "New virtual size.") var size: String
    @Flag(help: "Allow shrinking.") var force = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parseVolumeRef(volume)
        _ = try parseSize(size, option: "--size")
    }

    func run() async throws {
        try await reportingFailures {
            let ref = try parseVolumeRef(volume)
            let info = try await global.client().updateVolume(
                ref, UpdateVolumeRequest(sizeBytes: try parseSize(size, option: "--size"), force: force))
            if global.json { try Output.json(info) } else { print("volume \(ref) is now \(ByteSize.format(info.sizeBytes))") }
        }
    }
}
