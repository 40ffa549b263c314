import Foundation
import Testing

/// DESIGN.md: dependencies point down the picture. The SCSI core and the
/// backstores share only the protocol (DepotBlock), as SPDK's lib/bdev and
/// module/bdev/* or LIO's target_core and its backstore files do.
@Suite struct LayeringTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    /// The `import X` lines of every Swift file of one module.
    static func imports(of module: String) throws -> [String: Set<String>] {
        let dir = sources.appendingPathComponent(module)
        let files = try #require(FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil))
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        var result: [String: Set<String>] = [:]
        for file in files {
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
            result[file.lastPathComponent] = Set(
                lines.compactMap { line -> String? in
                    let words = line.split(separator: " ")
                    guard let at = words.firstIndex(of: "import"), at + 1 < words.count else { return nil }
                    return String(words[at + 1])
                })
        }
        return result
    }

    @Test(arguments: [
        ("DepotBlock", ["DepotSCSI", "DepotBackstores", "DepotISCSI", "CDepotPosix", "NIOPosix"]),
        ("DepotSCSI", ["DepotBackstores", "DepotISCSI"]),
        ("DepotBackstores", ["DepotSCSI", "DepotISCSI"]),
    ])
    func modulesImportOnlyWhatIsBelowThem(module: String, forbidden: [String]) throws {
        let all = try Self.imports(of: module)
        #expect(!all.isEmpty)
        for (file, imported) in all {
            #expect(
                imported.isDisjoint(with: forbidden), "\(module)/\(file) imports \(imported.intersection(forbidden))")
        }
    }
}
