import ArgumentParser
import DepotCore
import Foundation

struct VolumeCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume POOL/NAME.")
    @Argument(help: "POOL/NAME") var volume: String
    @Option(help: "Virtual size, e.g. 10G, 1.5T, 512.") var size: String
    @Option(help: "thin, thick or eager-zeroed.") var provisioning: String = "thin"
    @Option(name: .customLong("block-size"), help: "Logical block size: 512 or 4096.") var blockSize: UInt32 = 512
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parseVolumeRef(volume)
        _ = try parseSize(size, option: "--size")
        guard Provisioning(rawValue: provisioning) != nil else {
            throw ValidationError("--provisioning must be thin, thick or eager-zeroed, got '\(provisioning)'")
        }
        guard BlockSize.allowed.contains(blockSize) else { throw ValidationError("--block-size must be 512 or 4096") }
    }

    func run() async throws {
        try await reportingFailures {
            let ref = try parseVolumeRef(volume)
            let kind = Provisioning(rawValue: provisioning)!
            let client = try global.client()
            let body = CreateVolumeRequest(name: ref.name, sizeBytes: try parseSize(size, option: "--size"), provisioning: kind, blockSize: blockSize)
            let created: VolumeInfo
            if kind == .eagerZeroed && !global.json {
                created = try await ProgressBar.whileRunning(label: "zeroing \(ref)", poll: {
                    try? await client.volume(ref).progress
                }) { try await client.createVolume(pool: ref.pool, body) }
            } else {
                created = try await client.createVolume(pool: ref.pool, body)
            }
            if global.json { try Output.json(created) } else {
                print("volume \(ref) created: \(ByteSize.format(created.sizeBytes)) \(created.provisioning.rawValue)")
            }
        }
    }
}
