import ArgumentParser

struct PoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool", abstract: "Create, list, show, change and delete pools (datastores).",
        subcommands: [
            PoolCreate.self, PoolListCommand.self, PoolShow.self, PoolSet.self, PoolDelete.self, PoolFiles.self,
            PoolRescan.self,
        ])
}
