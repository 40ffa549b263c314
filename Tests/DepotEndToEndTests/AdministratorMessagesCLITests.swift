import DepotCore
import Foundation
import Testing

/// What an administrator reads on day one (issue 21's messages): sizes as
/// they are typed (a negative size called negative, not a missing value; a
/// size that is not whole blocks rounded up and said so; binary units named),
/// JSON failures with --json, token errors that say where the CLI looked,
/// bind errors that name the address.
@Suite(.serialized) struct AdministratorMessagesCLITests {
    @Test func negativeFractionalAndDecimalLookingSizes() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        var r = try daemon.depot(["pool", "create", "silver", "--capacity", "-5G"])
        #expect(r.status != 0 && r.stderr.contains("positive") && !r.stderr.contains("Missing value"), "\(r.stderr)")
        r = try daemon.depot(["volume", "create", "default/a", "--size", "-1G"])
        #expect(r.status != 0 && r.stderr.contains("positive") && !r.stderr.contains("Missing value"), "\(r.stderr)")
        // 1.3M = 1,363,148 bytes: not whole 512-byte blocks; rounded up to 1,363,456 and said so.
        r = try daemon.depot(["volume", "create", "default/a", "--size", "1.3M"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("rounded up to 1363456 bytes"), "\(r.stdout)")
        #expect(try await daemon.client.volume(VolumeRef(pool: "default", name: "a")).sizeBytes == 1_363_456)
        // 10MB is binary, and the answer says so.
        r = try daemon.depot(["volume", "create", "default/b", "--size", "10MB"])
        #expect(r.status == 0 && r.stdout.contains("10 MiB (10485760 bytes)"), "\(r.stdout)")
        r = try daemon.depot(["volume", "create", "--help"])
        #expect(r.stdout.contains("binary"), "\(r.stdout)")
    }

    /// With --json a failure is JSON on stderr too, with the exit status.
    @Test func jsonErrorsAreJSON() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let r = try daemon.depot(["volume", "show", "default/nope", "--json"])
        #expect(r.status == 1)
        struct Failure: Decodable {
            struct Body: Decodable {
                var code: String
                var message: String
                var status: Int?
            }
            var error: Body
        }
        let failure = try JSONDecoder().decode(Failure.self, from: Data(r.stderr.utf8))
        #expect(failure.error.status == 404 && failure.error.message.contains("not found"), "\(r.stderr)")
        let plain = try daemon.depot(["volume", "show", "default/nope"])
        #expect(plain.status == 1 && plain.stderr.hasPrefix("error: "), "\(plain.stderr)")
    }

    /// A refused token says where the CLI looked and what to do.
    @Test func tokenErrorsSayWhereTheCLILooked() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let empty = (daemon.data as NSString).deletingLastPathComponent
        var r = try Daemon.run(try Binaries.path("depot"), ["pool", "list", "--api", daemon.url], cwd: empty)
        #expect(
            r.status != 0 && r.stderr.contains("no token was found") && r.stderr.contains("$DEPOT_TOKEN (not set)")
                && r.stderr.contains("./depot-data/api-token (not there)"), "\(r.stderr)")
        r = try Daemon.run(
            try Binaries.path("depot"), ["pool", "list", "--api", daemon.url, "--token", "wrong"], cwd: empty)
        #expect(
            r.status != 0 && r.stderr.contains("invalid bearer token") && r.stderr.contains("from --token"),
            "\(r.stderr)")
    }

    /// A taken address is named by its option, before depotd opens anything.
    @Test func bindErrorsNameTheAddress() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let taken = try #require(URL(string: daemon.url)?.port)
        let other = (daemon.data as NSString).deletingLastPathComponent + "/other"
        var r = try Daemon.run(
            try Binaries.path("depotd"), ["--data", other, "--api", "127.0.0.1:\(taken)", "--portal", "127.0.0.1:0"])
        #expect(
            r.status == 1 && r.stderr.contains("--api 127.0.0.1:\(taken): address already in use"),
            "\(r.stderr.suffix(600))")
        #expect(!FileManager.default.fileExists(atPath: other + "/catalog.sqlite"), "nothing was opened")
        let portal = try #require(daemon.portal.split(separator: ":").last)
        r = try Daemon.run(
            try Binaries.path("depotd"), ["--data", other, "--api", "127.0.0.1:0", "--portal", "127.0.0.1:\(portal)"])
        #expect(
            r.status == 1 && r.stderr.contains("--portal 127.0.0.1:\(portal): address already in use"),
            "\(r.stderr.suffix(600))")
    }

    /// `depot status`, `depot version`, `--version` of both binaries, `GET /v1/status`.
    @Test func statusAndVersion() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let status = try await daemon.client.status()
        #expect(
            status.version == DepotVersion.current && status.api == daemon.url && status.portals == [daemon.portal],
            "\(status)")
        #expect(
            status.dataDirectory.hasSuffix("/data") && status.pools.map(\.name) == ["default"] && status.sessions == 0)
        var r = try daemon.depot(["status"])
        #expect(
            r.status == 0 && r.stdout.contains("depotd \(DepotVersion.current)") && r.stdout.contains(daemon.portal)
                && r.stdout.contains("default ok"), "\(r.stdout)\(r.stderr)")
        r = try daemon.depot(["version"])
        #expect(
            r.status == 0 && r.stdout.contains("depot \(DepotVersion.current)")
                && r.stdout.contains("depotd \(DepotVersion.current) at \(daemon.url)"), "\(r.stdout)")
        r = try daemon.depot(["--version"])
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == DepotVersion.current, "\(r.stdout)")
        r = try Daemon.run(try Binaries.path("depotd"), ["--version"])
        #expect(
            r.status == 0 && r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == DepotVersion.current,
            "\(r.stdout)")
    }

    /// Mutual CHAP is offered, not imposed (RFC 7143 §12.1.3): the answer says so.
    @Test func mutualCHAPSaysTheInitiatorDecides() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let iqn = "iqn.2026-11.dev.depot:mutual"
        #expect(try daemon.depot(["target", "create", iqn, "--allow-any"]).status == 0)
        let dir = (daemon.data as NSString).deletingLastPathComponent
        try "secret-123456\n".write(toFile: dir + "/secret", atomically: true, encoding: .utf8)
        try "other-1234567\n".write(toFile: dir + "/mutual", atomically: true, encoding: .utf8)
        var r = try daemon.depot([
            "target", "chap", "set", iqn, "--user", "u", "--secret-file", dir + "/secret", "--mutual-user", "t",
            "--mutual-secret-file", dir + "/mutual",
        ])
        #expect(
            r.status == 0 && r.stdout.contains("(mutual)") && r.stdout.contains("cannot be forced"),
            "\(r.stdout)\(r.stderr)")
        // Off a terminal with no secret given, nothing is asked and nothing set.
        r = try daemon.depot(["target", "chap", "set", iqn, "--user", "u"])
        #expect(r.status != 0 && r.stderr.contains("--secret-file"), "\(r.stderr)")
    }

    /// A pool path is the daemon's: relative is refused by the CLI, a missing parent by the daemon unless --create-parents.
    @Test func poolPathsAreAbsoluteAndParentsExplicit() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        var r = try daemon.depot(["pool", "create", "rel", "--path", "relative/dir"])
        #expect(r.status != 0 && r.stderr.contains("must be absolute"), "\(r.stderr)")
        let base = (daemon.data as NSString).deletingLastPathComponent
        r = try daemon.depot(["pool", "create", "deep", "--path", base + "/no/such/parent"])
        #expect(r.status != 0 && r.stderr.contains("--create-parents"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: base + "/no"))
        r = try daemon.depot(["pool", "create", "deep", "--path", base + "/no/such/parent", "--create-parents"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// Off a terminal progress is plain lines; --quiet prints none.
    @Test func progressOffATerminalIsLinesAndQuietIsSilent() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        var r = try daemon.depot(["volume", "create", "default/ez", "--size", "64M", "--provisioning", "eager-zeroed"])
        #expect(
            r.status == 0 && r.stderr.contains("zeroing default/ez: done") && !r.stderr.contains("\r"),
            "\(r.stderr.debugDescription)")
        r = try daemon.depot([
            "volume", "create", "default/ez2", "--size", "64M", "--provisioning", "eager-zeroed", "--quiet",
        ])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr.debugDescription)")
        // apply shows the same progress while it zeroes.
        let file = (daemon.data as NSString).deletingLastPathComponent + "/ez.yaml"
        try
            "pools:\n  - name: default\n    volumes:\n      - name: ez3\n        size: 64M\n        provisioning: eager-zeroed\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        r = try daemon.depot(["apply", "-f", file])
        #expect(r.status == 0 && r.stderr.contains("zeroing default/ez3: done"), "\(r.stdout)\(r.stderr)")
    }

    /// A long create can be followed (`volume show` shows its progress) and
    /// cancelled from another shell (`volume delete --force`): nothing is left.
    @Test func aLongCreateShowsProgressAndAForcedDeleteCancelsIt() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let cli = try daemon.depotAsync([
            "volume", "create", "default/big", "--size", "8G", "--provisioning", "eager-zeroed",
        ])
        defer { if cli.isRunning { cli.terminate() } }
        var shown = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let r = try daemon.depot(["volume", "show", "default/big"])
            if r.status == 0, r.stdout.contains("% zeroed") {
                shown = r.stdout
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(
            shown.contains("creating") && shown.contains("volume delete default/big --force"),
            "volume show during the create: \(shown)")
        var r = try daemon.depot(["volume", "delete", "default/big"])
        #expect(r.status != 0 && r.stderr.contains("busy"), "without --force a create is not interrupted: \(r.stderr)")
        r = try daemon.depot(["volume", "delete", "default/big", "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        cli.waitUntilExit()
        #expect(cli.terminationStatus != 0, "the create reports it did not finish")
        #expect(try await daemon.client.volumes(pool: "default").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: daemon.data + "/pools/default/big.img"))
    }

    /// An export can be edited (`export set`), publish says when no NFS server
    /// was told, and `export render --json` is JSON.
    @Test func exportsCanBeEditedAndSayWhoWasTold() async throws {
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        #expect(try daemon.depot(["export", "create", "default", "--client", "10.0.0.0/24"]).status == 0)
        var r = try daemon.depot(["export", "create", "default", "--client", "10.0.1.0/24"])
        #expect(r.status != 0 && r.stderr.contains("depot export set"), "\(r.stderr)")
        r = try daemon.depot([
            "export", "set", "default", "--client", "10.0.1.0/24", "--client", "192.168.1.7,ro", "--squash", "all",
        ])
        #expect(r.status == 0 && r.stdout.contains("2 rule(s)"), "\(r.stdout)\(r.stderr)")
        let export = try await daemon.client.export("default")
        #expect(
            export.rules.map(\.client) == ["192.168.1.7", "10.0.1.0/24"]
                || export.rules.map(\.client) == ["10.0.1.0/24", "192.168.1.7"], "\(export.rules)")
        #expect(export.rules.allSatisfy { $0.squash == .all })
        // The same validation as a create: '*' with no_root_squash needs --force.
        r = try daemon.depot(["export", "set", "default", "--client", "*", "--squash", "none"])
        #expect(r.status != 0, "\(r.stdout)")
        #expect(try await daemon.client.export("default").rules.count == 2, "a refused set changes nothing")
        r = try daemon.depot(["export", "render", "default", "--json"])
        struct Rendered: Decodable {
            var pool: String
            var format: String
            var text: String
        }
        let rendered = try JSONDecoder().decode(Rendered.self, from: Data(r.stdout.utf8))
        #expect(rendered.pool == "default" && rendered.text.contains("10.0.1.0/24"), "\(r.stdout)")
        r = try daemon.depot(["export", "publish"])
        #expect(r.status == 0 && r.stdout.contains("no NFS server was told to reload"), "\(r.stdout)")
    }

    /// `depotd --config FILE`: every flag as a key, flags on the command line
    /// override the file, an unknown key is named.
    @Test func depotdReadsAConfigFileThatFlagsOverride() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("depot-config-\(UUID())").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let config = base + "/depotd.yaml"
        try """
        data: \(base)/data
        api: 127.0.0.1:0
        portal: [127.0.0.1:0, 127.0.0.1:0]
        sanitize-rate: -1
        """.write(toFile: config, atomically: true, encoding: .utf8)
        // The file's sanitize-rate is invalid: the flag given overrides it, so depotd starts.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Binaries.path("depotd"))
        p.arguments = ["--config", config, "--sanitize-rate", "5", "--log-level", "warning"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        var portals: [Substring] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, p.isRunning {
            if let text = try? String(contentsOfFile: base + "/data/iscsi.portals", encoding: .utf8), !text.isEmpty {
                portals = text.split(separator: "\n")
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(portals.count == 2, "two portals from the file's list: \(portals)")
        #expect(FileManager.default.fileExists(atPath: base + "/data/api.url"))
        // Without the override the file's value is refused; an unknown key is named.
        var r = try Daemon.run(try Binaries.path("depotd"), ["--config", config, "--data", base + "/other"])
        #expect(r.status != 0 && r.stderr.contains("--sanitize-rate"), "\(r.stderr.suffix(400))")
        try "api: 127.0.0.1:0\nportals: 127.0.0.1:0\n".write(toFile: config, atomically: true, encoding: .utf8)
        r = try Daemon.run(try Binaries.path("depotd"), ["--config", config])
        #expect(r.status != 0 && r.stderr.contains(":2: unknown key 'portals'"), "\(r.stderr)")
    }
}
