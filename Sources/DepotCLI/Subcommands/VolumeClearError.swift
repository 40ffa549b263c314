import ArgumentParser
import DepotCore

struct VolumeClearError: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear-error",
        abstract:
            "After a failed flush, and after checking the volume: let SYNCHRONIZE CACHE and FUA writes through again.",
        discussion: """
            A volume whose flush (fdatasync) failed is latched in state error: every later SYNCHRONIZE CACHE \
            and FUA write fails with MEDIUM ERROR (03h/0Ch/00h), because writes acknowledged before the \
            failure may not be on disk. Check the disk and the guest's file systems first; the next flush \
            after this asks the file system afresh, and a failure latches the volume again.
            """)
    @Argument(help: "POOL/NAME") var volume: String
    @OptionGroup var global: GlobalOptions

    func validate() throws { _ = try parseVolumeRef(volume) }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let info = try await global.client().clearError(try parseVolumeRef(volume))
            if global.json { return try Output.json(info) }
            print("volume \(volume) is \(info.state.rawValue) again: flushes reach its file")
        }
    }
}
