import CDepotPosix
import DepotCore
import Foundation

/// depotd's entry point: the config file's keys expanded into flags, then the command.
@main
enum DepotdMain {
    static func main() async {
        // Per-PDU buffers from the heap, and the heap's top kept (depot_tune_malloc):
        // before the event loops allocate their first.
        _ = depot_tune_malloc(4 << 20, 32 << 20)
        // `depotd --manual`: its man page (depotd.8) from its own help; `make man` writes it to Docs/man/.
        if Array(CommandLine.arguments.dropFirst()) == ["--manual"] {
            print(
                ManualPage.render(
                    name: "depotd", section: 8, summary: DepotdCommand.configuration.abstract,
                    version: DepotVersion.current,
                    description: DepotdCommand.manualDescription,
                    entries: [.init(name: "depotd", help: DepotdCommand.helpMessage(columns: 72))]),
                terminator: "")
            return
        }
        // The keys are the command's own long options, read from its help (one list, not a copy to keep in step).
        let help = DepotdCommand.helpMessage(columns: 1000)
        let names = help.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-") }).filter {
            $0.hasPrefix("--") && $0.count > 2
        }
        let known = Set(names.map { String($0.dropFirst(2)) }).subtracting(["help", "version", "config"])
        do {
            let arguments = try ConfigFile.expand(Array(CommandLine.arguments.dropFirst()), known: known)
            await DepotdCommand.main(arguments)
        } catch {
            FileHandle.standardError.write(Data("depotd: \(error)\n".utf8))
            exit(64)
        }
    }
}
