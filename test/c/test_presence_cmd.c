#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "erh_presence_cmd.h"

#define SHA "0123456789abcdef0123456789abcdef01234567"

static const erh_presence_node node = {
    .prefix = {"mqtt:presence:", 14},
    .node = {"emqx@10.0.0.1", 13},
    .boot = "00000000deadbeef",
    .node_ttl_ms = 30000,
    .tombstone_ttl_ms = 300000,
};

/* Compare the command with the expected arguments, given as (data, len) pairs. */
static void assert_argv(const erh_cmd *cmd, const erh_bytes *expected, int n)
{
    ck_assert_int_eq(cmd->argc, n);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(cmd->lens[i] == expected[i].len, "argument %d: length %zu, expected %zu", i, cmd->lens[i],
                      expected[i].len);
        ck_assert_msg(memcmp(cmd->argv[i], expected[i].data, expected[i].len) == 0, "argument %d differs", i);
    }
}

#define S(text) {text, sizeof(text) - 1}

START_TEST(connected_event_command)
{
    erh_event event = {.type = ERH_EV_CONNECTED, .connected_at = 1700000000001, .seq = 17};
    event.field[ERH_F_CLIENTID] = (erh_bytes)S("dev-1");
    event.field[ERH_F_CONN_ID] = (erh_bytes)S("emqx@10.0.0.1/<0.99.0>/1700000000001");
    event.field[ERH_F_IPADDRESS] = (erh_bytes)S("192.168.7.21");
    event.field[ERH_F_USERNAME] = (erh_bytes)S("alice");
    erh_cmd cmd = {0};
    ck_assert_int_eq(erh_presence_cmd_update(&cmd, SHA, &node, &event, 42), ERH_OK);
    const erh_bytes expected[] = {
        S("EVALSHA"), S(SHA), S("6"),
        S("mqtt:presence:client:dev-1"), S("mqtt:presence:online"),
        S("mqtt:presence:tombstone:emqx@10.0.0.1/<0.99.0>/1700000000001"),
        S("mqtt:presence:boot:00000000deadbeef"), S("mqtt:presence:boots"), S("mqtt:presence:marks"),
        S("connected"), S("dev-1"), S("emqx@10.0.0.1/<0.99.0>/1700000000001"), S("emqx@10.0.0.1"),
        S("00000000deadbeef"), S("1700000000001"), S("17"), S("0"), S("192.168.7.21"), S("alice"), S("1"),
        S("300000"), S("mqtt:presence:"), S("42"),
    };
    assert_argv(&cmd, expected, sizeof expected / sizeof expected[0]);
    erh_cmd_free(&cmd);
}
END_TEST

/* Any bytes in a client id: NUL, non-UTF-8, spaces, ':' and '{'; no username, no address. */
START_TEST(disconnected_event_with_odd_bytes)
{
    static const char id[] = {'a', 0, ' ', ':', '{', (char)0xff, '}'};
    erh_event event = {.type = ERH_EV_DISCONNECTED, .connected_at = 5, .disconnected_at = 9, .seq = 0};
    event.field[ERH_F_CLIENTID] = (erh_bytes){id, sizeof id};
    event.field[ERH_F_CONN_ID] = (erh_bytes)S("n/<0.1.0>/5");
    erh_cmd cmd = {0};
    ck_assert_int_eq(erh_presence_cmd_update(&cmd, SHA, &node, &event, 1), ERH_OK);
    char key[14 + 7 + sizeof id];
    memcpy(key, "mqtt:presence:client:", 21);
    memcpy(key + 21, id, sizeof id);
    ck_assert_uint_eq(cmd.lens[3], sizeof key);
    ck_assert_int_eq(memcmp(cmd.argv[3], key, sizeof key), 0);
    ck_assert_uint_eq(cmd.lens[10], sizeof id);
    ck_assert_int_eq(memcmp(cmd.argv[10], id, sizeof id), 0);
    const erh_bytes tail[] = {S("disconnected"), {id, sizeof id}, S("n/<0.1.0>/5"), S("emqx@10.0.0.1"),
                              S("00000000deadbeef"), S("5"), S("0"), S("9"), S(""), S(""), S("0")};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++) {
        ck_assert_uint_eq(cmd.lens[9 + i], tail[i].len);
        ck_assert_int_eq(memcmp(cmd.argv[9 + i], tail[i].data, tail[i].len), 0);
    }
    erh_cmd_free(&cmd);
}
END_TEST

START_TEST(long_client_id)
{
    size_t len = 65535;
    char *id = malloc(len);
    memset(id, 'q', len);
    erh_event event = {.type = ERH_EV_CONNECTED};
    event.field[ERH_F_CLIENTID] = (erh_bytes){id, len};
    event.field[ERH_F_CONN_ID] = (erh_bytes)S("c");
    erh_cmd cmd = {0};
    ck_assert_int_eq(erh_presence_cmd_update(&cmd, SHA, &node, &event, 1), ERH_OK);
    ck_assert_uint_eq(cmd.lens[3], 21 + len);
    ck_assert_uint_eq(cmd.lens[10], len);
    ck_assert_int_eq(memcmp(cmd.argv[10], id, len), 0);
    erh_cmd_free(&cmd);
    free(id);
}
END_TEST

START_TEST(tick_gone_scan_and_read_commands)
{
    erh_cmd cmd = {0};
    ck_assert_int_eq(erh_presence_cmd_tick(&cmd, SHA, &node, 1000, 18446744073709551ULL), ERH_OK);
    const erh_bytes tick[] = {S("EVALSHA"), S(SHA), S("4"), S("mqtt:presence:node:emqx@10.0.0.1"),
                              S("mqtt:presence:boots"), S("mqtt:presence:online"), S("mqtt:presence:marks"),
                              S("tick"), S("emqx@10.0.0.1"), S("00000000deadbeef"), S("30000"), S("1000"),
                              S("mqtt:presence:"), S("18446744073709551")};
    assert_argv(&cmd, tick, sizeof tick / sizeof tick[0]);

    ck_assert_int_eq(erh_presence_cmd_gone(&cmd, SHA, &node, (erh_bytes)S("dev 1"), 7), ERH_OK);
    const erh_bytes gone[] = {S("EVALSHA"), S(SHA), S("3"), S("mqtt:presence:online"),
                              S("mqtt:presence:boot:00000000deadbeef"), S("mqtt:presence:marks"), S("gone"),
                              S("dev 1"), S("00000000deadbeef"), S("mqtt:presence:"), S("7")};
    assert_argv(&cmd, gone, sizeof gone / sizeof gone[0]);

    ck_assert_int_eq(erh_presence_cmd_scan(&cmd, &node, (erh_bytes)S("0"), 256), ERH_OK);
    const erh_bytes scan[] = {S("SSCAN"), S("mqtt:presence:boot:00000000deadbeef"), S("0"), S("COUNT"), S("256")};
    assert_argv(&cmd, scan, sizeof scan / sizeof scan[0]);

    /* The same erh_cmd is reused: each build starts afresh. */
    ck_assert_int_eq(erh_presence_cmd_read(&cmd, SHA, (erh_bytes)S("p:"), (erh_bytes)S("dev 1")), ERH_OK);
    const erh_bytes read[] = {S("EVALSHA"), S(SHA), S("1"), S("p:client:dev 1"), S("p:")};
    assert_argv(&cmd, read, sizeof read / sizeof read[0]);
    erh_cmd_free(&cmd);
}
END_TEST

START_TEST(boot_ids_are_sixteen_hex_digits)
{
    erh_presence_node n = {0};
    erh_presence_node_set_boot(&n, 0x1234);
    ck_assert_str_eq(n.boot, "0000000000001234");
    erh_presence_node_set_boot(&n, UINT64_MAX);
    ck_assert_str_eq(n.boot, "ffffffffffffffff");
}
END_TEST

START_TEST(too_many_arguments_is_an_error)
{
    erh_cmd cmd = {0};
    erh_cmd_start(&cmd);
    for (int i = 0; i < ERH_CMD_MAX_ARGS; i++)
        erh_cmd_i64(&cmd, i);
    ck_assert_int_eq(erh_cmd_finish(&cmd), ERH_OK);
    erh_cmd_str(&cmd, "one too many");
    erh_cmd_key(&cmd, (erh_bytes)S("p"), "k", (erh_bytes)S("v"));
    ck_assert_int_eq(erh_cmd_finish(&cmd), ERH_ERR_TOO_LONG);
    ck_assert_int_eq(cmd.argc, ERH_CMD_MAX_ARGS);
    erh_cmd_free(&cmd);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, connected_event_command);
    tcase_add_test(tc, disconnected_event_with_odd_bytes);
    tcase_add_test(tc, long_client_id);
    tcase_add_test(tc, tick_gone_scan_and_read_commands);
    tcase_add_test(tc, boot_ids_are_sixteen_hex_digits);
    tcase_add_test(tc, too_many_arguments_is_an_error);
}

int main(void)
{
    return check_run("presence_cmd", add_tests);
}
