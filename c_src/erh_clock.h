/* The one clock every thread of the NIF measures waits and deadlines with. */
#ifndef ERH_CLOCK_H
#define ERH_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC: never jumps when the wall clock is set. */
int64_t erh_monotonic_ms(void);

/* CLOCK_MONOTONIC ms from now, for the timed waits of pthread (a condition variable with that
 * clock, pthread_mutex_clocklock). */
struct timespec erh_monotonic_deadline(unsigned ms);

#endif
