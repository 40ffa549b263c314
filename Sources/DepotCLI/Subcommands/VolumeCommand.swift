import ArgumentParser

struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume", abstract: "Create, list, show, resize, rename and delete volumes.",
        subcommands: [
            VolumeCreate.self, VolumeListCommand.self, VolumeShow.self, VolumeResize.self, VolumeRename.self,
            VolumeDelete.self,
        ])
}
