import DepotCore
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Replaces a file so that readers see the old or the new content, never a
/// mix: write a temporary beside it, fsync, rename over, fsync the directory.
enum AtomicFile {
    static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws(DepotError) {
        let dir = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw .unprocessable("cannot create directory \(dir): \(error.localizedDescription)")
        }
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .unprocessable("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n <= 0 {
                close(fd)
                unlink(tmp)
                throw .unprocessable("cannot write \(tmp): \(String(cString: strerror(errno)))")
            }
            written += n
        }
        fchmod(fd, mode)
        let synced = fsync(fd) == 0
        close(fd)
        guard synced, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw .unprocessable("cannot replace \(path): \(String(cString: strerror(errno)))")
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}
