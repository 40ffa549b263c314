#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <sys/uio.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <malloc.h>
#include "CDepotPosix.h"

int depot_fallocate(int fd, int mode, off_t offset, off_t length) { return fallocate(fd, mode, offset, length); }
off_t depot_seek_data(int fd, off_t offset) { return lseek(fd, offset, SEEK_DATA); }
off_t depot_seek_hole(int fd, off_t offset) { return lseek(fd, offset, SEEK_HOLE); }
int depot_punch_hole(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

int depot_tune_malloc(int mmap_threshold, int trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
}

ssize_t depot_pread_nowait(int fd, void *buffer, size_t length, off_t offset) {
    struct iovec iov = { .iov_base = buffer, .iov_len = length };
    return preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
}

ssize_t depot_pwrite_nowait(int fd, const void *buffer, size_t length, off_t offset) {
    struct iovec iov = { .iov_base = (void *)buffer, .iov_len = length };
    return pwritev2(fd, &iov, 1, offset, RWF_NOWAIT);
}

/* CRC32C (Castagnoli, reflected 0x82F63B78): the SSE4.2 crc32 instruction
   eight bytes at a time where the CPU has it, else a table a byte at a time.
   Both compute the same register update; the caller's seed and the final
   inversion follow the usual convention (RFC 3720 Appendix B.4). */
#include <stdint.h>
#include <string.h>

static uint32_t crc32c_table[256];

/* Filled once when the library is loaded, before any thread reads it. */
__attribute__((constructor)) static void crc32c_fill_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
}

static uint32_t crc32c_soft(uint32_t crc, const uint8_t *p, size_t n) {
    while (n--) crc = crc32c_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t depot_crc32c(uint32_t seed, const void *data, size_t length) {
    uint32_t crc = ~seed;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return ~crc32c_sse42(crc, data, length);
#endif
    return ~crc32c_soft(crc, data, length);
}

uint32_t depot_crc32c_software(uint32_t seed, const void *data, size_t length) {
    return ~crc32c_soft(~seed, data, length);
}

int depot_crc32c_hardware(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    return 0;
#endif
}

int depot_ficlone(int dest, int source) { return ioctl(dest, FICLONE, source); }
ssize_t depot_copy_range(int source, int dest, off_t offset, size_t length) {
    off_t in = offset, out = offset;
    return copy_file_range(source, &in, dest, &out, length, 0);
}

int depot_start_writeback(int fd, off_t offset, off_t length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

int depot_will_need(int fd, off_t offset, off_t length) {
    return posix_fadvise(fd, offset, length, POSIX_FADV_WILLNEED);
}

int depot_ofd_conflicts(int fd, off_t offset, int exclusive) {
    struct flock fl = {.l_type = exclusive ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET, .l_start = offset, .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return -1;
    return fl.l_type == F_UNLCK ? 0 : 1;
}
int depot_ofd_lock(int fd, off_t offset, int exclusive) {
    struct flock fl = {.l_type = exclusive ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET, .l_start = offset, .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl);
}
int depot_ofd_unlock_all(int fd) {
    struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    return fcntl(fd, F_OFD_SETLK, &fl);
}
