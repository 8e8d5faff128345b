#include "check_run.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "erh_arena.h"

#define ALLOC_BYTES 4000 /* about 260 to a chunk */

static size_t spares(erh_arena *arena)
{
    pthread_mutex_lock(&arena->lock);
    size_t n = arena->n_spares;
    pthread_mutex_unlock(&arena->lock);
    return n;
}

static size_t mapped(erh_arena *arena)
{
    return erh_arena_bytes(arena) / ERH_ARENA_CHUNK_BYTES;
}

/* The filler works on its own time: wait up to 10 s for it to bring the spares into [low, high]. */
static void wait_for_spares(erh_arena *arena, size_t low, size_t high)
{
    for (int i = 0; i < 10000; i++) {
        size_t n = spares(arena);
        if (n >= low && n <= high)
            return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    ck_abort_msg("the spares did not reach [%zu, %zu]: %zu", low, high, spares(arena));
}

/* Every chunk allocations were cut from in a test, with how many of them are not yet released. */
typedef struct ledger {
    erh_arena_chunk *chunk[32];
    size_t live[32];
    int n;
} ledger;

static void *cut(erh_arena *arena, ledger *ledger, size_t size, erh_arena_chunk **chunk)
{
    void *memory = erh_arena_alloc(arena, 0, size, chunk);
    ck_assert_ptr_nonnull(memory);
    ck_assert_ptr_nonnull(*chunk);
    int i = 0;
    while (i < ledger->n && ledger->chunk[i] != *chunk)
        i++;
    ck_assert_int_lt(i, 32);
    ledger->n += i == ledger->n;
    ledger->chunk[i] = *chunk;
    ledger->live[i]++;
    return memory;
}

/* Cut until an allocation comes from another chunk; returns the chunk filled. The allocation from
 * the next chunk stays live, and *next_memory says where it is. */
static erh_arena_chunk *fill_current(erh_arena *arena, ledger *ledger, void **next_memory)
{
    erh_arena_chunk *filled = NULL, *chunk;
    for (;;) {
        void *memory = cut(arena, ledger, ALLOC_BYTES, &chunk);
        if (filled && chunk != filled) {
            *next_memory = memory;
            return filled;
        }
        filled = chunk;
    }
}

/* A chunk is one mapping, with its header first. */
static bool first_cut_of(const void *memory, const erh_arena_chunk *chunk)
{
    return (const char *)memory > (const char *)chunk && (const char *)memory < (const char *)chunk + 64;
}

static void release_chunk(ledger *ledger, erh_arena_chunk *chunk)
{
    for (int i = 0; i < ledger->n; i++) {
        for (; ledger->chunk[i] == chunk && ledger->live[i] > 0; ledger->live[i]--)
            erh_arena_release(chunk);
    }
}

static void release_everything(ledger *ledger)
{
    for (int i = 0; i < ledger->n; i++)
        release_chunk(ledger, ledger->chunk[i]);
}

START_TEST(spares_are_ready_and_every_page_of_them_is_in_memory)
{
    erh_arena arena;
    ck_assert_int_eq(erh_arena_init(&arena, 1), ERH_OK);
    wait_for_spares(&arena, ERH_ARENA_SPARES_LOW, ERH_ARENA_SPARES_LOW);
    erh_arena_chunk *chunk;
    void *memory = erh_arena_alloc(&arena, 0, 1, &chunk);
    ck_assert_ptr_nonnull(chunk);
    /* No page of the chunk may fault when written. */
    unsigned char resident[ERH_ARENA_CHUNK_BYTES / 4096];
    ck_assert_int_eq(sysconf(_SC_PAGESIZE), 4096);
    ck_assert_int_eq(mincore(chunk, ERH_ARENA_CHUNK_BYTES, resident), 0);
    for (size_t i = 0; i < sizeof resident; i++)
        ck_assert_msg(resident[i] & 1, "page %zu of the chunk is not in memory", i);
    ck_assert(first_cut_of(memory, chunk));
    erh_arena_release(chunk);
    erh_arena_destroy(&arena);
}
END_TEST

START_TEST(allocations_are_cut_one_after_the_other_and_aligned)
{
    erh_arena arena;
    ck_assert_int_eq(erh_arena_init(&arena, 1), ERH_OK);
    wait_for_spares(&arena, 1, ERH_ARENA_SPARES_HIGH);
    const size_t sizes[] = {1, 17, 100, 16, ERH_ARENA_MAX_ALLOC};
    char *previous = NULL;
    size_t previous_size = 0;
    erh_arena_chunk *first = NULL;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        erh_arena_chunk *chunk;
        char *memory = erh_arena_alloc(&arena, 0, sizes[i], &chunk);
        ck_assert_ptr_nonnull(memory);
        ck_assert_ptr_nonnull(chunk);
        first = first ? first : chunk;
        ck_assert_ptr_eq(chunk, first);
        ck_assert_uint_eq((uintptr_t)memory % alignof(max_align_t), 0);
        if (previous)
            ck_assert(memory >= previous + previous_size);
        memset(memory, 0xa5, sizes[i]);
        previous = memory;
        previous_size = sizes[i];
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        erh_arena_release(first);
    erh_arena_destroy(&arena);
}
END_TEST

START_TEST(a_large_allocation_or_one_with_no_spare_ready_comes_from_malloc)
{
    erh_arena arena;
    ck_assert_int_eq(erh_arena_init(&arena, 1), ERH_OK);
    erh_arena_chunk *chunk;
    void *large = erh_arena_alloc(&arena, 0, ERH_ARENA_MAX_ALLOC + 1, &chunk);
    ck_assert_ptr_nonnull(large);
    ck_assert_ptr_null(chunk);
    memset(large, 0, ERH_ARENA_MAX_ALLOC + 1);
    free(large);
    erh_arena_destroy(&arena);

    /* An arena without its filler never has a spare: it still serves, from malloc. */
    erh_arena_chunk *lane_chunk = NULL;
    erh_arena none = {.current = &lane_chunk, .lanes = 1};
    pthread_mutex_init(&none.lock, NULL);
    void *small = erh_arena_alloc(&none, 0, 64, &chunk);
    ck_assert_ptr_nonnull(small);
    ck_assert_ptr_null(chunk);
    free(small);
    pthread_mutex_destroy(&none.lock);
}
END_TEST

START_TEST(an_emptied_chunk_becomes_a_spare_and_is_cut_again)
{
    erh_arena arena;
    ck_assert_int_eq(erh_arena_init(&arena, 1), ERH_OK);
    ledger ledger = {0};
    wait_for_spares(&arena, ERH_ARENA_SPARES_LOW, ERH_ARENA_SPARES_LOW);
    void *second_start, *reused_start;
    erh_arena_chunk *first = fill_current(&arena, &ledger, &second_start);
    ck_assert(!first_cut_of(second_start, first));
    wait_for_spares(&arena, ERH_ARENA_SPARES_LOW, ERH_ARENA_SPARES_LOW);
    size_t mapped_before = mapped(&arena);
    /* No longer current, the first chunk becomes a spare at its last release: the next one cut. */
    release_chunk(&ledger, first);
    ck_assert_uint_eq(spares(&arena), ERH_ARENA_SPARES_LOW + 1);
    erh_arena_chunk *second = fill_current(&arena, &ledger, &reused_start);
    ck_assert_ptr_ne(second, first);
    ck_assert(first_cut_of(reused_start, first));
    ck_assert_uint_eq(mapped(&arena), mapped_before);
    release_everything(&ledger);
    erh_arena_destroy(&arena);
}
END_TEST

START_TEST(spares_beyond_the_high_mark_go_back_to_the_system)
{
    erh_arena arena;
    ck_assert_int_eq(erh_arena_init(&arena, 1), ERH_OK);
    ledger ledger = {0};
    void *next_start;
    for (int i = 0; i < ERH_ARENA_SPARES_HIGH + 4; i++) {
        wait_for_spares(&arena, 1, ERH_ARENA_SPARES_HIGH);
        fill_current(&arena, &ledger, &next_start);
    }
    release_everything(&ledger);
    wait_for_spares(&arena, ERH_ARENA_SPARES_LOW, ERH_ARENA_SPARES_HIGH);
    /* The spares and the current chunk, nothing else. */
    ck_assert_uint_eq(mapped(&arena), spares(&arena) + 1);
    erh_arena_destroy(&arena);
}
END_TEST

START_TEST(each_lane_cuts_from_chunks_of_its_own)
{
    erh_arena arena;
    ck_assert_int_eq(erh_arena_init(&arena, 2), ERH_OK);
    wait_for_spares(&arena, ERH_ARENA_SPARES_LOW, ERH_ARENA_SPARES_LOW);
    erh_arena_chunk *first[2], *again[2];
    char *memory[2];
    for (unsigned lane = 0; lane < 2; lane++)
        memory[lane] = erh_arena_alloc(&arena, lane, 100, &first[lane]);
    ck_assert_ptr_nonnull(first[0]);
    ck_assert_ptr_nonnull(first[1]);
    ck_assert_ptr_ne(first[0], first[1]);
    /* Cut in turns, each lane goes on in its own chunk, right after its last cut. */
    for (unsigned lane = 0; lane < 2; lane++) {
        char *next = erh_arena_alloc(&arena, lane, 100, &again[lane]);
        ck_assert_ptr_eq(again[lane], first[lane]);
        ck_assert_ptr_eq(next, memory[lane] + 112);
    }
    for (unsigned lane = 0; lane < 2; lane++) {
        erh_arena_release(first[lane]);
        erh_arena_release(again[lane]);
    }
    erh_arena_destroy(&arena);
}
END_TEST

#define THREADS 4
#define ROUNDS 200
#define BATCH 100

/* Each thread cuts batches of allocations of its own sizes from its own lane, fills each with its
 * own mark and checks every mark before giving the batch back: two allocations that overlap would
 * break a mark. */
static void *cut_and_check(void *arg)
{
    erh_arena *arena = arg;
    static _Atomic unsigned next_mark = 1;
    unsigned char mark = (unsigned char)next_mark++;
    void *memory[BATCH];
    erh_arena_chunk *chunk[BATCH];
    size_t size[BATCH];
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < BATCH; i++) {
            size[i] = 1 + (size_t)(round * 131 + i * 17 + mark * 7) % 3000;
            memory[i] = erh_arena_alloc(arena, mark % THREADS, size[i], &chunk[i]);
            ck_assert_ptr_nonnull(memory[i]);
            memset(memory[i], mark, size[i]);
        }
        for (int i = 0; i < BATCH; i++) {
            const unsigned char *bytes = memory[i];
            ck_assert(bytes[0] == mark && bytes[size[i] - 1] == mark && memcmp(bytes, bytes + 1, size[i] - 1) == 0);
            if (chunk[i])
                erh_arena_release(chunk[i]);
            else
                free(memory[i]);
        }
    }
    return NULL;
}

START_TEST(threads_cutting_and_releasing_at_once_never_share_bytes)
{
    erh_arena arena;
    ck_assert_int_eq(erh_arena_init(&arena, THREADS), ERH_OK);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, cut_and_check, &arena), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    wait_for_spares(&arena, ERH_ARENA_SPARES_LOW, ERH_ARENA_SPARES_HIGH);
    size_t current = 0;
    for (unsigned lane = 0; lane < THREADS; lane++)
        current += arena.current[lane] != NULL;
    ck_assert_uint_eq(mapped(&arena), spares(&arena) + current);
    erh_arena_destroy(&arena);
}
END_TEST

START_TEST(destroy_is_safe_on_a_zeroed_arena)
{
    erh_arena arena = {0};
    erh_arena_destroy(&arena);
    erh_arena_destroy(&arena);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, spares_are_ready_and_every_page_of_them_is_in_memory);
    tcase_add_test(tc, allocations_are_cut_one_after_the_other_and_aligned);
    tcase_add_test(tc, a_large_allocation_or_one_with_no_spare_ready_comes_from_malloc);
    tcase_add_test(tc, an_emptied_chunk_becomes_a_spare_and_is_cut_again);
    tcase_add_test(tc, spares_beyond_the_high_mark_go_back_to_the_system);
    tcase_add_test(tc, each_lane_cuts_from_chunks_of_its_own);
    tcase_add_test(tc, threads_cutting_and_releasing_at_once_never_share_bytes);
    tcase_add_test(tc, destroy_is_safe_on_a_zeroed_arena);
}

int main(void)
{
    return check_run("arena", add_tests);
}
