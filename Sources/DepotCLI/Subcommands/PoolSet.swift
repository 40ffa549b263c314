import ArgumentParser
import DepotCore

struct PoolSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Change a pool's capacity or thresholds.")
    @Argument(help: "Pool name.") var name: String
    @Option(parsing: .unconditional, help: "Capacity, e.g. 500G (binary units: 500G = 500 GiB).") var capacity: String?
    @Option(name: .customLong("max-overcommit"), help: "Most provisioned/capacity allowed for thin volumes.")
    var maxOvercommit: Double?
    @Option(help: "Warning threshold, percent used.") var warn: Double?
    @Option(help: "Critical threshold, percent used.") var critical: Double?
    @Option(help: "Percent of capacity kept back from thick volumes.") var reserved: Double?
    @Flag(help: "Allow a capacity below what the pool's volumes already use.") var force = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateName(name, kind: "pool")
        if let capacity { _ = try parseSize(capacity, option: "--capacity") }
        if capacity == nil, maxOvercommit == nil, warn == nil, critical == nil, reserved == nil {
            throw ValidationError("give at least one of --capacity, --max-overcommit, --warn, --critical, --reserved")
        }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let body = UpdatePoolRequest(
                capacityBytes: try capacity.map { try parseSize($0, option: "--capacity") },
                maxOvercommit: maxOvercommit,
                warnPercent: warn, criticalPercent: critical, reservedPercent: reserved, force: force ? true : nil)
            let pool = try await global.client().updatePool(name, body)
            if global.json {
                try Output.json(pool)
            } else {
                print(Output.poolDetail(pool))
                for warning in pool.warnings ?? [] { print("warning: \(warning)") }
            }
        }
    }
}
