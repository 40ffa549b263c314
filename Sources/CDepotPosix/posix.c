#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <sys/uio.h>
#include <linux/falloc.h>
#include "CDepotPosix.h"

int depot_fallocate(int fd, int mode, off_t offset, off_t length) { return fallocate(fd, mode, offset, length); }
off_t depot_seek_data(int fd, off_t offset) { return lseek(fd, offset, SEEK_DATA); }
off_t depot_seek_hole(int fd, off_t offset) { return lseek(fd, offset, SEEK_HOLE); }
int depot_punch_hole(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

ssize_t depot_pread_nowait(int fd, void *buffer, size_t length, off_t offset) {
    struct iovec iov = { .iov_base = buffer, .iov_len = length };
    return preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
}

ssize_t depot_pwrite_nowait(int fd, const void *buffer, size_t length, off_t offset) {
    struct iovec iov = { .iov_base = (void *)buffer, .iov_len = length };
    return pwritev2(fd, &iov, 1, offset, RWF_NOWAIT);
}
