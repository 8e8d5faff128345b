#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "erh_base64.h"

/* RFC 4648 §10, plus bytes that use the last two alphabet characters and a NUL. */
static const struct {
    const char *in;
    size_t in_len;
    const char *out;
} vectors[] = {
    {"", 0, ""},
    {"f", 1, "Zg=="},
    {"fo", 2, "Zm8="},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg=="},
    {"fooba", 5, "Zm9vYmE="},
    {"foobar", 6, "Zm9vYmFy"},
    {"\xFB\xFF\xBF", 3, "+/+/"},
    {"\0\0\0\0", 4, "AAAAAA=="},
    {"\xFF\xFE\xFD\xFC\xFB", 5, "//79/Ps="},
};

START_TEST(encodes_rfc4648_vectors)
{
    erh_buf out = {0};
    size_t want = strlen(vectors[_i].out);
    ck_assert_uint_eq(erh_base64_encoded_len(vectors[_i].in_len), want);
    ck_assert_int_eq(erh_base64_encode(vectors[_i].in, vectors[_i].in_len, &out), ERH_OK);
    ck_assert_uint_eq(out.len, want);
    ck_assert_msg(want == 0 || memcmp(out.data, vectors[_i].out, want) == 0, "case %d", _i);
    erh_buf_free(&out);
}
END_TEST

START_TEST(appends_after_existing_content)
{
    erh_buf out = {0};
    ck_assert_int_eq(erh_buf_append(&out, "x:", 2), ERH_OK);
    ck_assert_int_eq(erh_base64_encode("foobar", 6, &out), ERH_OK);
    ck_assert_uint_eq(out.len, 10);
    ck_assert(memcmp(out.data, "x:Zm9vYmFy", 10) == 0);
    erh_buf_free(&out);
}
END_TEST

START_TEST(refuses_a_length_whose_encoding_overflows)
{
    erh_buf out = {0};
    ck_assert_int_eq(erh_base64_encode("", SIZE_MAX, &out), ERH_ERR_NOMEM);
    ck_assert_ptr_null(out.data);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_loop_test(tc, encodes_rfc4648_vectors, 0, sizeof vectors / sizeof vectors[0]);
    tcase_add_test(tc, appends_after_existing_content);
    tcase_add_test(tc, refuses_a_length_whose_encoding_overflows);
}

int main(void)
{
    return check_run("base64", add_tests);
}
