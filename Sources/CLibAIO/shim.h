#ifndef DEPOT_CLIBAIO_SHIM_H
#define DEPOT_CLIBAIO_SHIM_H
#include <libaio.h>
#endif
