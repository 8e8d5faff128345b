#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erh_scripts.h"

/* The compiled-in scripts are the files in priv/, byte for byte. */
static void assert_same_as_file(const char *script, const char *path)
{
    FILE *file = fopen(path, "rb");
    ck_assert_msg(file != NULL, "cannot open %s", path);
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text, file);
    fclose(file);
    ck_assert_uint_lt(len, sizeof text);
    ck_assert_uint_eq(strlen(script), len);
    ck_assert_int_eq(memcmp(script, text, len), 0);
}

START_TEST(scripts_match_priv)
{
    assert_same_as_file(erh_script_presence_write, "../../priv/presence_write.lua");
    assert_same_as_file(erh_script_presence_read, "../../priv/presence_read.lua");
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("scripts");
    TCase *tc = tcase_create("scripts");
    tcase_add_test(tc, scripts_match_priv);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
