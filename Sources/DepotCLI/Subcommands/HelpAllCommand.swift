import ArgumentParser
import DepotCore

/// `depot help-all`: the whole reference in one read — every command's full
/// help, in tree order — or, with `--man`, the same as a man page (depot.1;
/// `make man` writes it to Docs/man/).
struct HelpAllCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "help-all", abstract: "Every command's help in one text (or a man page with --man).",
        discussion: """
            Read it with `depot help-all | less`, or install the page: `depot help-all --man > depot.1; man ./depot.1`. \
            Shell completion: `depot --generate-completion-script bash|zsh|fish` (see Docs/CLI.md).
            """)
    @Flag(help: "Print a man(7) page instead of plain text.") var man = false
    @Option(help: "Wrap the help at this many columns (default 100; 72 in a man page, which indents it).") var columns:
        Int?

    static let description = """
        depot manages a Depot datastore server (depotd) over its REST API: storage pools on local filesystems, \
        thin and thick volumes, iSCSI targets with LUN maps, ACLs, CHAP and ALUA portal groups, NFS exports, \
        capacity figures, and declarative plans (depot apply).

        The CLI finds the daemon with --api or $DEPOT_API (default http://127.0.0.1:8640) and its token with \
        --token, $DEPOT_TOKEN or ./depot-data/api-token. Sizes are binary: 10G and 10GB are both 10 GiB. \
        --json prints every answer, errors included, as JSON.
        """

    /// Every command below `root` with its name path, depth first, root first.
    static func commands(_ root: ParsableCommand.Type, path: [String] = []) -> [(
        name: String, type: ParsableCommand.Type
    )] {
        let name = path + [root._commandName]
        return [(name.joined(separator: " "), root)]
            + root.configuration.subcommands.flatMap { commands($0, path: name) }
    }

    func run() throws {
        let columns = self.columns ?? (man ? 72 : 100)
        let entries = Self.commands(DepotCommand.self).map { command in
            ManualPage.Entry(
                name: command.name,
                help: command.type == DepotCommand.self
                    ? DepotCommand.helpMessage(columns: columns)
                    : DepotCommand.helpMessage(for: command.type, columns: columns))
        }
        if man {
            print(
                ManualPage.render(
                    name: "depot", section: 1, summary: DepotCommand.configuration.abstract,
                    version: DepotVersion.current,
                    description: Self.description, entries: entries),
                terminator: "")
        } else {
            for entry in entries {
                print(
                    String(repeating: "=", count: 8) + " " + entry.name + " "
                        + String(repeating: "=", count: max(4, columns - entry.name.count - 10)))
                print(entry.help)
            }
        }
    }
}
