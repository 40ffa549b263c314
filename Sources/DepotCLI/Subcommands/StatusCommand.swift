import ArgumentParser
import DepotCore

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "The daemon at a glance: version, uptime, data directory, listeners, pools, sessions, reconcile findings.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let status = try await global.client().status()
            if global.json {
                try Output.json(status)
                return
            }
            print("depotd \(status.version), up \(status.uptimeSeconds) s (since \(status.startedAt))")
            print("data:     \(status.dataDirectory)")
            print("api:      \(status.api)")
            print("portals:  \(status.portals.joined(separator: ", "))")
            print(
                "pools:    "
                    + status.pools.map {
                        "\($0.name) \($0.state.rawValue) \(String(format: "%.1f", $0.usedPercent)) % used"
                    }.joined(separator: "; "))
            print("sessions: \(status.sessions)")
            print(
                "reconcile: \(status.reconcileFindings == 0 ? "catalog and files agree" : "\(status.reconcileFindings) findings (depot reconcile… see GET /v1/reconcile)")"
            )
        }
    }
}

struct VersionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "This CLI's version and the daemon's.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        print("depot \(DepotVersion.current)")
        do {
            let status = try await global.client().status()
            print("depotd \(status.version) at \(status.api)")
        } catch {
            print("depotd: not reachable (\(error))")
        }
    }
}
