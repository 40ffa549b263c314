import ArgumentParser
import DepotCore
import Foundation

struct PoolCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a directory-backed pool.")

    @Argument(help: "Pool name.") var name: String
    @Option(help: "Absolute directory on the daemon's machine (default DATA/pools/NAME there); its parent must exist.")
    var path: String?
    @Flag(name: .customLong("create-parents"), help: "Create missing parent directories of --path.") var createParents =
        false
    @Option(
        parsing: .unconditional,
        help: "Capacity, e.g. 500G (binary units: 500G = 500 GiB; default: the filesystem's size).") var capacity:
        String?
    @Option(
        name: .customLong("max-overcommit"), help: "Most provisioned/capacity allowed for thin volumes (default 20).")
    var maxOvercommit: Double?
    @Option(help: "Used percent that turns the pool to warning (default 75).") var warn: Double?
    @Option(help: "Used percent that turns the pool to critical (default 85).") var critical: Double?
    @Option(help: "Percent of capacity kept back from thick volumes (default 0).") var reserved: Double?
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateName(name, kind: "pool")
        if let capacity { _ = try parseSize(capacity, option: "--capacity") }
        // The path is the daemon's, not this shell's: a relative one would be resolved
        // against a directory the daemon knows nothing of.
        if let path, !path.hasPrefix("/") {
            throw ValidationError("--path must be absolute (a directory on the daemon's machine), got '\(path)'")
        }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let body = CreatePoolRequest(
                name: name, path: path, capacityBytes: try capacity.map { try parseSize($0, option: "--capacity") },
                maxOvercommit: maxOvercommit, warnPercent: warn, criticalPercent: critical, reservedPercent: reserved,
                createParents: createParents ? true : nil)
            let pool = try await global.client().createPool(body)
            if global.json {
                try Output.json(pool)
            } else {
                print("pool \(pool.name) created at \(pool.path)")
                for warning in pool.warnings ?? [] { print("warning: \(warning)") }
            }
        }
    }
}
