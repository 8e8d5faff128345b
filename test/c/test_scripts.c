#include "check_run.h"
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

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, scripts_match_priv);
}

int main(void)
{
    return check_run("scripts", add_tests);
}
