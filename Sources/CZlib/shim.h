// zlib's raw deflate, for qcow2's compressed clusters (qcow2.rst: deflate
// without a zlib header, window 4 KiB… as QEMU writes them).
#include <zlib.h>
