#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "erh_routing.h"
#include "erh_utf8.h"

static erh_event event_with(const char *clientid, const char *username, const char *topic)
{
    erh_event event = {.type = ERH_EV_PUBLISH};
    event.field[ERH_F_CLIENTID] = (erh_bytes){clientid, clientid ? strlen(clientid) : 0};
    event.field[ERH_F_USERNAME] = (erh_bytes){username, username ? strlen(username) : 0};
    event.field[ERH_F_TOPIC] = (erh_bytes){topic, topic ? strlen(topic) : 0};
    return event;
}

static const struct {
    const char *template_str;
    const char *key;
} renders[] = {
    {"message.publish", "message.publish"},
    {"", ""},
    {"${clientid}", "dev-1"},
    {"${username}", "alice"},
    {"${topic}", "sensors.k1.temp"},
    {"mqtt.${topic}", "mqtt.sensors.k1.temp"},
    {"${clientid}.${username}.${topic}.end", "dev-1.alice.sensors.k1.temp.end"},
    {"${clientid}${clientid}", "dev-1dev-1"},
    {"cost $5 {x} $", "cost $5 {x} $"},
};

START_TEST(renders_placeholders)
{
    erh_event event = event_with("dev-1", "alice", "sensors/k1/temp");
    char out[ERH_ROUTING_KEY_MAX + 1];
    size_t len = 999;
    ck_assert(erh_routing_template_valid(renders[_i].template_str));
    ck_assert_int_eq(erh_routing_render(renders[_i].template_str, &event, out, &len), ERH_OK);
    ck_assert_str_eq(out, renders[_i].key);
    ck_assert_uint_eq(len, strlen(renders[_i].key));
}
END_TEST

START_TEST(absent_values_render_empty)
{
    erh_event event = event_with("dev-1", NULL, NULL);
    char out[ERH_ROUTING_KEY_MAX + 1];
    size_t len;
    ck_assert_int_eq(erh_routing_render("u.${username}.t.${topic}.c.${clientid}", &event, out, &len), ERH_OK);
    ck_assert_str_eq(out, "u..t..c.dev-1");
}
END_TEST

START_TEST(clientid_slashes_are_kept)
{
    erh_event event = event_with("a/b", NULL, "x/y");
    char out[ERH_ROUTING_KEY_MAX + 1];
    size_t len;
    ck_assert_int_eq(erh_routing_render("${clientid}/${topic}", &event, out, &len), ERH_OK);
    ck_assert_str_eq(out, "a/b/x.y");
}
END_TEST

START_TEST(key_of_exactly_the_limit_is_whole)
{
    char topic[ERH_ROUTING_KEY_MAX + 1];
    memset(topic, 't', ERH_ROUTING_KEY_MAX);
    topic[ERH_ROUTING_KEY_MAX] = '\0';
    erh_event event = event_with("c", NULL, topic);
    char out[ERH_ROUTING_KEY_MAX + 1];
    size_t len;
    ck_assert_int_eq(erh_routing_render("${topic}", &event, out, &len), ERH_OK);
    ck_assert_uint_eq(len, ERH_ROUTING_KEY_MAX);
    ck_assert_str_eq(out, topic);
}
END_TEST

/* "é" is 2 bytes and "€" 3: a prefix of `pad` ASCII bytes puts a character across byte 255. */
START_TEST(long_key_is_cut_on_a_character_boundary)
{
    for (size_t pad = 240; pad < 260; pad++) {
        char topic[1024];
        memset(topic, 'p', pad);
        topic[pad] = '\0';
        strcat(topic, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xE2\x82\xAC\xC3\xA9xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        erh_event event = event_with("c", NULL, topic);
        char out[ERH_ROUTING_KEY_MAX + 1];
        size_t len;
        ck_assert_int_eq(erh_routing_render("k.${topic}", &event, out, &len), ERH_ERR_TOO_LONG);
        ck_assert_uint_le(len, ERH_ROUTING_KEY_MAX);
        ck_assert_uint_ge(len, ERH_ROUTING_KEY_MAX - 3);
        ck_assert_uint_eq(strlen(out), len);
        ck_assert_msg(erh_utf8_valid(out, len), "pad %zu: cut inside a character", pad);
        ck_assert(memcmp(out, "k.", 2) == 0 && memcmp(out + 2, topic, len - 2) == 0);
    }
}
END_TEST

START_TEST(pieces_after_the_cut_are_dropped)
{
    char clientid[300];
    memset(clientid, 'c', sizeof clientid - 1);
    clientid[sizeof clientid - 1] = '\0';
    erh_event event = event_with(clientid, "u", "t");
    char out[ERH_ROUTING_KEY_MAX + 1];
    size_t len;
    ck_assert_int_eq(erh_routing_render("${clientid}.tail.${username}", &event, out, &len), ERH_ERR_TOO_LONG);
    ck_assert_uint_eq(len, ERH_ROUTING_KEY_MAX);
    ck_assert(strspn(out, "c") == ERH_ROUTING_KEY_MAX);
}
END_TEST

static const struct {
    const char *template_str;
    bool valid;
} templates[] = {
    {"client.connected", true},
    {"", true},
    {"$", true},
    {"a$b{c}", true},
    {"${clientid}.${username}.${topic}", true},
    {"${", false},
    {"x.${clientid", false},
    {"${}", false},
    {"${node}", false},
    {"${ClientId}", false},
    {"${topic}.${payload}", false},
    {"${ clientid}", false},
    {"$${clientid}", true},
};

START_TEST(validates_templates)
{
    ck_assert_msg(erh_routing_template_valid(templates[_i].template_str) == templates[_i].valid, "template \"%s\"",
                  templates[_i].template_str);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_loop_test(tc, renders_placeholders, 0, sizeof renders / sizeof renders[0]);
    tcase_add_test(tc, absent_values_render_empty);
    tcase_add_test(tc, clientid_slashes_are_kept);
    tcase_add_test(tc, key_of_exactly_the_limit_is_whole);
    tcase_add_test(tc, long_key_is_cut_on_a_character_boundary);
    tcase_add_test(tc, pieces_after_the_cut_are_dropped);
    tcase_add_loop_test(tc, validates_templates, 0, sizeof templates / sizeof templates[0]);
}

int main(void)
{
    return check_run("routing", add_tests);
}
