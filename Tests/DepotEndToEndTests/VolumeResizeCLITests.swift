import DepotCore
import Foundation
import Testing

/// `depot volume resize` with relative sizes: +N grows and -N shrinks by N
/// (as lvresize and qemu-img resize); a sign is never dropped; a shrink shows
/// both sizes and what would be lost, and a refusal of a probably mistyped
/// absolute size offers the grow rather than --force.
@Suite(.serialized) struct VolumeResizeCLITests {
    // Sizes are read through the API after each CLI call.
    @Test func relativeSizesGrowAndShrinkAndNoSignIsDropped() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        #expect(try daemon.depot(["volume", "create", "default/v", "--size", "4G"]).status == 0)
        func size() async throws -> UInt64 {
            try await daemon.client.volume(VolumeRef(pool: "default", name: "v")).sizeBytes
        }

        // The report: `+1G --force` on a 4 GiB volume left it at 1 GiB.
        var r = try daemon.depot(["volume", "resize", "default/v", "--size", "+1G", "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await size() == 5 << 30)
        #expect(r.stdout.contains("5 GiB") && r.stdout.contains("was 4 GiB"), "\(r.stdout)")
        r = try daemon.depot(["volume", "resize", "default/v", "--size", "+1G"])
        let grown = try await size()
        #expect(r.status == 0 && grown == 6 << 30, "\(r.stderr)")

        // A smaller absolute size is refused with both sizes, the loss, and the grow it probably meant.
        r = try daemon.depot(["volume", "resize", "default/v", "--size", "1G"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("6 GiB") && r.stderr.contains("1 GiB") && r.stderr.contains("5 GiB"), "\(r.stderr)")
        #expect(r.stderr.contains("--size +1GiB"), "offers the grow: \(r.stderr)")
        #expect(
            !r.stderr.contains("run it again with --force"), "no --force as the fix for a mistyped value: \(r.stderr)")
        #expect(try await size() == 6 << 30)

        // -N without --force: refused, nothing changed; with it, shrunk by N and said so.
        r = try daemon.depot(["volume", "resize", "default/v", "--size", "-2G"])
        #expect(
            r.status != 0 && r.stderr.contains("from 6 GiB to 4 GiB") && r.stderr.contains("last 2 GiB"), "\(r.stderr)")
        #expect(try await size() == 6 << 30)
        r = try daemon.depot(["volume", "resize", "default/v", "--size", "-2G", "--force"])
        #expect(r.status == 0 && r.stdout.contains("shrunk from 6 GiB to 4 GiB"), "\(r.stdout) \(r.stderr)")
        #expect(try await size() == 4 << 30)

        // Nothing left, or a sign where a plain size is wanted: refused, nothing changed.
        r = try daemon.depot(["volume", "resize", "default/v", "--size", "-4G", "--force"])
        #expect(r.status != 0 && r.stderr.contains("nothing would be left"), "\(r.stderr)")
        r = try daemon.depot(["volume", "create", "default/w", "--size", "+1G"])
        #expect(r.status != 0 && r.stderr.contains("no sign"), "\(r.stderr)")
        #expect(try await size() == 4 << 30)
        // The API's own refusal of a shrink says what it would discard.
        do {
            _ = try await daemon.client.updateVolume(
                VolumeRef(pool: "default", name: "v"), UpdateVolumeRequest(sizeBytes: 1 << 30, force: false))
            Issue.record("a shrink without force was accepted")
        } catch {
            #expect("\(error)".contains("would discard its last 3 GiB"), "\(error)")
        }
    }
}
