import ArgumentParser

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "NFS exports of pools, for kernel nfsd and NFS-Ganesha.",
        subcommands: [
            ExportCreate.self, ExportSet.self, ExportListCommand.self, ExportShow.self, ExportDelete.self,
            ExportRender.self, ExportPublish.self,
        ])
}
