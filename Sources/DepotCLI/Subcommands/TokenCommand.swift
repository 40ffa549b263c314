import ArgumentParser
import DepotCore
import Foundation

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke named API tokens with roles (admin only).",
        discussion: """
            Roles: readonly (reads and /metrics), operator (also volumes, snapshots, clones, LUN maps, \
            exports, jobs), admin (everything: pools, targets, CHAP, ACLs, portal groups, tokens). \
            The daemon keeps only a salted hash of each token: its secret is printed once, at create.
            """,
        subcommands: [TokenCreate.self, TokenListCommand.self, TokenRevoke.self])
}

struct TokenCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a token and print its secret (shown this once).")
    @Argument(help: "token name (a-z, 0-9, '.', '_', '-')") var name: String
    @Option(help: "admin, operator or readonly.") var role: TokenRole
    @Option(help: "Lifetime: a number and s, m, h, d or w (e.g. 30d); default: never expires.") var expires: String?
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let seconds = try expires.map { text throws(DepotError) in try DurationText.seconds(text) }
            let created = try await global.client().createToken(
                CreateTokenRequest(name: name, role: role, expiresInSeconds: seconds))
            if global.json {
                try Output.json(created)
            } else {
                print(created.secret)
                if !global.quiet {
                    let until = created.token.expiresAt.map { ", expires \($0)" } ?? ""
                    FileHandle.standardError.write(
                        Data(
                            "token \(created.token.name) (\(created.token.role.rawValue)\(until)): the secret above is shown once; keep it\n"
                                .utf8))
                }
            }
        }
    }
}

extension TokenRole: ExpressibleByArgument {}

struct TokenListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (never their secrets).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let tokens = try await global.client().tokens()
            if global.json { try Output.json(TokenList(tokens: tokens)) } else { print(Output.tokenTable(tokens)) }
        }
    }
}

struct TokenRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a token at once (the last admin token is kept).")
    @Argument(help: "token name") var name: String
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            try await global.client().revokeToken(name)
            if !global.json { print("token \(name) revoked") }
        }
    }
}
