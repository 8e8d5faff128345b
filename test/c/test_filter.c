#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "erh_filter.h"

static const struct {
    const char *filter;
    const char *topic;
    bool match;
} matches[] = {
    /* exact */
    {"sport/tennis", "sport/tennis", true},
    {"sport/tennis", "sport/tennis/player1", false},
    {"sport/tennis", "sport/tenni", false},
    {"sport/tennis", "sport/tennisx", false},
    {"sport/tennis", "Sport/tennis", false},
    {"/", "/", true},
    {"/", "", false},
    /* '#': the level and everything below, including the parent (§4.7.1.2) */
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/tennis/player1/#", "sport/tennis/player2", false},
    {"sport/#", "sport", true},
    {"sport/#", "sport/", true},
    {"sport/#", "sports", false},
    {"sport/#", "spor", false},
    {"#", "sport/tennis", true},
    {"#", "/", true},
    {"#", "a", true},
    {"/#", "/a/b", true},
    {"/#", "a", false},
    /* '+': exactly one level, which may be empty (§4.7.1.3) */
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player2", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true},
    {"+", "a", true},
    {"+", "", true},
    {"+", "/finance", false},
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+/tennis/#", "sport/tennis/player1", true},
    {"+/tennis/#", "sport/tennis", true},
    {"+/tennis/#", "sport/golf", false},
    {"a/+/c", "a//c", true},
    {"a/+/c", "a/b/d", false},
    {"+/+/+", "a/b", false},
    /* '$' topics: first-level wildcards never match them (§4.7.2) */
    {"#", "$SYS/broker/clients", false},
    {"#", "$SYS", false},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false},
    {"+/x", "$SYS/x", false},
    {"+", "$SYS", false},
    {"$SYS/#", "$SYS/a", true},
    {"$SYS/#", "$SYS", true},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
    {"$SYS/+/Clients", "$SYS/monitor/Clients", true},
    {"a/#", "a/$SYS", true}, /* the rule only concerns the first level */
    {"a/+", "a/$x", true},
    {"$share/#", "$SYS/a", false},
};

START_TEST(matches_per_mqtt_311)
{
    const char *f = matches[_i].filter, *t = matches[_i].topic;
    ck_assert_msg(erh_filter_valid(f, strlen(f)), "filter %s should be valid", f);
    ck_assert_msg(erh_filter_match(f, strlen(f), t, strlen(t)) == matches[_i].match, "filter \"%s\" topic \"%s\": %s",
                  f, t, matches[_i].match ? "should match" : "should not match");
}
END_TEST

static const struct {
    const char *filter;
    size_t len;
    bool valid;
} validity[] = {
    {"a", 1, true},
    {"a/b/c", 5, true},
    {"/", 1, true},
    {"//", 2, true},
    {"#", 1, true},
    {"+", 1, true},
    {"+/+", 3, true},
    {"a/#", 3, true},
    {"+/a/#", 5, true},
    {"/#", 2, true},
    {"$SYS/#", 6, true},
    {"", 0, false},
    {"a#", 2, false},
    {"#a", 2, false},
    {"a/#/b", 5, false},
    {"#/", 2, false},
    {"##", 2, false},
    {"a+", 2, false},
    {"+a", 2, false},
    {"a/b+/c", 6, false},
    {"++", 2, false},
    {"a\0b", 3, false},
    {"a", 0, false}, /* only the counted bytes are the filter */
};

START_TEST(validates_filters)
{
    ck_assert_msg(erh_filter_valid(validity[_i].filter, validity[_i].len) == validity[_i].valid, "filter %d \"%s\"",
                  _i, validity[_i].filter);
}
END_TEST

START_TEST(matches_counted_bytes_only)
{
    ck_assert(erh_filter_match("a/bXXX", 3, "a/bYYY", 3));
    ck_assert(!erh_filter_match("a/b", 3, "a/b/c", 4));
    ck_assert(erh_filter_match("a/+", 3, "a/b\0c", 5));
    ck_assert(erh_filter_match("+", 1, NULL, 0));
}
END_TEST

START_TEST(set_matches_any_of_its_filters)
{
    char buf[] = "sensors/+/temp";
    const char *filters[] = {buf, "alerts/#"};
    const size_t lens[] = {strlen(buf), strlen("alerts/#")};
    erh_filter_set set;
    ck_assert_int_eq(erh_filter_set_init(&set, filters, lens, 2, NULL), ERH_OK);
    memset(buf, 'x', sizeof buf - 1); /* the set keeps its own copies */
    ck_assert(erh_filter_set_match(&set, "sensors/k1/temp", 15));
    ck_assert(erh_filter_set_match(&set, "alerts", 6));
    ck_assert(!erh_filter_set_match(&set, "sensors/k1/humidity", 19));
    ck_assert(!erh_filter_set_match(&set, "$SYS/alerts", 11));
    erh_filter_set_free(&set);
    ck_assert_uint_eq(set.count, 0);
    erh_filter_set_free(&set); /* twice is harmless */
}
END_TEST

START_TEST(empty_set_matches_nothing)
{
    erh_filter_set set;
    ck_assert_int_eq(erh_filter_set_init(&set, NULL, NULL, 0, NULL), ERH_OK);
    ck_assert(!erh_filter_set_match(&set, "a", 1));
    erh_filter_set_free(&set);
}
END_TEST

START_TEST(set_refuses_an_invalid_filter_and_names_it)
{
    const char *filters[] = {"ok/#", "bad#", "also/ok"};
    const size_t lens[] = {4, 4, 7};
    erh_filter_set set;
    size_t bad_index = 99;
    ck_assert_int_eq(erh_filter_set_init(&set, filters, lens, 3, &bad_index), ERH_ERR_BADARG);
    ck_assert_uint_eq(bad_index, 1);
    ck_assert_uint_eq(set.count, 0);
    ck_assert_ptr_null(set.filters);
    erh_filter_set_free(&set);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_loop_test(tc, matches_per_mqtt_311, 0, sizeof matches / sizeof matches[0]);
    tcase_add_loop_test(tc, validates_filters, 0, sizeof validity / sizeof validity[0]);
    tcase_add_test(tc, matches_counted_bytes_only);
    tcase_add_test(tc, set_matches_any_of_its_filters);
    tcase_add_test(tc, empty_set_matches_nothing);
    tcase_add_test(tc, set_refuses_an_invalid_filter_and_names_it);
}

int main(void)
{
    return check_run("filter", add_tests);
}
