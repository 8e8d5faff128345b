/* The NIF's own threads (publisher, presence) deliver in the background of the VM. */
#ifndef ERH_THREAD_H
#define ERH_THREAD_H

/* Makes the calling thread wait, when it wakes, for the running thread's time slice instead of
 * preempting it (SCHED_BATCH on Linux): a hook call that hands an event over and wakes its
 * publisher keeps its CPU. The thread keeps its fair share of CPU time. Where the policy does not
 * exist or is refused, the thread stays as it was. */
void erh_thread_run_in_background(void);

#endif
