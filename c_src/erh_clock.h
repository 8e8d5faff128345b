/* The one clock every thread of the NIF measures waits and deadlines with. */
#ifndef ERH_CLOCK_H
#define ERH_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: never jumps when the wall clock is set. */
int64_t erh_monotonic_ms(void);

#endif
