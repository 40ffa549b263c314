import ArgumentParser
import DepotCore
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

struct TargetCHAPSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Require CHAP; secrets are 12-16 characters.")
    @Argument(help: "Target name.") var iqn: String
    @Option(help: "CHAP user the initiator presents.") var user: String
    @Option(
        help:
            "CHAP secret the initiator proves it knows (on the command line it is in your shell history: prefer --secret-file or the prompt)."
    )
    var secret: String?
    @Option(name: .customLong("secret-file"), help: "Read the secret from this file (its first line).") var secretFile:
        String?
    @Option(name: .customLong("mutual-user"), help: "User the target presents back (mutual CHAP).") var mutualUser:
        String?
    @Option(name: .customLong("mutual-secret"), help: "Secret the target proves it knows (mutual CHAP).")
    var mutualSecret: String?
    @Option(name: .customLong("mutual-secret-file"), help: "Read the mutual secret from this file (its first line).")
    var mutualSecretFile: String?
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateIQN(iqn)
        guard secret == nil || secretFile == nil else {
            throw ValidationError("give --secret or --secret-file, not both")
        }
        guard mutualSecret == nil || mutualSecretFile == nil else {
            throw ValidationError("give --mutual-secret or --mutual-secret-file, not both")
        }
    }

    /// A secret from its option, its file, or — on a terminal — a prompt that does not echo.
    static func secret(_ given: String?, file: String?, prompt: String) throws -> String? {
        if let given { return given }
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CLIFailure("cannot read the secret file \(file)")
            }
            return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        guard isatty(STDIN_FILENO) == 1, let typed = getpass(prompt) else { return nil }
        return String(cString: typed)
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            guard let secret = try Self.secret(secret, file: secretFile, prompt: "CHAP secret for \(user): ") else {
                throw CLIFailure("no secret: give --secret-file FILE (or --secret, or run on a terminal to be asked)")
            }
            let mutual =
                mutualUser == nil
                ? nil
                : try Self.secret(
                    mutualSecret, file: mutualSecretFile, prompt: "mutual CHAP secret for \(mutualUser ?? ""): ")
            let request = CHAPRequest(user: user, secret: secret, mutualUser: mutualUser, mutualSecret: mutual)
            do { try request.validate() } catch let error as DepotError { throw CLIFailure(error.message) }
            let t = try await global.client().setCHAP(iqn, request)
            if global.json {
                try Output.json(t)
            } else {
                print("CHAP required on \(t.iqn)\(t.mutualChap ? " (mutual)" : "")")
                // RFC 7143 §12.1.3: the initiator decides whether to authenticate the target.
                if t.mutualChap {
                    print(
                        "note: mutual credentials let initiators verify this target; whether they do is the initiator's choice (it cannot be forced)"
                    )
                }
            }
        }
    }
}
