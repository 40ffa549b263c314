import ArgumentParser
import DepotCore

struct TargetLUNMap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "map", abstract: "Map a volume as a LUN (next free LUN unless --lun).")
    @Argument(help: "Target name.") var iqn: String
    @Argument(help: "POOL/NAME") var volume: String
    @Option(help: "LUN number 0-16383.") var lun: Int?
    @Flag(name: .customLong("read-only"), help: "Writes get DATA PROTECT / WRITE PROTECTED.") var readOnly = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        try validateIQN(iqn)
        _ = try parseVolumeRef(volume)
        if let lun, !(0...16383).contains(lun) { throw ValidationError("--lun must be 0-16383") }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let t = try await global.client().mapLUN(iqn, MapLUNRequest(volume: volume, lun: lun, readOnly: readOnly))
            if global.json {
                try Output.json(t)
            } else {
                let mapped = t.luns.last { $0.volume == volume }
                print("\(volume) mapped as LUN \(mapped.map { "\($0.lun)" } ?? "?") of \(t.iqn)")
            }
        }
    }
}
