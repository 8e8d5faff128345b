/* Reconnect delays: doubling from min to max, each drawn at random from [delay/2, delay] so that
 * many nodes that lost the same server do not come back in step. */
#ifndef ERH_BACKOFF_H
#define ERH_BACKOFF_H

typedef struct erh_backoff {
    unsigned delay_ms;
    unsigned min_ms;
    unsigned max_ms;
    unsigned rng;
} erh_backoff;

void erh_backoff_init(erh_backoff *backoff, unsigned min_ms, unsigned max_ms, unsigned seed);
/* The next delay to wait; the one after is longer, up to max. */
unsigned erh_backoff_next(erh_backoff *backoff);
/* Back to min, after a success. */
void erh_backoff_reset(erh_backoff *backoff);

#endif
