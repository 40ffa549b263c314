import Foundation
import Testing

/// The README's quick start, as a new administrator types it: every
/// `.build/release/depot …` line of its first command block after `make run`
/// runs, in order, against a scratch depotd (the CLI built for the tests in
/// place of the release one), and succeeds.
@Suite(.serialized) struct ReadmeWalkthroughTests {
    @Test func theQuickStartRunsAsWritten() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let commands = readme.split(separator: "\n").map(String.init).filter { $0.hasPrefix(".build/release/depot ") }
            .map { line -> [String] in
                let code = line.components(separatedBy: "   #").first ?? line  // drop the trailing comment
                return code.split(separator: " ").dropFirst().map(String.init)
            }
        #expect(commands.count >= 8, "the quick start has \(commands.count) depot commands")
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        for args in commands {
            let r = try daemon.depot(args, cwd: root.path)
            #expect(r.status == 0, "README: depot \(args.joined(separator: " ")): \(r.stderr)")
        }
    }
}
