#include "erh_backoff.h"

#include <stdlib.h>

void erh_backoff_init(erh_backoff *backoff, unsigned min_ms, unsigned max_ms, unsigned seed)
{
    *backoff = (erh_backoff){.delay_ms = min_ms, .min_ms = min_ms, .max_ms = max_ms, .rng = seed};
}

unsigned erh_backoff_next(erh_backoff *backoff)
{
    unsigned half = backoff->delay_ms / 2;
    unsigned delay = half + (unsigned)rand_r(&backoff->rng) % (backoff->delay_ms - half + 1);
    backoff->delay_ms = backoff->delay_ms > backoff->max_ms / 2 ? backoff->max_ms : backoff->delay_ms * 2;
    return delay;
}

void erh_backoff_reset(erh_backoff *backoff)
{
    backoff->delay_ms = backoff->min_ms;
}
