#ifndef DEPOT_CDEPOTPOSIX_H
#define DEPOT_CDEPOTPOSIX_H
#include <sys/types.h>

/// Linux calls that glibc only declares under _GNU_SOURCE, which Swift's
/// Glibc module does not define. Each returns what the libc call returns.
int depot_fallocate(int fd, int mode, off_t offset, off_t length);
off_t depot_seek_data(int fd, off_t offset);
off_t depot_seek_hole(int fd, off_t offset);
int depot_punch_hole(int fd, off_t offset, off_t length);
/// FICLONE: `dest` shares every extent of `source` (reflink, XFS reflink=1,
/// btrfs); -1 with errno EOPNOTSUPP/EXDEV/EINVAL where the filesystem cannot.
int depot_ficlone(int dest, int source);
/// copy_file_range(2) of `length` bytes at the same offset in both files
/// (the kernel may share extents or copy in place of user space).
ssize_t depot_copy_range(int source, int dest, off_t offset, size_t length);
/// sync_file_range(SYNC_FILE_RANGE_WRITE): starts writeback of the range, does not wait for it.
int depot_start_writeback(int fd, off_t offset, off_t length);
/// posix_fadvise(POSIX_FADV_WILLNEED): starts reading the range into the page cache.
int depot_will_need(int fd, off_t offset, off_t length);
/// Open file description locks on one byte (QEMU's image locking, block/
/// file-posix.c: byte 100+n is held shared by an opener holding permission
/// n, byte 200+n by one that does not share it). `depot_ofd_conflicts`:
/// 1 when another open file description holds a lock that an exclusive
/// (`exclusive` 1) or shared lock at `offset` would conflict with, 0 when
/// none, -1 on error. `depot_ofd_lock`: takes a shared or exclusive lock
/// without waiting (0, or -1 with errno EAGAIN when held).
int depot_ofd_conflicts(int fd, off_t offset, int exclusive);
int depot_ofd_lock(int fd, off_t offset, int exclusive);
/// Releases every OFD lock `fd`'s open file description holds.
int depot_ofd_unlock_all(int fd);
/// preadv2/pwritev2 with RWF_NOWAIT: served from the page cache without
/// waiting for the disk, or -1 with errno EAGAIN (or EOPNOTSUPP) when it
/// would have to wait. Short counts are possible.
ssize_t depot_pread_nowait(int fd, void *buffer, size_t length, off_t offset);
ssize_t depot_pwrite_nowait(int fd, const void *buffer, size_t length, off_t offset);
/// glibc malloc for a daemon that allocates and frees a buffer per PDU:
/// blocks up to `mmap_threshold` bytes come from the heap (not a fresh
/// mmap each), and a heap keeps up to `trim_threshold` free bytes at its
/// top instead of giving them back. With glibc's defaults (128 KiB,
/// adjusted to the last large block freed) a 128 KiB read's Data-In buffer
/// was a fresh mapping or a trimmed heap top on some event loops: every
/// page of it faulted in again, and those connections read at 0.4x.
/// Returns 1 when both took.
int depot_tune_malloc(int mmap_threshold, int trim_threshold);
/// CRC32C of `length` bytes, continuing from `seed` (0 to start): with SSE4.2
/// where the CPU has it, else table-driven. The iSCSI digest (RFC 7143 §13.1).
#include <stdint.h>
uint32_t depot_crc32c(uint32_t seed, const void *data, size_t length);
/// The same, table-driven whatever the CPU (tests compare the two).
uint32_t depot_crc32c_software(uint32_t seed, const void *data, size_t length);
/// 1 when depot_crc32c uses the SSE4.2 instruction.
int depot_crc32c_hardware(void);
#endif
