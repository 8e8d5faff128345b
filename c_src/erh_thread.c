#include "erh_thread.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

void erh_thread_run_in_background(void)
{
#ifdef SCHED_BATCH
    /* Priority 0 is the only one SCHED_BATCH takes; no privilege is needed to choose it. */
    struct sched_param param = {.sched_priority = 0};
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
#endif
}

int64_t erh_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}
