#include "erh_thread.h"

#include <pthread.h>
#include <sched.h>

void erh_thread_run_in_background(void)
{
#ifdef SCHED_BATCH
    /* Priority 0 is the only one SCHED_BATCH takes; no privilege is needed to choose it. */
    struct sched_param param = {.sched_priority = 0};
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
#endif
}
