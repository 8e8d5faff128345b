/* Memory for the events that hook calls hand to the publishers, with no page fault on the way.
 *
 * Heap memory that was never used costs a page fault when first written: a few microseconds on
 * a virtual machine, once every few events while a backlog grows (RabbitMQ down or slower than
 * the clients). The arena takes that cost off the callers. It cuts events out of large chunks one
 * after the other, and a background thread (the filler) maps the next chunks and touches every
 * page of them before a caller needs one. A chunk empties soon after its last event goes as long
 * as events leave in the order they came, which each publisher keeps for its own: so each cuts
 * from chunks of its own (a lane), and a slow one holds no chunk that a fast one has emptied
 * otherwise. An empty chunk, already touched, becomes a spare again.
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
    erh_arena_chunk **current;    /* per lane, the chunk allocations are cut from, or NULL */
    unsigned lanes;
    erh_arena_chunk *spares;      /* touched and empty, linked by next */
    size_t n_spares;
    size_t mapped;                /* chunks mapped and not yet returned, spares and current included */
    bool stopping;
    bool lock_ready, cond_ready, filler_started;
    pthread_t filler;
} erh_arena;

/* Start the filler, for allocations in lanes 0 .. lanes - 1. On error the arena is safe to destroy. */
erh_status erh_arena_init(erh_arena *arena, unsigned lanes);
/* Stop the filler and return the spares and the current chunk; every allocation must have been
 * released. Safe on a zeroed or half-built arena. */
void erh_arena_destroy(erh_arena *arena);

/* size bytes aligned for any type, from lane's chunk, or NULL when out of memory. *chunk is where
 * they come from, for erh_arena_release; NULL means malloc, to be freed with free(). Never blocks
 * on the system. */
void *erh_arena_alloc(erh_arena *arena, unsigned lane, size_t size, erh_arena_chunk **chunk);
/* Give back one allocation cut from chunk; any thread. */
void erh_arena_release(erh_arena_chunk *chunk);

/* The memory the arena holds now: its chunks, spares included. */
size_t erh_arena_bytes(erh_arena *arena);

#endif
