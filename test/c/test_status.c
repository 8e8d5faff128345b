#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "erh_status.h"

START_TEST(every_status_has_a_message)
{
    for (int status = ERH_STATUS_MIN; status <= 0; status++) {
        const char *message = erh_strerror((erh_status)status);
        ck_assert_ptr_nonnull(message);
        ck_assert_msg(strcmp(message, "unknown status") != 0, "status %d has no message", status);
    }
}
END_TEST

START_TEST(unknown_statuses_still_get_a_message)
{
    ck_assert_str_eq(erh_strerror((erh_status)1), "unknown status");
    ck_assert_str_eq(erh_strerror((erh_status)(ERH_STATUS_MIN - 1)), "unknown status");
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, every_status_has_a_message);
    tcase_add_test(tc, unknown_statuses_still_get_a_message);
}

int main(void)
{
    return check_run("status", add_tests);
}
