import ArgumentParser
import DepotCore

struct TargetCHAPSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Require CHAP; secrets are 12-16 characters.")
    @Argument(help: "Target name.") var iqn: String
    @Option(help: "CHAP user the initiator presents.") var user: String
    @Option(help: "CHAP secret the initiator proves it knows.") var secret: String
    @Option(name: .customLong("mutual-user"), help: "User the target presents back (mutual CHAP).") var mutualUser: String?
    @Option(name: .customLong("mutual-secret"), help: "Secret the target proves it knows (mutual CHAP).") var mutualSecret: String?
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateIQN(iqn)
        do { try request.validate() } catch { throw ValidationError(error.message) }
    }

    var request: CHAPRequest { CHAPRequest(user: user, secret: secret, mutualUser: mutualUser, mutualSecret: mutualSecret) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let t = try await global.client().setCHAP(iqn, request)
            if global.json { try Output.json(t) } else {
                print("CHAP required on \(t.iqn)\(t.mutualChap ? " (mutual)" : "")")
                // RFC 7143 §12.1.3: the initiator decides whether to authenticate the target.
                if t.mutualChap {
                    print("note: mutual credentials let initiators verify this target; whether they do is the initiator's choice (it cannot be forced)")
                }
            }
        }
    }
}
