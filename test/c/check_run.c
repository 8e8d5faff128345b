#include "check_run.h"

#include <stdio.h>
#include <stdlib.h>

int check_run(const char *name, void (*add_tests)(TCase *tc))
{
    Suite *suite = suite_create(name);
    TCase *tc = tcase_create(name);
    add_tests(tc);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void check_make_dir(char dir[64], const char *prefix)
{
    ck_assert_int_lt(snprintf(dir, 64, "/tmp/%sXXXXXX", prefix), 64);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

void check_remove_dir(const char *dir)
{
    char command[128];
    ck_assert_int_lt(snprintf(command, sizeof command, "rm -rf '%s'", dir), (int)sizeof command);
    ck_assert_int_eq(system(command), 0);
}
