#include "erh_arena.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "erh_clock.h"
#include "erh_thread.h"

/* After a failed mmap the filler asks again this much later, not in a loop. */
#define RETRY_MS 100

struct erh_arena_chunk {
    erh_arena *arena;
    erh_arena_chunk *next;  /* in the spares */
    _Atomic size_t live;    /* allocations not yet released, plus one while it is current */
    size_t used;            /* bytes of data already cut */
    alignas(max_align_t) char data[];
};

#define DATA_BYTES (ERH_ARENA_CHUNK_BYTES - offsetof(erh_arena_chunk, data))

/* A chunk with every page already written by the kernel, so its users take no page fault. */
static erh_arena_chunk *map_chunk(erh_arena *arena)
{
    void *memory = mmap(NULL, ERH_ARENA_CHUNK_BYTES, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (memory == MAP_FAILED)
        return NULL;
    erh_arena_chunk *chunk = memory;
    chunk->arena = arena;
    return chunk;
}

/* Under the lock. */
static void push_spare(erh_arena *arena, erh_arena_chunk *chunk)
{
    chunk->next = arena->spares;
    arena->spares = chunk;
    if (++arena->n_spares > ERH_ARENA_SPARES_HIGH)
        pthread_cond_signal(&arena->filler_wanted);
}

/* Under the lock. */
static erh_arena_chunk *pop_spare(erh_arena *arena)
{
    erh_arena_chunk *chunk = arena->spares;
    if (!chunk)
        return NULL;
    arena->spares = chunk->next;
    if (--arena->n_spares < ERH_ARENA_SPARES_LOW)
        pthread_cond_signal(&arena->filler_wanted);
    return chunk;
}

/* Under the lock: lane's chunk is full, take the next one; NULL when no spare is ready. */
static erh_arena_chunk *next_current(erh_arena *arena, unsigned lane)
{
    erh_arena_chunk *full = arena->current[lane];
    if (full && atomic_fetch_sub_explicit(&full->live, 1, memory_order_acq_rel) == 1)
        push_spare(arena, full);
    erh_arena_chunk *chunk = pop_spare(arena);
    if (chunk) {
        chunk->used = 0;
        atomic_store_explicit(&chunk->live, 1, memory_order_relaxed);
    }
    arena->current[lane] = chunk;
    return chunk;
}

void *erh_arena_alloc(erh_arena *arena, unsigned lane, size_t size, erh_arena_chunk **chunk)
{
    const size_t align = alignof(max_align_t);
    *chunk = NULL;
    if (size > ERH_ARENA_MAX_ALLOC)
        return malloc(size);
    size = (size + align - 1) & ~(align - 1);
    pthread_mutex_lock(&arena->lock);
    erh_arena_chunk *current = arena->current[lane];
    if (!current || current->used + size > DATA_BYTES)
        current = next_current(arena, lane);
    void *memory = NULL;
    if (current) {
        memory = current->data + current->used;
        current->used += size;
        atomic_fetch_add_explicit(&current->live, 1, memory_order_relaxed);
        *chunk = current;
    }
    pthread_mutex_unlock(&arena->lock);
    return memory ? memory : malloc(size);
}

void erh_arena_release(erh_arena_chunk *chunk)
{
    /* The last release of a chunk that is no longer current: nobody cuts from it any more. */
    if (atomic_fetch_sub_explicit(&chunk->live, 1, memory_order_acq_rel) != 1)
        return;
    erh_arena *arena = chunk->arena;
    pthread_mutex_lock(&arena->lock);
    push_spare(arena, chunk);
    pthread_mutex_unlock(&arena->lock);
}

size_t erh_arena_bytes(erh_arena *arena)
{
    pthread_mutex_lock(&arena->lock);
    size_t chunks = arena->mapped;
    pthread_mutex_unlock(&arena->lock);
    return chunks * ERH_ARENA_CHUNK_BYTES;
}

/* Under the lock, which it drops while the system works. */
static void wait_before_retry(erh_arena *arena)
{
    struct timespec until = erh_monotonic_deadline(RETRY_MS);
    pthread_cond_timedwait(&arena->filler_wanted, &arena->lock, &until);
}

/* The filler: maps and touches chunks, or returns them, outside the lock. */
static void *fill(void *arg)
{
    erh_arena *arena = arg;
    erh_thread_run_in_background();
    pthread_mutex_lock(&arena->lock);
    while (!arena->stopping) {
        if (arena->n_spares > ERH_ARENA_SPARES_HIGH) {
            arena->n_spares--;
            erh_arena_chunk *chunk = arena->spares;
            arena->spares = chunk->next;
            pthread_mutex_unlock(&arena->lock);
            munmap(chunk, ERH_ARENA_CHUNK_BYTES);
            pthread_mutex_lock(&arena->lock);
            arena->mapped--;
        } else if (arena->n_spares < ERH_ARENA_SPARES_LOW) {
            pthread_mutex_unlock(&arena->lock);
            erh_arena_chunk *chunk = map_chunk(arena);
            pthread_mutex_lock(&arena->lock);
            if (chunk) {
                arena->mapped++;
                push_spare(arena, chunk);
            } else {
                wait_before_retry(arena);
            }
        } else {
            pthread_cond_wait(&arena->filler_wanted, &arena->lock);
        }
    }
    pthread_mutex_unlock(&arena->lock);
    return NULL;
}

erh_status erh_arena_init(erh_arena *arena, unsigned lanes)
{
    *arena = (erh_arena){0};
    arena->current = calloc(lanes, sizeof *arena->current);
    if (!arena->current)
        return ERH_ERR_NOMEM;
    arena->lanes = lanes;
    if (pthread_mutex_init(&arena->lock, NULL) != 0)
        return ERH_ERR_SYSTEM;
    arena->lock_ready = true;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return ERH_ERR_SYSTEM;
    bool cond_ready = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
                      pthread_cond_init(&arena->filler_wanted, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!cond_ready)
        return ERH_ERR_SYSTEM;
    arena->cond_ready = true;
    if (pthread_create(&arena->filler, NULL, fill, arena) != 0)
        return ERH_ERR_SYSTEM;
    arena->filler_started = true;
    pthread_setname_np(arena->filler, "erh_arena");
    return ERH_OK;
}

void erh_arena_destroy(erh_arena *arena)
{
    if (arena->filler_started) {
        pthread_mutex_lock(&arena->lock);
        arena->stopping = true;
        pthread_cond_signal(&arena->filler_wanted);
        pthread_mutex_unlock(&arena->lock);
        pthread_join(arena->filler, NULL);
    }
    for (unsigned lane = 0; lane < arena->lanes; lane++) {
        erh_arena_chunk *current = arena->current[lane];
        if (current && atomic_fetch_sub_explicit(&current->live, 1, memory_order_acq_rel) == 1)
            push_spare(arena, current);
    }
    free(arena->current);
    for (erh_arena_chunk *chunk = arena->spares, *next; chunk; chunk = next) {
        next = chunk->next;
        munmap(chunk, ERH_ARENA_CHUNK_BYTES);
    }
    if (arena->cond_ready)
        pthread_cond_destroy(&arena->filler_wanted);
    if (arena->lock_ready)
        pthread_mutex_destroy(&arena->lock);
    *arena = (erh_arena){0};
}
