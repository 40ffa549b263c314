import DepotAPI
import DepotCore
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The layout of `--data DIR`: catalog, token, audit log, pools, lock.
public struct DataDirectory: Sendable {
    public let root: String

    public init(root: String) throws(DepotError) {
        let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        self.root = (absolute as NSString).standardizingPath
    }

    public var catalogPath: String { root + "/catalog.sqlite" }
    public var tokenPath: String { root + "/api-token" }
    public var auditPath: String { root + "/audit.log" }
    public var poolsPath: String { root + "/pools" }
    /// Where `volume import` reads images from unless `--image-dir` says otherwise.
    public var imagesPath: String { root + "/images" }
    public var lockPath: String { root + "/depotd.lock" }
    public var exportsPath: String { root + "/exports.d" }
    public var ganeshaConfigPath: String { root + "/ganesha/depot-exports.conf" }
    /// Written once the API listens: `http://HOST:PORT`, for tools and tests.
    public var apiURLPath: String { root + "/api.url" }

    func create() throws(DepotError) {
        do {
            try FileManager.default.createDirectory(
                atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.createDirectory(atPath: poolsPath, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(
                atPath: imagesPath, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .invalidArgument("cannot create data directory '\(root)': \(error.localizedDescription)")
        }
    }

    /// One depotd per data directory: an exclusive `flock` held for the
    /// life of the process (released by the kernel even on kill -9).
    func lock() throws(DepotError) -> Int32 {
        let fd = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .internalError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw .conflict("another depotd is using \(root) (lock \(lockPath) is held)")
        }
        let pid = "\(getpid())\n"
        ftruncate(fd, 0)
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        return fd
    }

    /// Reads the API token file, creating a random token (mode 0600) when there is none.
    func loadOrCreateToken() throws(DepotError) -> String {
        if let existing = try? String(contentsOfFile: tokenPath, encoding: .utf8) {
            let token = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return token }
        }
        let token = TokenStore.newSecret()
        try writeToken(token)
        return token
    }

    /// Replaces the token file (mode 0600).
    func writeToken(_ token: String) throws(DepotError) {
        try Self.writeDurably(token + "\n", to: tokenPath, mode: 0o600)
    }

    /// Replaces `path` with `text`: written to a temporary file of that mode,
    /// synced, then renamed over it (a crash leaves the old file or the new).
    static func writeDurably(_ text: String, to path: String, mode: mode_t) throws(DepotError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .internalError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        fchmod(fd, mode)
        let ok = text.withCString { write(fd, $0, strlen($0)) } == text.utf8.count
        fsync(fd)
        close(fd)
        guard ok, rename(tmp, path) == 0 else { throw .internalError("cannot write \(path)") }
    }

    /// Written once the iSCSI portals listen: one `HOST:PORT` a line.
    public var portalsPath: String { root + "/iscsi.portals" }

    func writePortals(_ portals: [String]) {
        try? (portals.joined(separator: "\n") + "\n").write(toFile: portalsPath, atomically: true, encoding: .utf8)
    }

    /// The API URL as last written (nil before the API is up).
    var apiURL: String? {
        (try? String(contentsOfFile: apiURLPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func writeAPIURL(_ url: String) {
        try? (url + "\n").write(toFile: apiURLPath, atomically: true, encoding: .utf8)
    }
}
