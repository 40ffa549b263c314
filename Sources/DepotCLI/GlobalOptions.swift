import ArgumentParser
import Foundation

/// Options every subcommand takes, after the subcommand as in
/// `depot pool show p1 --json`.
public struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "depotd API URL (default: $DEPOT_API, else http://127.0.0.1:8640).")
    var api: String?

    @Option(name: .long, help: "API token (default: $DEPOT_TOKEN, else ./depot-data/api-token).")
    var token: String?

    @Option(
        name: .long,
        help: "PEM certificates to trust for an https API (default: $DEPOT_CA), e.g. depotd's DATA/tls/cert.pem.")
    var ca: String?

    @Flag(name: .long, help: "Print the API's JSON objects instead of tables.")
    var json = false

    @Flag(name: .long, help: "No progress output (off a terminal it is a line every few seconds).")
    var quiet = false

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
        let file = "./depot-data/api-token"
        let fileText = try? String(contentsOfFile: file, encoding: .utf8)
        let resolved = token ?? env["DEPOT_TOKEN"] ?? fileText?.trimmingCharacters(in: .whitespacesAndNewlines)
        // Where it looked, in order, for the message when depotd refuses the token.
        let used = token != nil ? "--token" : env["DEPOT_TOKEN"] != nil ? "$DEPOT_TOKEN" : fileText != nil ? file : nil
        let looked = [
            "--token (\(token == nil ? "not given" : "given"))",
            "$DEPOT_TOKEN (\(env["DEPOT_TOKEN"] == nil ? "not set" : "set"))",
            "\(file) (\(fileText == nil ? "not there" : "read"))",
        ].joined(separator: ", ")
        let origin =
            (used.map { "the token sent was from \($0)" } ?? "no token was found")
            + "; the CLI looks at \(looked). The daemon's token is DATA/api-token (DATA is depotd's --data): "
            + "pass --token, set DEPOT_TOKEN, or run depot where depot-data/ is"
        return DepotClient(baseURL: url, token: resolved, tokenOrigin: origin, caFile: ca ?? env["DEPOT_CA"])
    }
}

/// A failure the CLI reports as `error: MESSAGE` with exit status 1.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { self.description = message }
}
