import DepotCLI
import DepotCore
import Foundation
import Testing

/// The real depotd binary on a temporary directory, driven by the real CLI.
@Suite(.serialized) struct DaemonCLITests {
    @Test func firstStartLaysOutTheDataDirectory() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: daemon.data + "/catalog.sqlite"))
        let tokenMode = try fm.attributesOfItem(atPath: daemon.data + "/api-token")[.posixPermissions] as? Int
        #expect(tokenMode == 0o600)
        #expect(daemon.token.count == 64)
        let pools = try await daemon.client.pools()
        #expect(pools.map(\.name) == ["default"])
        #expect(pools.first?.path == daemon.data + "/pools/default")
        // A second daemon on the same directory is refused.
        let second = try Daemon.run(try Binaries.path("depotd"), ["--data", daemon.data, "--api", "127.0.0.1:0"])
        #expect(second.status != 0)
        #expect(second.stderr.contains("another depotd"))
        #expect(try await daemon.terminate() == 0)
        #expect(!fm.fileExists(atPath: daemon.data + "/api.url"))
        // Restart keeps the token and the catalog.
        let token = daemon.token
        try await daemon.start()
        #expect(daemon.token == token)
        #expect(try await daemon.client.pools().map(\.name) == ["default"])
    }

    @Test func cliManagesPoolsAndVolumes() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        var r = try daemon.depot([
            "pool", "create", "gold", "--capacity", "1G", "--max-overcommit", "3", "--warn", "50", "--critical", "60",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        r = try daemon.depot(["pool", "show", "gold", "--json"])
        let pool = try JSONDecoder().decode(PoolInfo.self, from: Data(r.stdout.utf8))
        #expect(
            pool.capacityBytes == 1 << 30 && pool.maxOvercommit == 3 && pool.warnPercent == 50
                && pool.criticalPercent == 60)
        // The documented field names are in the JSON.
        for field in [
            "name", "path", "capacityBytes", "usedBytes", "provisionedBytes", "freeBytes", "overcommitRatio",
            "usedPercent", "state", "overprovisioned", "maxOvercommit",
        ] {
            #expect(r.stdout.contains("\"\(field)\""), "pool JSON lacks \(field)")
        }
        #expect(try daemon.depot(["volume", "create", "gold/thin1", "--size", "2GiB"]).status == 0)
        r = try daemon.depot([
            "volume", "create", "gold/ez", "--size", "600M", "--provisioning", "eager-zeroed", "--block-size", "4096",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        // Off a terminal (a pipe here) progress is lines, never carriage returns.
        #expect(
            r.stderr.contains("zeroing gold/ez: done") && !r.stderr.contains("\r"),
            "eager-zeroed create shows progress: \(r.stderr)")
        r = try daemon.depot(["volume", "show", "gold/ez", "--json"])
        let ez = try JSONDecoder().decode(VolumeInfo.self, from: Data(r.stdout.utf8))
        #expect(ez.blockSize == 4096 && ez.provisioning == .eagerZeroed && ez.allocatedBytes >= 600 << 20)
        for field in ["pool", "name", "sizeBytes", "allocatedBytes", "provisioning", "blockSize", "state"] {
            #expect(r.stdout.contains("\"\(field)\""), "volume JSON lacks \(field)")
        }
        // 600M of 1G used = 58.6 %: past warn (50), short of critical (60); 2.6G provisioned of 1G.
        r = try daemon.depot(["capacity"])
        #expect(r.status == 0)
        let goldLine = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("gold ") })
        #expect(goldLine.contains("warning") && goldLine.contains("OVERPROVISIONED") && goldLine.contains("1 GiB"))
        #expect(r.stdout.split(separator: "\n").first?.contains("CAPACITY") == true)
        r = try daemon.depot(["volume", "list", "--pool", "gold"])
        #expect(r.stdout.contains("gold/thin1") && r.stdout.contains("gold/ez") && r.stdout.contains("2 GiB"))
        #expect(try daemon.depot(["volume", "resize", "gold/thin1", "--size", "2300M"]).status == 0)
        #expect(try daemon.depot(["volume", "rename", "gold/thin1", "thin2"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: daemon.data + "/pools/gold/thin2.img"))
        r = try daemon.depot(["volume", "show", "gold/thin2", "--json"])
        #expect(try JSONDecoder().decode(VolumeInfo.self, from: Data(r.stdout.utf8)).sizeBytes == 2300 << 20)

        // Bad input: message and non-zero exit, nothing changed.
        let bad: [([String], String)] = [
            (["volume", "create", "gold/Bad", "--size", "1G"], "invalid volume name"),
            (["volume", "create", "gold/x", "--size", "10Q"], "unknown size unit"),
            (["volume", "create", "gold/x", "--size", "0"], "greater than zero"),
            (["volume", "create", "gold/x", "--size=-1G"], "positive"),
            (["volume", "create", "gold/x", "--size", "1G", "--provisioning", "thick"], "cannot reserve"),
            (["volume", "create", "gold/x", "--size", "1G"], "overcommitted"),
            (["volume", "create", "gold/ez", "--size", "1M"], "already exists"),
            (["volume", "create", "nope/x", "--size", "1M"], "not found"),
            (["volume", "show", "gold/nope"], "not found"),
            (["volume", "resize", "gold/thin2", "--size", "1M"], "--force"),
            (["pool", "delete", "gold"], "--force"),
            (["pool", "create", "../etc"], "invalid pool name"),
            (["capacity", "--token", "wrong"], "invalid bearer token"),
            (
                ["capacity", "--api", "http://127.0.0.1:1"],
                "cannot reach depotd at http://127.0.0.1:1: connection refused"
            ),
        ]
        for (args, message) in bad {
            let start = ContinuousClock.now
            let result = try daemon.depot(args)
            #expect(result.status != 0, "\(args) exited 0")
            #expect(result.stderr.contains(message), "\(args): \(result.stderr)")
            // A refused connection is said at once, not after the 10 s connect
            // timeout of retries with back-off (the HTTP client's default).
            #expect(ContinuousClock.now - start < .seconds(5), "\(args) took \(ContinuousClock.now - start)")
        }
        #expect(try await daemon.client.volumes(pool: "gold").map(\.name).sorted() == ["ez", "thin2"])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/pools/gold").sorted() == [
                "ez.img", "thin2.img",
            ])

        #expect(try daemon.depot(["volume", "delete", "gold/ez"]).status == 0)
        #expect(try daemon.depot(["pool", "delete", "gold", "--force"]).status == 0)
        #expect(try await daemon.client.pools().map(\.name) == ["default"])
        // Every mutating call is in the audit log, failures too.
        let audit = try String(contentsOfFile: daemon.data + "/audit.log", encoding: .utf8)
        #expect(audit.contains(#""action":"DELETE \/v1\/pools\/gold""#))
        #expect(audit.contains(#""outcome":"insufficient_space: "#) && audit.contains(#""status":409"#))
    }

    @Test func tokenComesFromTheDataDirectoryByDefault() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let cwd = (daemon.data as NSString).deletingLastPathComponent
        try FileManager.default.moveItem(atPath: daemon.data, toPath: cwd + "/depot-data")
        defer { try? FileManager.default.moveItem(atPath: cwd + "/depot-data", toPath: daemon.data) }
        let r = try Daemon.run(try Binaries.path("depot"), ["pool", "list", "--api", daemon.url], cwd: cwd)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("default"))
    }
}
