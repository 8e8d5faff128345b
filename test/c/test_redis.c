#include "check_run.h"
#include <string.h>

#include <hiredis.h>

#include "erh_redis.h"

/* An error reply as hiredis hands it over. */
static redisReply error_reply(const char *text)
{
    return (redisReply){.type = REDIS_REPLY_ERROR, .str = (char *)text, .len = strlen(text)};
}

static bool transient(const char *text)
{
    redisReply reply = error_reply(text);
    return erh_redis_is_transient(&reply);
}

START_TEST(refusals_that_pass_are_transient)
{
    ck_assert(transient("LOADING Redis is loading the dataset in memory"));
    ck_assert(transient("OOM command not allowed when used memory > 'maxmemory'."));
    ck_assert(transient("READONLY You can't write against a read only replica."));
    ck_assert(transient("BUSY Redis is busy running a script."));
    ck_assert(transient("MASTERDOWN"));
}
END_TEST

/* Redis 5 and 6 wrap the error of a command the script ran in their own ERR. */
START_TEST(refusals_wrapped_by_a_script_are_transient)
{
    ck_assert(transient("ERR Error running script (call to "
                        "f_0a9a51ee96320953ec7bde8e63f3f060b9dac00c): "
                        "@user_script:41: @user_script: 41: -OOM command not "
                        "allowed when used memory > "
                        "'maxmemory'."));
    ck_assert(transient("ERR Error running script (call to f_0a9a): @user_script:12: "
                        "@user_script: 12: "
                        "-READONLY You can't write against a read only replica."));
    ck_assert(transient("ERR Error running script (call to f_0a9a): @user_script:3: -LOADING"));
}
END_TEST

START_TEST(other_errors_are_not_transient)
{
    ck_assert(!transient("ERR wrong number of arguments for 'evalsha' command"));
    ck_assert(!transient("ERR Error running script (call to f_0a9a): "
                         "@user_script:7: user_script:7: "
                         "attempt to compare nil with number"));
    ck_assert(!transient("ERR Error running script (call to f_0a9a): "
                         "@user_script:7: -OOMPH not a code"));
    ck_assert(!transient("ERR OOM in the text but not a code"));
    ck_assert(!transient("OOMPH"));
    ck_assert(!transient("NOSCRIPT No matching script. Please use EVAL."));
    redisReply status = {.type = REDIS_REPLY_STATUS, .str = "OOM", .len = 3};
    ck_assert(!erh_redis_is_transient(&status));
}
END_TEST

START_TEST(noscript_is_told_apart)
{
    redisReply reply = error_reply("NOSCRIPT No matching script. Please use EVAL.");
    ck_assert(erh_redis_is_noscript(&reply));
    reply = error_reply("NOSCRIPTS");
    ck_assert(!erh_redis_is_noscript(&reply));
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, refusals_that_pass_are_transient);
    tcase_add_test(tc, refusals_wrapped_by_a_script_are_transient);
    tcase_add_test(tc, other_errors_are_not_transient);
    tcase_add_test(tc, noscript_is_told_apart);
}

int main(void)
{
    return check_run("redis", add_tests);
}
