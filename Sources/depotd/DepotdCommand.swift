import ArgumentParser
import DepotCore
import DepotServer
import Logging

struct DepotdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "depotd",
        abstract: "Depot datastore daemon: pools, volumes, capacity, REST API.",
        version: DepotVersion.current)

    /// The man page's DESCRIPTION (`depotd --manual`).
    static let manualDescription = """
        depotd is the Depot datastore daemon: it keeps storage pools and their thin and thick volumes in a SQLite \
        catalog under the data directory, serves volumes as iSCSI LUNs from a target inside the daemon, publishes \
        NFS export configurations (exports(5) and NFS-Ganesha), tracks capacity, and answers the REST API that \
        the depot CLI uses. Run with no flags it starts on embedded defaults: data in ./depot-data, the API on \
        127.0.0.1:8640 with a bearer token in DATA/api-token, an iSCSI portal on 127.0.0.1:3260.

        Every flag can also be a key of the --config file. SIGTERM asks iSCSI sessions to log out, then stops. \
        contrib/systemd/depotd.service runs it as a hardened service.
        """

    @Option(
        name: .long,
        help:
            "YAML file of settings: keys are these flags without dashes (api: 127.0.0.1:8640, portal: [a:3260, b:3260]); flags given here override it."
    )
    var config: String?

    @Option(name: .long, help: "Data directory (catalog, token, pools).")
    var data: String = "./depot-data"

    @Option(name: .long, help: "REST API listen address HOST:PORT (port 0 picks a free one).")
    var api: String = "127.0.0.1:8640"

    @Option(name: .long, help: "iSCSI portal HOST:PORT; repeat for several.")
    var portal: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("rescan-interval"), help: "Seconds between capacity rescans.")
    var rescanInterval: Double = 30

    @Option(
        name: .customLong("job-rate"),
        help: "MiB/s a job (full clone, flatten, merge) copies at when started without --rate; 0 is no limit.")
    var jobRate: Int = 0

    @Option(
        name: .customLong("l2-cache"),
        help: "MiB of L2 tables cached per open qcow2 image (1 MiB maps 8 GiB of 64 KiB clusters).")
    var l2Cache: Int = 32

    @Option(
        name: .customLong("nop-interval"),
        help: "Seconds of silence on an iSCSI connection before a NOP-In ping; 0 turns pings off.")
    var nopInterval: Double = 5

    @Option(
        name: .customLong("nop-timeout"),
        help: "Seconds an unanswered NOP-In ping waits before the connection is closed as dead.")
    var nopTimeout: Double = 90

    @Option(
        name: .customLong("api-tls"),
        help: "TLS on the API: on or off (default: on unless --api is a loopback address).")
    var apiTLS: String?

    @Option(
        name: .customLong("tls-cert"),
        help: "PEM certificate (chain) for the API's TLS; without it, a self-signed one in DATA/tls/.")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(
        name: .customLong("auth-failures"),
        help:
            "Failed iSCSI logins (authentication or ACL) of one initiator from one address within 60 s after which that pair is locked out; 0: never."
    )
    var authFailures: Int = 5

    @Option(
        name: .customLong("api-auth-failures"),
        help:
            "Failed API authentications from one client address within 60 s after which it is answered 429 until the oldest is 60 s old; 0: never."
    )
    var apiAuthFailures: Int = 5

    @Option(
        name: .customLong("auth-lockout"),
        help: "Seconds a locked-out initiator and address are refused (02/01) without their secret being checked.")
    var authLockout: Int = 60

    @Option(
        name: .customLong("sanitize-rate"),
        help: "MiB/s a SANITIZE overwrite may write, sparing the pool's other volumes; 0: no limit.")
    var sanitizeRate: Int = 128

    @Option(
        name: .customLong("inline-write-max"),
        help:
            "KiB: buffered writes up to this size are made where the command is served (the iSCSI event loop, or the task's thread after R2T), not on the I/O thread pool; 0: every write on the pool."
    )
    var inlineWriteMax: Int = 256

    @Option(
        name: .customLong("image-dir"),
        help:
            "A directory disk images are imported from and exported to and exported to, besides the pools' (repeatable; default DATA/images). Anyone with an operator token can copy any file in it into a volume, and write images there."
    )
    var imageDirs: [String] = []

    @Option(
        name: .customLong("exports-dir"),
        help: "Directory for per-pool exports(5) files (default DATA/exports.d; e.g. /etc/exports.d).")
    var exportsDir: String?

    @Option(
        name: .customLong("ganesha-config"),
        help: "File for NFS-Ganesha EXPORT blocks (default DATA/ganesha/depot-exports.conf).")
    var ganeshaConfig: String?

    @Option(name: .customLong("ganesha-pidfile"), help: "Ganesha's pid file; depotd sends SIGHUP after each publish.")
    var ganeshaPidfile: String?

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
        guard rescanInterval > 0 else { throw ValidationError("--rescan-interval must be positive") }
        guard (1...65536).contains(l2Cache) else { throw ValidationError("--l2-cache must be 1 to 65536 MiB") }
        guard (0...1_048_576).contains(jobRate) else {
            throw ValidationError("--job-rate must be 0 (no limit) to 1048576 MiB/s")
        }
        guard nopInterval >= 0 else { throw ValidationError("--nop-interval must be 0 (off) or positive") }
        guard nopTimeout > 0 else { throw ValidationError("--nop-timeout must be positive") }
        if let apiTLS, apiTLS != "on", apiTLS != "off" { throw ValidationError("--api-tls must be on or off") }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("give both --tls-cert and --tls-key, or neither (a self-signed pair is made)")
        }
        if tlsCert != nil, apiTLS == "off" { throw ValidationError("--tls-cert needs --api-tls on") }
        guard (0...1000).contains(authFailures) else {
            throw ValidationError("--auth-failures must be 0 (off) to 1000")
        }
        guard (0...1000).contains(apiAuthFailures) else {
            throw ValidationError("--api-auth-failures must be 0 (off) to 1000")
        }
        guard (1...86_400).contains(authLockout) else {
            throw ValidationError("--auth-lockout must be 1 to 86400 seconds")
        }
        guard sanitizeRate >= 0 else { throw ValidationError("--sanitize-rate must be 0 (no limit) or positive") }
        guard (0...1024).contains(inlineWriteMax) else {
            throw ValidationError("--inline-write-max must be 0 (off) to 1024 KiB")
        }
        for dir in imageDirs where !dir.hasPrefix("/") {
            throw ValidationError("--image-dir must be an absolute path, got '\(dir)'")
        }
        do {
            _ = try HostPort(parsing: api)
            for p in portal { _ = try HostPort(parsing: p) }
        } catch {
            throw ValidationError(error.message)
        }
    }

    func run() async throws {
        var config = DepotConfiguration()
        config.dataDirectory = data
        config.api = try HostPort(parsing: api)
        if !portal.isEmpty { config.portals = try portal.map { p throws(DepotError) in try HostPort(parsing: p) } }
        config.logLevel = Logger.Level(rawValue: logLevel)!
        config.rescanInterval = .milliseconds(Int(rescanInterval * 1000))
        config.jobRateMiB = jobRate
        config.l2CacheMiB = l2Cache
        config.imageDirectories = imageDirs
        config.nopInterval = nopInterval == 0 ? nil : .milliseconds(Int(nopInterval * 1000))
        config.nopTimeout = .milliseconds(Int(nopTimeout * 1000))
        config.sanitizeBytesPerSecond = sanitizeRate << 20
        config.authFailures = authFailures
        config.apiAuthFailures = apiAuthFailures
        config.apiTLS = apiTLS.map { $0 == "on" } ?? (tlsCert != nil ? true : nil)
        config.tlsCertificate = tlsCert
        config.tlsKey = tlsKey
        config.authLockoutSeconds = authLockout
        config.inlineWriteBytes = inlineWriteMax << 10
        config.exportsDirectory = exportsDir
        config.ganeshaConfig = ganeshaConfig
        config.ganeshaPidFile = ganeshaPidfile
        let level = config.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "depotd")
        do {
            try await DepotServer.run(config, logger: logger)
        } catch let error as DepotError {
            logger.critical("depotd cannot start", metadata: ["error": "\(error.message)"])
            throw ExitCode(1)
        }
    }
}
