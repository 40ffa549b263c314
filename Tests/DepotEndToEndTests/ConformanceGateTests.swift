import DepotCore
import Foundation
import Testing

/// libiscsi's conformance suite (iscsi-test-cu, family ALL) against a fresh
/// thin LUN. Every test in Tests/Conformance/iscsi-test-cu-pass.txt must still
/// pass: a regression fails CI. (Scored as ../shared/bin/cu-score does: any
/// [FAILED] line or CUnit failure is FAIL, any [SKIPPED] line is SKIP.)
@Suite(.serialized) struct ConformanceGateTests {
    static func score(_ log: String) -> [String: String] {
        let body = log.components(separatedBy: "\nRun Summary:").first ?? log
        var results: [String: String] = [:]
        var suite = ""
        var current: String?
        var buffer = ""
        func finish() {
            guard let name = current else { return }
            let failedTail = buffer.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasSuffix("FAILED") }
            if buffer.contains("[FAILED]") || failedTail || !buffer.contains("passed") {
                results[name] = "FAIL"
            } else if buffer.contains("[SKIPPED]") {
                results[name] = "SKIP"
            } else {
                results[name] = "PASS"
            }
            current = nil
            buffer = ""
        }
        for line in body.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("Suite: ") {
                finish()
                suite = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("  Test: "), let dots = line.range(of: " ...") {
                finish()
                current = "\(suite).\(line[line.index(line.startIndex, offsetBy: 8)..<dots.lowerBound])"
                buffer = String(line[dots.upperBound...]) + "\n"
            } else if current != nil {
                buffer += line + "\n"
            }
        }
        finish()
        return results
    }

    @Test func passListDoesNotRegress() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let expected = try String(contentsOf: root.appendingPathComponent("Tests/Conformance/iscsi-test-cu-pass.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        #expect(expected.count >= 100)
        let tool = try NFSGaneshaTests.tool("iscsi-test-cu")
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        #expect(try daemon.depot(["volume", "create", "default/cu", "--size", "64M"]).status == 0)
        #expect(try daemon.depot(["target", "create", "iqn.2026-11.dev.depot:cu", "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", "iqn.2026-11.dev.depot:cu", "default/cu"]).status == 0)
        let r = try Daemon.run("/usr/bin/timeout", ["600", tool, "-d", "-v", "-t", "ALL", "iscsi://\(daemon.portal)/iqn.2026-11.dev.depot:cu/0"])
        let results = Self.score(r.stdout + r.stderr)
        #expect(results.count >= 200, "iscsi-test-cu ran \(results.count) tests")
        let regressed = expected.filter { results[$0] != "PASS" }
        #expect(regressed.isEmpty, "conformance regressions: \(regressed.map { "\($0)=\(results[$0] ?? "missing")" })")
        let passing = results.filter { $0.value == "PASS" }.count
        print("iscsi-test-cu: tests=\(results.count) pass=\(passing) skip=\(results.filter { $0.value == "SKIP" }.count) fail=\(results.filter { $0.value == "FAIL" }.count)")
        #expect(daemon.process?.isRunning == true, "depotd survived the whole suite")
    }

    /// A daemon with one LUN of `size` on a target; returns it and the URL of every portal.
    func target(size: String, extra: [String] = []) async throws -> (Daemon, [String]) {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        try await daemon.start(extra: extra)
        #expect(try daemon.depot(["volume", "create", "default/cu", "--size", size]).status == 0)
        #expect(try daemon.depot(["target", "create", "iqn.2026-11.dev.depot:cu", "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", "iqn.2026-11.dev.depot:cu", "default/cu"]).status == 0)
        let portals = try String(contentsOfFile: daemon.data + "/iscsi.portals", encoding: .utf8).split(separator: "\n")
        return (daemon, portals.map { "iscsi://\($0)/iqn.2026-11.dev.depot:cu/0" })
    }

    /// With a second portal as the multipath URL every MultipathIO test passes
    /// (two sessions, two initiator names, one LU: I/O, LUN reset, COMPARE AND WRITE).
    @Test func multipathIOAcrossTwoPortals() async throws {
        let tool = try NFSGaneshaTests.tool("iscsi-test-cu")
        let (daemon, urls) = try await target(size: "64M", extra: ["--portal", "127.0.0.1:0"])
        defer { daemon.cleanup() }
        try #require(urls.count == 2)
        let r = try Daemon.run("/usr/bin/timeout", ["300", tool, "-d", "-v", "-t", "ALL.MultipathIO"] + urls)
        let results = Self.score(r.stdout + r.stderr)
        #expect(results.count == 4 && results.values.allSatisfy { $0 == "PASS" }, "MultipathIO: \(results)")
    }

    /// On a LUN mapped read-only every write-type command is refused with
    /// WRITE PROTECTED (libiscsi's ReadOnly suite; it skips on a writable LU).
    @Test func readOnlyMapRefusesEveryWrite() async throws {
        let tool = try NFSGaneshaTests.tool("iscsi-test-cu")
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        #expect(try daemon.depot(["volume", "create", "default/ro", "--size", "64M"]).status == 0)
        #expect(try daemon.depot(["target", "create", "iqn.2026-11.dev.depot:ro", "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", "iqn.2026-11.dev.depot:ro", "default/ro", "--read-only"]).status == 0)
        let r = try Daemon.run("/usr/bin/timeout", ["120", tool, "-d", "-v", "-t", "ALL.ReadOnly", "iscsi://\(daemon.portal)/iqn.2026-11.dev.depot:ro/0"])
        let results = Self.score(r.stdout + r.stderr)
        #expect(results == ["ReadOnly.ReadOnlySBC": "PASS"], "ReadOnly: \(results)")
    }

    /// With --allow-sanitize every Sanitize test passes, including the one that
    /// resets the LU and reconnects while an overwrite runs (1 GiB at the
    /// default 128 MiB/s: about 8 s).
    @Test func sanitizeWithAllowSanitize() async throws {
        let tool = try NFSGaneshaTests.tool("iscsi-test-cu")
        let (daemon, urls) = try await target(size: "1G")
        defer { daemon.cleanup() }
        let r = try Daemon.run("/usr/bin/timeout", ["300", tool, "-d", "-v", "-S", "-t", "ALL.Sanitize", urls[0]])
        let results = Self.score(r.stdout + r.stderr)
        #expect(results.count == 11 && results.values.allSatisfy { $0 == "PASS" }, "Sanitize: \(results)")
        #expect(daemon.process?.isRunning == true)
    }
}
