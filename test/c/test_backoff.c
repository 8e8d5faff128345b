#include "check_run.h"
#include <stdlib.h>

#include "erh_backoff.h"

START_TEST(delays_double_up_to_the_max_with_jitter)
{
    erh_backoff backoff;
    erh_backoff_init(&backoff, 100, 1000, 42);
    unsigned ceiling = 100;
    for (int i = 0; i < 50; i++) {
        unsigned delay = erh_backoff_next(&backoff);
        ck_assert_uint_ge(delay, ceiling / 2);
        ck_assert_uint_le(delay, ceiling);
        ceiling = ceiling > 500 ? 1000 : ceiling * 2;
    }
    erh_backoff_reset(&backoff);
    unsigned delay = erh_backoff_next(&backoff);
    ck_assert_uint_ge(delay, 50);
    ck_assert_uint_le(delay, 100);
}
END_TEST

START_TEST(tiny_delays_stay_in_range)
{
    erh_backoff backoff;
    erh_backoff_init(&backoff, 1, 1, 7);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_le(erh_backoff_next(&backoff), 1);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, delays_double_up_to_the_max_with_jitter);
    tcase_add_test(tc, tiny_delays_stay_in_range);
}

int main(void)
{
    return check_run("backoff", add_tests);
}
