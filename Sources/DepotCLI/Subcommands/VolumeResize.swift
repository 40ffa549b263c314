import ArgumentParser
import DepotCore

struct VolumeResize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resize",
        abstract: "Grow a volume; shrink only with --force, never below written data.",
        discussion: """
            --size takes a new size (10G), or a change of the current one: +N grows by N, -N shrinks by N \
            (as lvresize and qemu-img resize). Units are binary: 10G and 10GB are both 10 GiB. A shrink \
            shows both sizes and what would be discarded, and runs only with --force.
            """)
    @Argument(help: "POOL/NAME") var volume: String
    // `.unconditional`: `--size -1G` is a value, not an unknown flag.
    @Option(parsing: .unconditional, help: "New virtual size, or +N / -N to grow / shrink by N.") var size: String
    @Flag(help: "Allow shrinking.") var force = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parseVolumeRef(volume)
        do { _ = try ByteSize.parseChange(size) } catch { throw ValidationError("--size: \(error.message)") }
    }

    func run() async throws {
        try await reportingFailures(json: global.json) {
            let ref = try parseVolumeRef(volume)
            let client = try global.client()
            let change = try ByteSize.parseChange(size)
            let current = try await client.volume(ref).sizeBytes
            let target = try change.applied(to: current)
            if target < current, !force {
                throw DepotError.conflict(Self.shrinkRefusal(ref, current: current, target: target, change: change))
            }
            let info = try await client.updateVolume(ref, UpdateVolumeRequest(sizeBytes: target, force: force))
            if global.json {
                try Output.json(info)
            } else if info.sizeBytes < current {
                print(
                    "volume \(ref) shrunk from \(ByteSize.format(current)) to \(ByteSize.format(info.sizeBytes)) (its last \(ByteSize.format(current - info.sizeBytes)) discarded)"
                )
            } else {
                print(
                    "volume \(ref) is now \(ByteSize.format(info.sizeBytes))\(info.sizeBytes == current ? " (unchanged)" : " (was \(ByteSize.format(current)))")"
                )
            }
        }
    }

    /// Why a shrink was not done, with both sizes and what would be lost. A
    /// smaller absolute size is most often a grow mistyped, so the grow is
    /// offered first; only an explicit -N is told how to confirm.
    static func shrinkRefusal(_ ref: VolumeRef, current: UInt64, target: UInt64, change: ByteSize.Change) -> String {
        let lost = current - target
        let head =
            "refused: this would shrink '\(ref)' from \(ByteSize.format(current)) to \(ByteSize.format(target)), "
            + "discarding its last \(ByteSize.format(lost)) (bytes \(target)-\(current - 1)); nothing was changed."
        switch change {
        case .absolute(let size):
            return head
                + " To grow it by \(ByteSize.format(size)), use --size +\(ByteSize.format(size).replacingOccurrences(of: " ", with: "")); "
                + "to grow it to a size, give one above \(ByteSize.format(current)). Shrinking is only done as --size -N with --force."
        case .shrink(let by):
            return head
                + " If that is what you want, run it again with --force (a shrink never cuts written data): --size -\(ByteSize.format(by).replacingOccurrences(of: " ", with: "")) --force"
        case .grow:
            return head
        }
    }
}
