import ArgumentParser
import DepotCore

struct VolumeRename: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a volume within its pool.")
    @Argument(help: "POOL/NAME") var volume: String
    @Argument(help: "New name.") var newName: String
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parseVolumeRef(volume)
        try validateName(newName, kind: "volume")
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let ref = try parseVolumeRef(volume)
            let info = try await global.client().updateVolume(ref, UpdateVolumeRequest(name: newName))
            if global.json {
                try Output.json(info)
            } else {
                print("volume \(ref) renamed to \(info.pool)/\(info.name)")
            }
        }
    }
}
