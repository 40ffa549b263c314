import ArgumentParser
import DepotCore

struct ExportListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List NFS exports.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let exports = try await global.client().exports()
            if global.json {
                try Output.json(ExportList(exports: exports))
            } else {
                print(
                    Output.table(
                        ["POOL", "PATH", "PSEUDO", "FSID", "CLIENTS"],
                        exports.map { e in
                            [e.pool, e.path, e.pseudo, "\(e.fsid)", e.rules.map(Output.rule).joined(separator: " ")]
                        }, rightAligned: [3]))
            }
        }
    }
}
