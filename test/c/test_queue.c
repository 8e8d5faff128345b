#include "check_run.h"
#include <poll.h>
#include <stdlib.h>

#include "erh_queue.h"

static erh_event *numbered(uint64_t seq)
{
    erh_event proto = {.type = ERH_EV_PUBLISH, .seq = seq};
    erh_event *event = erh_event_new(&proto);
    ck_assert_ptr_nonnull(event);
    return event;
}

static bool woken(erh_queue *queue)
{
    struct pollfd fd = {.fd = queue->wake_fd, .events = POLLIN};
    bool readable = poll(&fd, 1, 0) == 1;
    erh_queue_clear_wake(queue);
    return readable;
}

START_TEST(events_leave_in_order_and_the_bound_holds)
{
    erh_queue queue;
    ck_assert_int_eq(erh_queue_init(&queue, 5, 4), ERH_OK);
    for (uint64_t seq = 1; seq <= 5; seq++)
        ck_assert_int_eq(erh_queue_push(&queue, numbered(seq)), ERH_OK);
    erh_event *refused = numbered(6);
    ck_assert_int_eq(erh_queue_push(&queue, refused), ERH_ERR_FULL);
    erh_event_free(refused);
    ck_assert_ptr_eq(erh_queue_peek(&queue), queue.head);
    size_t taken;
    erh_event *batch = erh_queue_pop(&queue, 3, &taken);
    ck_assert_uint_eq(taken, 3);
    uint64_t seq = 1;
    for (erh_event *event = batch; event;) {
        ck_assert_uint_eq(event->seq, seq++);
        erh_event *next = event->next;
        erh_event_free(event);
        event = next;
    }
    ck_assert_uint_eq(seq, 4);
    ck_assert_uint_eq(erh_queue_count(&queue), 2);
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
    for (uint64_t seq = 1; seq <= 2; seq++)
        ck_assert_int_eq(erh_queue_push(&queue, numbered(seq)), ERH_OK);
    ck_assert(!woken(&queue));
    ck_assert_int_eq(erh_queue_push(&queue, numbered(3)), ERH_OK);
    ck_assert(woken(&queue));
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
    tcase_add_test(tc, destroy_is_safe_on_a_zeroed_queue);
}

int main(void)
{
    return check_run("queue", add_tests);
}
