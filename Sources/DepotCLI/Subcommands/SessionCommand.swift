import ArgumentParser

struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session", abstract: "Logged-in iSCSI sessions.", subcommands: [SessionListCommand.self])
}
