import Foundation
import Testing

/// #21 day one: `depot help-all` is the whole reference (every command of the
/// tree), and the man pages in Docs/man/ are what the binaries print now
/// (`make man`), valid roff that man(1) renders without warnings.
@Suite struct ManualTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Every command path below `path`, found from each command's own SUBCOMMANDS list.
    func commandTree(_ path: [String] = []) throws -> [[String]] {
        let help = try Daemon.run(try Binaries.path("depot"), path + ["--help"]).stdout
        guard let range = help.range(of: "SUBCOMMANDS:\n") else { return [path] }
        let names = help[range.upperBound...].split(separator: "\n").prefix {
            !$0.trimmingCharacters(in: .whitespaces).hasPrefix("See ")
        }
        .compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }  // a name, not a wrapped abstract
            return line.split(separator: " ").first.map(String.init)
        }
        return [path] + (try names.filter { $0 != "help" }.flatMap { try commandTree(path + [$0]) })
    }

    @Test func helpAllHasEveryCommand() throws {
        let tree = try commandTree()
        #expect(tree.count > 30, "the tree has pools, volumes, targets… (\(tree.count) commands)")
        let all = try Daemon.run(try Binaries.path("depot"), ["help-all"])
        #expect(all.status == 0)
        for path in tree {
            let name = (["depot"] + path).joined(separator: " ")
            #expect(all.stdout.contains("======== \(name) ="), "help-all lacks \(name)")
            // and with that command's full help, options included
            let own = try Daemon.run(try Binaries.path("depot"), path + ["--help"]).stdout
            let usage = own.split(separator: "\n").first { $0.hasPrefix("USAGE:") }.map(String.init) ?? "?"
            #expect(all.stdout.contains(usage), "help-all lacks \(name)'s \(usage)")
        }
    }

    @Test func manPagesAreCurrentAndRender() throws {
        let pages = [
            ("depot.1", try Binaries.path("depot"), ["help-all", "--man"]),
            ("depotd.8", try Binaries.path("depotd"), ["--manual"]),
        ]
        for (file, binary, arguments) in pages {
            let made = try Daemon.run(binary, arguments)
            #expect(made.status == 0 && made.stdout.hasPrefix(".\\\" Generated"), "\(file): \(made.stderr)")
            let checkedIn = try String(
                contentsOf: Self.root.appendingPathComponent("Docs/man/\(file)"), encoding: .utf8)
            #expect(checkedIn == made.stdout, "Docs/man/\(file) is stale: run `make man`")
            let rendered = try Daemon.run(
                "/usr/bin/man", ["--warnings", "-l", Self.root.appendingPathComponent("Docs/man/\(file)").path],
                env: ["MANWIDTH": "80"])
            #expect(rendered.status == 0 && rendered.stderr.isEmpty, "man -l \(file): \(rendered.stderr)")
            #expect(rendered.stdout.contains("NAME") && rendered.stdout.contains("--"), "\(file) renders")
        }
    }
}
