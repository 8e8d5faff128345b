#include "check_run.h"
#include <stdio.h>
#include <string.h>

#include "erh_int_text.h"

/* The text erh_int_text writes for value, NUL-terminated, against printf's. */
static void check_text(int64_t value)
{
    char text[ERH_INT_TEXT_MAX + 1], expected[32];
    char *end = text + ERH_INT_TEXT_MAX;
    char *start = erh_int_text(value, end);
    ck_assert(start >= text);
    *end = '\0';
    snprintf(expected, sizeof expected, "%lld", (long long)value);
    ck_assert_str_eq(start, expected);
}

START_TEST(every_digit_count_and_both_signs)
{
    int64_t power = 1;
    for (int digits = 1; digits <= 18; digits++, power *= 10) {
        check_text(power);
        check_text(power - 1);
        check_text(power * 9 + (power - 1)); /* all nines */
        check_text(-power);
        check_text(-(power * 9 + (power - 1)));
    }
    check_text(0);
    check_text(1700000000001);
}
END_TEST

START_TEST(the_extremes_fill_the_whole_space)
{
    char text[ERH_INT_TEXT_MAX];
    ck_assert_ptr_eq(erh_int_text(INT64_MIN, text + sizeof text), text);
    check_text(INT64_MIN);
    check_text(INT64_MAX);
    check_text(INT64_MIN + 1);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, every_digit_count_and_both_signs);
    tcase_add_test(tc, the_extremes_fill_the_whole_space);
}

int main(void)
{
    return check_run("int_text", add_tests);
}
