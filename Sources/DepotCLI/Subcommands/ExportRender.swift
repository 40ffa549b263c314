import ArgumentParser

struct ExportRender: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render", abstract: "Print a pool's export as the NFS server would read it.")
    @Argument(help: "Pool name.") var pool: String
    @Option(help: "exports (kernel nfsd, exports(5)) or ganesha.") var format: String = "exports"
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateName(pool, kind: "pool")
        guard ["exports", "ganesha"].contains(format) else {
            throw ValidationError("--format must be exports or ganesha")
        }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let text = try await global.client().renderExport(pool, format: format)
            if global.json {
                struct Rendered: Encodable {
                    var pool: String
                    var format: String
                    var text: String
                }
                try Output.json(Rendered(pool: pool, format: format, text: text))
            } else {
                print(text, terminator: "")
            }
        }
    }
}
