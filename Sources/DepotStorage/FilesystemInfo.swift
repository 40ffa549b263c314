import DepotCore
#if canImport(Glibc)
    import Glibc
#endif

/// statvfs(3) figures for the filesystem under a pool directory.
public struct FilesystemInfo: Sendable {
    public var totalBytes: UInt64
    /// Bytes an unprivileged writer may still allocate (f_bavail).
    public var availableBytes: UInt64

    public static func of(path: String) throws(DepotError) -> FilesystemInfo {
        var vfs = statvfs()
        guard statvfs(path, &vfs) == 0 else {
            throw .internalError("statvfs \(path): \(String(cString: strerror(errno)))")
        }
        let frsize = UInt64(vfs.f_frsize)
        return FilesystemInfo(totalBytes: UInt64(vfs.f_blocks) * frsize, availableBytes: UInt64(vfs.f_bavail) * frsize)
    }
}
