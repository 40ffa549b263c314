import ArgumentParser
import DepotCore
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read the audit log: API changes, refused API authentications, refused iSCSI logins (admin only).")
    @Option(help: "Only entries of the last DURATION (a number and s, m, h, d or w, e.g. 1h).") var since: String?
    @Option(help: "Only actions containing this text (e.g. 'POST /v1/pools', iscsi.login).") var action: String?
    @Option(help: "ok or failure.") var outcome: String?
    @Option(help: "At most the last N entries (default 1000).") var limit: Int?
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if let outcome, outcome != "ok", outcome != "failure" {
            throw ValidationError("--outcome must be ok or failure")
        }
        if let limit, !(1...100_000).contains(limit) { throw ValidationError("--limit must be 1 to 100000") }
        if let since { do { _ = try DurationText.seconds(since) } catch { throw ValidationError(error.message) } }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            var query: [URLQueryItem] = []
            if let since { query.append(.init(name: "since", value: "\(try DurationText.seconds(since))")) }
            if let action { query.append(.init(name: "action", value: action)) }
            if let outcome { query.append(.init(name: "outcome", value: outcome)) }
            if let limit { query.append(.init(name: "limit", value: "\(limit)")) }
            let entries = try await global.client().audit(query)
            if global.json { try Output.json(AuditList(entries: entries)) } else { print(Output.auditTable(entries)) }
        }
    }
}
