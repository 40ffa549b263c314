import ArgumentParser

struct VolumeShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one volume.")
    @Argument(help: "POOL/NAME") var volume: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { _ = try parseVolumeRef(volume) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let info = try await global.client().volume(try parseVolumeRef(volume))
            if global.json { try Output.json(info) } else { print(Output.volumeDetail(info)) }
        }
    }
}
