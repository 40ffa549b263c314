import Logging

/// Everything depotd is started with; embedded defaults need no file.
public struct DepotConfiguration: Sendable {
    public var dataDirectory: String = "./depot-data"
    public var api = HostPort(host: "127.0.0.1", port: 8640)
    /// TLS on the API (nil: on unless `api` is a loopback address), with the
    /// operator's certificate and key, or a self-signed pair in `DATA/tls/`.
    public var apiTLS: Bool?
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// iSCSI portals (the target issue listens on them).
    public var portals = [HostPort(host: "127.0.0.1", port: 3260)]
    public var logLevel: Logger.Level = .info
    /// NOP-In ping after this much silence on an iSCSI connection (nil: never),
    /// and how long an unanswered ping may wait before the peer counts as dead.
    public var nopInterval: Duration? = .seconds(5)
    public var nopTimeout: Duration = .seconds(90)
    /// Failed iSCSI logins of one initiator from one address within 60 s that
    /// lock the pair out (0: never), and for how many seconds.
    public var authFailures = 5
    public var authLockoutSeconds = 60
    /// Failed API authentications from one client address within 60 s after
    /// which it is answered 429 (0: never).
    public var apiAuthFailures = 5
    /// Write rate of a SANITIZE overwrite, so wiping one volume does not
    /// starve the others in its pool (0: no limit).
    public var sanitizeBytesPerSecond = 128 << 20
    /// Buffered writes up to this many bytes are made on the event loop (the
    /// iSCSI fast lane) instead of the I/O thread pool; 0: all on the pool.
    public var inlineWriteBytes = 256 << 10
    /// How often every volume file's allocation is re-read.
    public var rescanInterval: Duration = .seconds(30)
    /// Throttle of jobs started without `--rate` (MiB/s; 0: none).
    public var jobRateMiB = 0
    /// Directories `volume import` may read images from, besides the pools'
    /// (empty: `DATA/images`).
    public var imageDirectories: [String] = []
    /// L2 table cache per open qcow2 image, MiB.
    public var l2CacheMiB = 32
    /// Per-pool exports(5) files; default `DATA/exports.d`.
    public var exportsDirectory: String?
    /// Ganesha EXPORT blocks; default `DATA/ganesha/depot-exports.conf`.
    public var ganeshaConfig: String?
    /// Ganesha's pid file, for SIGHUP after a publish.
    public var ganeshaPidFile: String?

    public init() {}
}
