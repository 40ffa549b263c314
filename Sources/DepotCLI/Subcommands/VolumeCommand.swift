import ArgumentParser

struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume",
        abstract: "Create, list, show, resize, rename, delete, clone, roll back and flatten volumes.",
        subcommands: [
            VolumeCreate.self, VolumeListCommand.self, VolumeShow.self, VolumeResize.self, VolumeRename.self,
            VolumeDelete.self, VolumeClone.self, VolumeRollback.self, VolumeFlatten.self,
            VolumeImport.self, VolumeExport.self, VolumeClearError.self,
        ])
}
