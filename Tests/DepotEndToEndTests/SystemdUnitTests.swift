import Foundation
import Testing

/// contrib/systemd/depotd.service is a unit systemd accepts (`systemd-analyze
/// verify`, with ExecStart pointed at the depotd just built) and keeps its
/// hardening.
@Suite struct SystemdUnitTests {
    @Test func theUnitVerifiesAndIsHardened() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let unit = try String(
            contentsOf: root.appendingPathComponent("contrib/systemd/depotd.service"), encoding: .utf8)
        for line in [
            "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
            "CapabilityBoundingSet=", "StateDirectory=depot",
        ] {
            #expect(unit.contains(line), "the unit keeps \(line)")
        }
        let tool = try NFSGaneshaTests.tool("systemd-analyze")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("depot-unit-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let local = unit.replacingOccurrences(of: "/usr/local/bin/depotd", with: try Binaries.path("depotd"))
        try local.write(to: dir.appendingPathComponent("depotd.service"), atomically: true, encoding: .utf8)
        let r = try Daemon.run(tool, ["verify", dir.appendingPathComponent("depotd.service").path])
        #expect(r.status == 0 && r.stderr.isEmpty && r.stdout.isEmpty, "systemd-analyze verify: \(r.stdout)\(r.stderr)")
    }
}
