import ArgumentParser
import Foundation

/// Options every subcommand takes, after the subcommand as in
/// `depot pool show p1 --json`.
public struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "depotd API URL (default: $DEPOT_API, else http://127.0.0.1:8640).")
    var api: String?

    @Option(name: .long, help: "API token (default: $DEPOT_TOKEN, else ./depot-data/api-token).")
    var token: String?

    @Flag(name: .long, help: "Print the API's JSON objects instead of tables.")
    var json = false

    public init() {}

    public func validate() throws {
        if let api, URL(string: api)?.scheme == nil {
            throw ValidationError("--api must be a URL such as http://127.0.0.1:8640, got '\(api)'")
        }
    }

    func client() throws -> DepotClient {
        let env = ProcessInfo.processInfo.environment
        let urlText = api ?? env["DEPOT_API"] ?? "http://127.0.0.1:8640"
        guard let url = URL(string: urlText), url.scheme != nil else {
            throw CLIFailure("DEPOT_API must be a URL such as http://127.0.0.1:8640, got '\(urlText)'")
        }
        var resolved = token ?? env["DEPOT_TOKEN"]
        if resolved == nil, let text = try? String(contentsOfFile: "./depot-data/api-token", encoding: .utf8) {
            resolved = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return DepotClient(baseURL: url, token: resolved)
    }
}

/// A failure the CLI reports as `error: MESSAGE` with exit status 1.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { self.description = message }
}
