import ArgumentParser
import DepotCore
import Foundation

struct VolumeCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume POOL/NAME.")
    @Argument(help: "POOL/NAME") var volume: String
    // `.unconditional`: `--size -5G` reaches the size parser (and its message), not "missing value".
    @Option(
        parsing: .unconditional,
        help:
            "Virtual size, e.g. 10G, 1.5T, 512 (bytes). Units are binary: 10G, 10GB and 10GiB are all 10 GiB; a size that is not a whole number of blocks is rounded up to one."
    )
    var size: String
    @Option(help: "thin, thick or eager-zeroed.") var provisioning: String = "thin"
    @Option(name: .customLong("block-size"), help: "Logical block size: 512 or 4096.") var blockSize: UInt32 = 512
    @Option(help: "raw (the default) or qcow2 (thin; readable by qemu-img).") var format: String = "raw"
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parseVolumeRef(volume)
        _ = try parseSize(size, option: "--size")
        guard Provisioning(rawValue: provisioning) != nil else {
            throw ValidationError("--provisioning must be thin, thick or eager-zeroed, got '\(provisioning)'")
        }
        guard BlockSize.allowed.contains(blockSize) else { throw ValidationError("--block-size must be 512 or 4096") }
        guard VolumeFormat(rawValue: format) != nil else {
            throw ValidationError("--format must be raw or qcow2, got '\(format)'")
        }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let ref = try parseVolumeRef(volume)
            let kind = Provisioning(rawValue: provisioning)!
            let client = try global.client()
            let asked = try parseSize(size, option: "--size")
            // 2.9T is not a whole number of blocks: round up to one and say so, rather than fail on a byte count.
            let (rounded, roundedUp) = Self.wholeBlocks(asked, blockSize: UInt64(blockSize))
            if roundedUp, !global.json {
                print(
                    "note: \(size) is \(asked) bytes, not a whole number of \(blockSize)-byte blocks; rounded up to \(rounded) bytes (\(ByteSize.format(rounded)))"
                )
            }
            let body = CreateVolumeRequest(
                name: ref.name, sizeBytes: rounded, provisioning: kind, blockSize: blockSize,
                format: VolumeFormat(rawValue: format))
            let created = try await client.createVolume(ref, body, json: global.json, quiet: global.quiet)
            if global.json {
                try Output.json(created)
            } else {
                print(
                    "volume \(ref) created: \(ByteSize.describe(created.sizeBytes)) \(created.provisioning.rawValue)"
                        + (created.format == .raw ? "" : " \(created.format.rawValue)"))
            }
        }
    }

    /// `bytes` rounded up to a multiple of `blockSize`, and whether that changed it.
    static func wholeBlocks(_ bytes: UInt64, blockSize: UInt64) -> (UInt64, Bool) {
        let remainder = bytes % blockSize
        guard remainder != 0 else { return (bytes, false) }
        let (up, overflow) = bytes.addingReportingOverflow(blockSize - remainder)
        return overflow ? (bytes, false) : (up, true)
    }
}
