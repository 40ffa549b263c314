import ArgumentParser

struct ExportPublish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish", abstract: "Rewrite every export file and tell the NFS servers to reload.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let report = try await global.client().publishExports()
            if global.json {
                try Output.json(report)
            } else {
                for file in report.files { print("wrote \(file)") }
                for file in report.removedFiles { print("removed \(file)") }
                for reload in report.reloads { print("reload: \(reload)") }
                for warning in report.warnings { print("warning: \(warning)") }
                if report.reloads.isEmpty {
                    print(
                        "note: no NFS server was told to reload (no exportfs on this machine, no --ganesha-pidfile given to depotd): the files are written, a running server reads them when reloaded"
                    )
                }
            }
        }
    }
}
