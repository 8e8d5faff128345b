#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "erh_utf8.h"

#define S(literal) literal, sizeof literal - 1

static const struct {
    const char *data;
    size_t len;
    bool valid;
} validity[] = {
    {S(""), true},
    {S("plain ascii"), true},
    {S("nul\0inside"), true},
    {S("\xC2\x80"), true},                 /* U+0080, smallest two-byte */
    {S("\xDF\xBF"), true},                 /* U+07FF */
    {S("\xE0\xA0\x80"), true},             /* U+0800, smallest three-byte */
    {S("\xED\x9F\xBF"), true},             /* U+D7FF, below the surrogates */
    {S("\xEE\x80\x80"), true},             /* U+E000, above the surrogates */
    {S("\xEF\xBF\xBF"), true},             /* U+FFFF */
    {S("\xF0\x90\x80\x80"), true},         /* U+10000, smallest four-byte */
    {S("\xF4\x8F\xBF\xBF"), true},         /* U+10FFFF, the last code point */
    {S("h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC \xF0\x9F\x98\x80"), true},
    {S("\x80"), false},                    /* lone continuation byte */
    {S("\xBF"), false},
    {S("\xC0\x80"), false},                /* overlong NUL */
    {S("\xC1\xBF"), false},                /* overlong U+007F */
    {S("\xE0\x80\x80"), false},            /* overlong U+0000 */
    {S("\xE0\x9F\xBF"), false},            /* overlong U+07FF */
    {S("\xF0\x80\x80\x80"), false},        /* overlong U+0000 */
    {S("\xF0\x8F\xBF\xBF"), false},        /* overlong U+FFFF */
    {S("\xED\xA0\x80"), false},            /* U+D800 */
    {S("\xED\xBF\xBF"), false},            /* U+DFFF */
    {S("\xED\xA0\x80\xED\xB0\x80"), false}, /* CESU-8 surrogate pair */
    {S("\xF4\x90\x80\x80"), false},        /* U+110000 */
    {S("\xF5\x80\x80\x80"), false},
    {S("\xF8\x88\x80\x80\x80"), false},    /* old five-byte form */
    {S("\xFE"), false},
    {S("\xFF"), false},
    {S("\xC3"), false},                    /* truncated two-byte */
    {S("\xE2\x82"), false},                /* truncated three-byte */
    {S("\xF0\x9F\x98"), false},            /* truncated four-byte */
    {S("\xC3x"), false},                   /* lead byte followed by ASCII */
    {S("12345678\x80"), false},            /* bad byte after a whole ASCII word */
    {S("1234567\xC3\xA9 and more ascii"), true}, /* a character across a word boundary */
    {S("0123456789abcdef\xE2\x82"), false},
};

START_TEST(validates_per_rfc3629)
{
    ck_assert_msg(erh_utf8_valid(validity[_i].data, validity[_i].len) == validity[_i].valid,
                  "case %d: expected %s", _i, validity[_i].valid ? "valid" : "invalid");
}
END_TEST

#define FFFD "\xEF\xBF\xBD"

static const struct {
    const char *in;
    size_t in_len;
    const char *out;
    size_t out_len;
} sanitized[] = {
    {S(""), S("")},
    {S("already fine \xE2\x82\xAC"), S("already fine \xE2\x82\xAC")},
    {S("a\0b"), S("a\0b")},
    {S("\x80"), S(FFFD)},
    {S("a\x80\x80z"), S("a" FFFD FFFD "z")},               /* each stray continuation byte */
    {S("\xC0\xAF"), S(FFFD FFFD)},                        /* C0 never starts a sequence */
    {S("\xE2\x82"), S(FFFD)},                             /* truncated: one replacement */
    {S("\xE2\x82x"), S(FFFD "x")},
    {S("\xED\xA0\x80"), S(FFFD FFFD FFFD)},               /* surrogate: ED A0 is no valid prefix */
    {S("\xF4\x90\x80\x80"), S(FFFD FFFD FFFD FFFD)},       /* above U+10FFFF */
    {S("\xF0\x9F\x98x\xF0\x9F\x98\x80"), S(FFFD "x\xF0\x9F\x98\x80")},
    /* Unicode 15, §3.9, table 3-8 */
    {S("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
     S("a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d")},
};

START_TEST(sanitize_replaces_each_maximal_subpart)
{
    erh_buf out = {0};
    ck_assert_int_eq(erh_utf8_sanitize(sanitized[_i].in, sanitized[_i].in_len, &out), ERH_OK);
    ck_assert_uint_eq(out.len, sanitized[_i].out_len);
    ck_assert_msg(out.len == 0 || memcmp(out.data, sanitized[_i].out, out.len) == 0, "case %d", _i);
    ck_assert(erh_utf8_valid(out.data ? out.data : "", out.len));
    erh_buf_free(&out);
}
END_TEST

START_TEST(sanitize_appends_to_existing_content)
{
    erh_buf out = {0};
    ck_assert_int_eq(erh_buf_append(&out, S("keep:")), ERH_OK);
    ck_assert_int_eq(erh_utf8_sanitize(S("x\xFFy"), &out), ERH_OK);
    ck_assert_uint_eq(out.len, sizeof("keep:x" FFFD "y") - 1);
    ck_assert(memcmp(out.data, "keep:x" FFFD "y", out.len) == 0);
    erh_buf_free(&out);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_loop_test(tc, validates_per_rfc3629, 0, sizeof validity / sizeof validity[0]);
    tcase_add_loop_test(tc, sanitize_replaces_each_maximal_subpart, 0, sizeof sanitized / sizeof sanitized[0]);
    tcase_add_test(tc, sanitize_appends_to_existing_content);
}

int main(void)
{
    return check_run("utf8", add_tests);
}
