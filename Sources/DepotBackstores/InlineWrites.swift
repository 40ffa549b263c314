import CDepotPosix
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// Writes made on the caller's thread (the iSCSI event loop) into one open
/// file, raw volume or qcow2 layer alike: RWF_NOWAIT where the filesystem
/// takes it (XFS, btrfs; never waits), else a buffered `pwrite` of at most
/// `limit` bytes unless a recent one stalled. A buffered `pwrite` of a few
/// pages costs a few microseconds, a trip to the thread pool and back
/// several times that; a stall (dirty-page throttling, a journal commit)
/// sends the file's writes to the pool for `backoff`, so a stalled
/// filesystem cannot hold an event loop again and again.
public final class InlineWrites: Sendable {
    /// The largest buffered write made in place; 0 sends every write that
    /// could wait to the pool. Set once from `--inline-write-max`.
    public static let limit = Atomic<Int>(256 << 10)
    static let stall: UInt64 = 2_000_000
    static let backoff: UInt64 = 1_000_000_000

    /// Cleared once the filesystem refuses RWF_NOWAIT writes (ext4 buffered
    /// writes do): from then on writes skip that attempt.
    private let nowait = Atomic<Bool>(true)
    /// Monotonic nanoseconds until which buffered writes go to the pool.
    private let suspendedUntil = Atomic<UInt64>(0)

    var triesNowait: Bool { nowait.load(ordering: .relaxed) }

    /// Whether a write of `count` bytes may be tried here at all (checked
    /// before any work a declined write would waste).
    func mayTry(_ count: Int) -> Bool {
        guard count > 0 else { return false }
        if triesNowait { return true }
        return count <= Self.limit.load(ordering: .relaxed)
            && Self.monotonicNanoseconds() >= suspendedUntil.load(ordering: .relaxed)
    }

    /// Writes all of `from` at `offset` of `fd` here, or returns false (not,
    /// or not wholly, written: the caller's pool path writes it again whole
    /// and reports the errors, ENOSPC and EIO among them).
    func write(_ fd: Int32, _ from: UnsafeRawBufferPointer, at offset: UInt64) -> Bool {
        guard !from.isEmpty else { return false }
        if triesNowait {
            let n = depot_pwrite_nowait(fd, from.baseAddress!, from.count, off_t(offset))
            if n == from.count { return true }
            if n < 0, errno == EOPNOTSUPP { nowait.store(false, ordering: .relaxed) }
        }
        guard from.count <= Self.limit.load(ordering: .relaxed) else { return false }
        let start = Self.monotonicNanoseconds()
        guard start >= suspendedUntil.load(ordering: .relaxed) else { return false }
        var done = 0
        while done < from.count {
            let n = pwrite(fd, from.baseAddress! + done, from.count - done, off_t(offset) + off_t(done))
            guard n > 0 else { return false }
            done += n
        }
        let end = Self.monotonicNanoseconds()
        if end - start > Self.stall { suspendedUntil.store(end + Self.backoff, ordering: .relaxed) }
        return true
    }

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
