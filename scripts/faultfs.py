#!/usr/bin/python3
"""faultfs: a FUSE passthrough file system that fails chosen syncs and writes.

Test helper for Depot's flush-error tests: mounts ROOT at MOUNTPOINT and
forwards every call, except that while CONTROL/fail-fsync exists each fsync
and fdatasync of a file fails with EIO (a disk or file system losing written
data), and while CONTROL/fail-write exists each write fails with EIO.

With --record LOG it also appends every change to LOG, in the order the
file system saw them, for scripts/powercut.py to rebuild what a disk could
hold after a power cut at any point: writes and truncations (lost unless a
later fsync of the same file came first), fsyncs, creations, renames and
removals. A lookup of a name starting with ".powercut-mark-" records a mark
(the test's "this command was acknowledged") and answers ENOENT.
Usage: faultfs.py ROOT MOUNTPOINT CONTROL [--record LOG]   (in the foreground)

LOG entries: op (1 byte) | path length (u16 BE) | path (UTF-8) | a (u64 BE)
| data length (u32 BE) | data. op: W write (a offset), T truncate (a
length), S fsync, C create (the file, empty), D mkdir, U unlink, X rmdir,
R rename (path "old\0new"), M mark (path the mark's name).
"""
import errno
import os
import struct
import sys
import threading

try:
    from fusepy import FUSE, FuseOSError, Operations  # Debian's python3-fusepy
except ImportError:
    from fuse import FUSE, FuseOSError, Operations  # fusepy from PyPI


class FaultFS(Operations):
    def __init__(self, root, control, record=None):
        self.root = root
        self.control = control
        self.record = open(record, "ab", buffering=1 << 20) if record else None
        self._mutex = threading.Lock()

    def _log(self, op, path, a=0, data=b""):
        if self.record is None:
            return
        name = path.encode()
        with self._mutex:
            self.record.write(op + struct.pack(">H", len(name)) + name + struct.pack(">QI", a, len(data)) + data)

    def destroy(self, path):
        if self.record is not None:
            self.record.close()

    def _path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _failing(self, what):
        return os.path.exists(os.path.join(self.control, "fail-" + what))

    def access(self, path, mode):
        if not os.access(self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self._path(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._path(path), uid, gid)

    def getattr(self, path, fh=None):
        if os.path.basename(path).startswith(".powercut-mark-"):
            self._log(b"M", os.path.basename(path))
            if self.record is not None:
                with self._mutex:
                    self.record.flush()
            raise FuseOSError(errno.ENOENT)
        st = os.lstat(self._path(path))
        keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid", "st_blocks")
        return {key: getattr(st, key) for key in keys}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._path(path))

    def mkdir(self, path, mode):
        os.mkdir(self._path(path), mode)
        self._log(b"D", path)

    def rmdir(self, path):
        os.rmdir(self._path(path))
        self._log(b"X", path)

    def unlink(self, path):
        os.unlink(self._path(path))
        self._log(b"U", path)

    def rename(self, old, new):
        os.rename(self._path(old), self._path(new))
        self._log(b"R", old + "\0" + new)

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag",
                "f_frsize", "f_namemax")
        return {key: getattr(st, key) for key in keys}

    def utimens(self, path, times=None):
        os.utime(self._path(path), times)

    def open(self, path, flags):
        fd = os.open(self._path(path), flags & ~os.O_DIRECT)
        if flags & os.O_TRUNC:
            self._log(b"T", path, 0)
        return fd

    def create(self, path, mode, fi=None):
        fd = os.open(self._path(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)
        self._log(b"C", path)
        return fd

    def read(self, path, length, offset, fh):
        return os.pread(fh, length, offset)

    def write(self, path, data, offset, fh):
        if self._failing("write"):
            raise FuseOSError(errno.EIO)
        n = os.pwrite(fh, data, offset)
        self._log(b"W", path, offset, data[:n])
        return n

    def truncate(self, path, length, fh=None):
        os.truncate(self._path(path), length)
        self._log(b"T", path, length)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)

    def fsync(self, path, datasync, fh):
        if self._failing("fsync"):
            raise FuseOSError(errno.EIO)
        self._log(b"S", path)
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)


if __name__ == "__main__":
    args = sys.argv[1:]
    record = None
    if len(args) == 5 and args[3] == "--record":
        record = args[4]
        args = args[:3]
    if len(args) != 3:
        sys.exit(__doc__)
    FUSE(FaultFS(args[0], args[2], record), args[1], foreground=True, nothreads=False)
