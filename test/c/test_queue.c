#include "check_run.h"
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

#include "erh_queue.h"

static erh_event *numbered(uint64_t seq)
{
    erh_event proto = {.type = ERH_EV_PUBLISH, .seq = seq};
    erh_event *event = erh_event_new(&proto);
    ck_assert_ptr_nonnull(event);
    return event;
}

/* Push first..last, each numbered by its seq; the queue must have room for them. */
static void push_numbered(erh_queue *queue, uint64_t first, uint64_t last)
{
    for (uint64_t seq = first; seq <= last; seq++)
        ck_assert_int_eq(erh_queue_push(queue, numbered(seq)), ERH_OK);
}

static bool woken(erh_queue *queue)
{
    struct pollfd fd = {.fd = queue->wake_fd, .events = POLLIN};
    bool readable = poll(&fd, 1, 0) == 1;
    erh_queue_clear_wake(queue);
    return readable;
}

/* Check the list holds first, first + 1, ... in order, free it; returns the number after the last. */
static uint64_t free_in_order(erh_event *list, uint64_t first)
{
    for (erh_event *event = list; event;) {
        ck_assert_uint_eq(event->seq, first++);
        erh_event *next = event->next;
        erh_event_free(event);
        event = next;
    }
    return first;
}

START_TEST(events_leave_in_order_and_the_bound_holds)
{
    erh_queue queue;
    ck_assert_int_eq(erh_queue_init(&queue, 5, 4), ERH_OK);
    push_numbered(&queue, 1, 4);
    ck_assert(!erh_queue_looks_full(&queue));
    push_numbered(&queue, 5, 5);
    ck_assert(erh_queue_looks_full(&queue));
    erh_event *refused = numbered(6);
    ck_assert_int_eq(erh_queue_push(&queue, refused), ERH_ERR_FULL);
    erh_event_free(refused);
    size_t taken;
    ck_assert_uint_eq(free_in_order(erh_queue_pop(&queue, 3, &taken), 1), 4);
    ck_assert_uint_eq(taken, 3);
    ck_assert_uint_eq(erh_queue_count(&queue), 2);
    ck_assert(!erh_queue_looks_full(&queue));
    erh_queue_destroy(&queue); /* frees the two left */
}
END_TEST

START_TEST(a_sleeping_consumer_is_woken_once_and_a_busy_one_not_at_all)
{
    erh_queue queue;
    ck_assert_int_eq(erh_queue_init(&queue, 100, 90), ERH_OK);
    ck_assert(erh_queue_prepare_sleep(&queue));
    ck_assert_int_eq(erh_queue_push(&queue, numbered(1)), ERH_OK);
    ck_assert_int_eq(erh_queue_push(&queue, numbered(2)), ERH_OK);
    ck_assert(woken(&queue));
    /* Not empty: the consumer may not sleep, and pushes do not wake it. */
    ck_assert(!erh_queue_prepare_sleep(&queue));
    ck_assert_int_eq(erh_queue_push(&queue, numbered(3)), ERH_OK);
    ck_assert(!woken(&queue));
    erh_queue_destroy(&queue);
}
END_TEST

START_TEST(reaching_the_high_water_mark_wakes_even_a_busy_consumer)
{
    erh_queue queue;
    ck_assert_int_eq(erh_queue_init(&queue, 10, 3), ERH_OK);
    push_numbered(&queue, 1, 2);
    ck_assert(!woken(&queue));
    ck_assert_int_eq(erh_queue_push(&queue, numbered(3)), ERH_OK);
    ck_assert(woken(&queue));
    erh_queue_destroy(&queue);
}
END_TEST

START_TEST(popping_everything_nothing_or_a_part_keeps_the_order)
{
    erh_queue queue;
    ck_assert_int_eq(erh_queue_init(&queue, 100, 0), ERH_OK);
    size_t taken;
    ck_assert_ptr_null(erh_queue_pop(&queue, 10, &taken));
    ck_assert_uint_eq(taken, 0);
    push_numbered(&queue, 1, 10);
    ck_assert_ptr_null(erh_queue_pop(&queue, 0, &taken));
    ck_assert_uint_eq(taken, 0);
    ck_assert_uint_eq(free_in_order(erh_queue_pop(&queue, 4, &taken), 1), 5);
    ck_assert_uint_eq(taken, 4);
    ck_assert_uint_eq(free_in_order(erh_queue_pop(&queue, 100, &taken), 5), 11);
    ck_assert_uint_eq(taken, 6);
    ck_assert_uint_eq(erh_queue_count(&queue), 0);
    /* Emptied: the next push starts a new list. */
    ck_assert_int_eq(erh_queue_push(&queue, numbered(11)), ERH_OK);
    ck_assert_uint_eq(free_in_order(erh_queue_pop(&queue, 1, &taken), 11), 12);
    erh_queue_destroy(&queue);
}
END_TEST

START_TEST(a_list_pushed_back_in_front_leaves_first)
{
    erh_queue queue;
    ck_assert_int_eq(erh_queue_init(&queue, 4, 0), ERH_OK);
    push_numbered(&queue, 1, 4);
    size_t taken;
    erh_event *batch = erh_queue_pop(&queue, 3, &taken);
    push_numbered(&queue, 5, 7);
    /* Back in front of a full queue: over its capacity until the consumer takes again. */
    erh_queue_push_front(&queue, batch);
    ck_assert_uint_eq(erh_queue_count(&queue), 7);
    ck_assert(erh_queue_looks_full(&queue));
    erh_event *refused = numbered(8);
    ck_assert_int_eq(erh_queue_push(&queue, refused), ERH_ERR_FULL);
    erh_event_free(refused);
    ck_assert_uint_eq(free_in_order(erh_queue_pop(&queue, 100, &taken), 1), 8);
    /* Into an empty queue, and NULL changes nothing. */
    erh_queue_push_front(&queue, NULL);
    erh_queue_push_front(&queue, numbered(1));
    ck_assert_int_eq(erh_queue_push(&queue, numbered(2)), ERH_OK);
    ck_assert_uint_eq(free_in_order(erh_queue_pop(&queue, 100, &taken), 1), 3);
    erh_queue_destroy(&queue);
}
END_TEST

#define PRODUCERS 4
#define PER_PRODUCER 20000

typedef struct producer {
    erh_queue *queue;
    uint64_t id;
} producer;

/* seq = id * PER_PRODUCER + n, n counting up: the consumer can check each producer's order. */
static void *produce(void *arg)
{
    producer *self = arg;
    for (uint64_t n = 0; n < PER_PRODUCER;) {
        erh_event *event = numbered(self->id * PER_PRODUCER + n);
        if (erh_queue_push(self->queue, event) == ERH_OK)
            n++;
        else
            erh_event_free(event);
    }
    return NULL;
}

/* The consumer pops batches of every size while producers push: nothing lost, nothing twice, each
 * producer's events in their order (the walk outside the lock races with no push). */
START_TEST(batches_popped_while_producers_push_keep_every_event_in_order)
{
    erh_queue queue;
    ck_assert_int_eq(erh_queue_init(&queue, 1000, 0), ERH_OK);
    producer producers[PRODUCERS];
    pthread_t threads[PRODUCERS];
    for (uint64_t i = 0; i < PRODUCERS; i++) {
        producers[i] = (producer){&queue, i};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, produce, &producers[i]), 0);
    }
    uint64_t next[PRODUCERS] = {0};
    size_t received = 0;
    for (size_t max = 1; received < PRODUCERS * PER_PRODUCER; max = max % 300 + 1) {
        size_t taken, counted = 0;
        for (erh_event *event = erh_queue_pop(&queue, max, &taken); event; counted++) {
            uint64_t id = event->seq / PER_PRODUCER;
            ck_assert_uint_lt(id, PRODUCERS);
            ck_assert_uint_eq(event->seq % PER_PRODUCER, next[id]++);
            erh_event *after = event->next;
            erh_event_free(event);
            event = after;
        }
        ck_assert_uint_eq(counted, taken);
        ck_assert_uint_le(taken, max);
        received += taken;
    }
    for (size_t i = 0; i < PRODUCERS; i++)
        pthread_join(threads[i], NULL);
    ck_assert_uint_eq(erh_queue_count(&queue), 0);
    erh_queue_destroy(&queue);
}
END_TEST

START_TEST(destroy_is_safe_on_a_zeroed_queue)
{
    erh_queue queue = {.wake_fd = -1};
    erh_queue_destroy(&queue);
    erh_queue_destroy(&queue);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, events_leave_in_order_and_the_bound_holds);
    tcase_add_test(tc, a_sleeping_consumer_is_woken_once_and_a_busy_one_not_at_all);
    tcase_add_test(tc, reaching_the_high_water_mark_wakes_even_a_busy_consumer);
    tcase_add_test(tc, popping_everything_nothing_or_a_part_keeps_the_order);
    tcase_add_test(tc, a_list_pushed_back_in_front_leaves_first);
    tcase_add_test(tc, batches_popped_while_producers_push_keep_every_event_in_order);
    tcase_add_test(tc, destroy_is_safe_on_a_zeroed_queue);
}

int main(void)
{
    return check_run("queue", add_tests);
}
