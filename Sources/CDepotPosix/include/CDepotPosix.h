#ifndef DEPOT_CDEPOTPOSIX_H
#define DEPOT_CDEPOTPOSIX_H
#include <sys/types.h>

/// Linux calls that glibc only declares under _GNU_SOURCE, which Swift's
/// Glibc module does not define. Each returns what the libc call returns.
int depot_fallocate(int fd, int mode, off_t offset, off_t length);
off_t depot_seek_data(int fd, off_t offset);
off_t depot_seek_hole(int fd, off_t offset);
int depot_punch_hole(int fd, off_t offset, off_t length);
#endif
