/* Memory for the events that hook calls hand to the publishers, with no page fault on the way.
 *
 * Heap memory that was never used costs a page fault when first written: a few microseconds on
 * a virtual machine, once every few events while a backlog grows (RabbitMQ down or slower than
 * the clients). The arena takes that cost off the callers. It cuts events out of large chunks one
 * after the other, and a background thread (the filler) maps the next chunks and touches every
 * page of them before a caller needs one. Events leave roughly in the order they came, so a chunk
 * empties soon after its last event goes; an empty chunk, already touched, becomes a spare again.
 * The filler keeps between SPARES_LOW and SPARES_HIGH spares and returns the rest to the system.
 *
 * A caller never waits for the system: when no spare is ready, or for an event too large for a
 * chunk, the memory comes from malloc. */
#ifndef ERH_ARENA_H
#define ERH_ARENA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "erh_status.h"

#define ERH_ARENA_CHUNK_BYTES ((size_t)1 << 20)
/* Larger allocations come from malloc: a chunk holds at least this many of the largest. */
#define ERH_ARENA_MAX_ALLOC (ERH_ARENA_CHUNK_BYTES / 16)
#define ERH_ARENA_SPARES_LOW 4
#define ERH_ARENA_SPARES_HIGH 8

typedef struct erh_arena_chunk erh_arena_chunk;

typedef struct erh_arena {
    pthread_mutex_t lock;
    pthread_cond_t filler_wanted; /* signalled when the spares leave [LOW, HIGH] or on stop */
    erh_arena_chunk *current;     /* allocations are cut from it; NULL until the first one */
    erh_arena_chunk *spares;      /* touched and empty, linked by next */
    size_t n_spares;
    size_t mapped;                /* chunks mapped and not yet returned, spares and current included */
    bool stopping;
    bool lock_ready, cond_ready, filler_started;
    pthread_t filler;
} erh_arena;

/* Start the filler. On error the arena is safe to destroy. */
erh_status erh_arena_init(erh_arena *arena);
/* Stop the filler and return the spares and the current chunk; every allocation must have been
 * released. Safe on a zeroed or half-built arena. */
void erh_arena_destroy(erh_arena *arena);

/* size bytes aligned for any type, or NULL when out of memory. *chunk is where they come from,
 * for erh_arena_release; NULL means malloc, to be freed with free(). Never blocks on the system. */
void *erh_arena_alloc(erh_arena *arena, size_t size, erh_arena_chunk **chunk);
/* Give back one allocation cut from chunk; any thread. */
void erh_arena_release(erh_arena_chunk *chunk);

#endif
