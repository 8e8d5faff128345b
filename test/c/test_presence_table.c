#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erh_presence_table.h"

static erh_bytes bytes(const char *data, size_t len)
{
    return (erh_bytes){data, len};
}

static erh_bytes text(const char *s)
{
    return (erh_bytes){s, s ? strlen(s) : 0};
}

static erh_event connected(erh_bytes clientid, const char *conn_id, int64_t at, uint64_t seq, const char *username)
{
    erh_event event = {.type = ERH_EV_CONNECTED, .connected_at = at, .seq = seq};
    event.field[ERH_F_CLIENTID] = clientid;
    event.field[ERH_F_CONN_ID] = text(conn_id);
    event.field[ERH_F_IPADDRESS] = text("10.0.0.7");
    event.field[ERH_F_USERNAME] = text(username);
    return event;
}

static void connect(erh_presence_table *table, const char *clientid, const char *conn_id, int64_t at, uint64_t seq)
{
    erh_event event = connected(text(clientid), conn_id, at, seq, "user");
    ck_assert_int_eq(erh_presence_table_connect(table, &event), ERH_OK);
}

static uint64_t disconnect_bytes(erh_presence_table *table, erh_bytes clientid, const char *conn_id)
{
    erh_event event = {.type = ERH_EV_DISCONNECTED, .disconnected_at = 777};
    event.field[ERH_F_CLIENTID] = clientid;
    event.field[ERH_F_CONN_ID] = text(conn_id);
    return erh_presence_table_disconnect(table, &event);
}

static uint64_t disconnect(erh_presence_table *table, const char *clientid, const char *conn_id)
{
    return disconnect_bytes(table, text(clientid), conn_id);
}

static void forget(erh_presence_table *table, const char *clientid, const char *conn_id)
{
    erh_presence_table_forget(table, text(clientid), text(conn_id));
}

/* Every entry of the table, copied max at a time: how many copies of each type. */
static void copy_all(erh_presence_table *table, size_t max, size_t *connected, size_t *disconnected)
{
    size_t cursor = 0;
    *connected = *disconnected = 0;
    while (cursor < table->n_buckets) {
        erh_event *list;
        ck_assert_int_eq(erh_presence_table_copy(table, &cursor, max, &list), ERH_OK);
        for (erh_event *event = list; event; event = event->next) {
            ck_assert_ptr_nonnull(event->field[ERH_F_CONN_ID].data);
            if (event->type == ERH_EV_CONNECTED)
                (*connected)++;
            else
                (*disconnected)++;
        }
        erh_event_list_free(list);
    }
}

START_TEST(buckets_round_up_to_a_power_of_two)
{
    erh_presence_table table;
    ck_assert_int_eq(erh_presence_table_init(&table, 1000, 7), ERH_OK);
    ck_assert_uint_eq(table.n_buckets, 1024);
    ck_assert_uint_eq(table.count, 0);
    erh_presence_table_free(&table);
    erh_presence_table_free(&table); /* a freed table is zeroed: freeing again is harmless */
}
END_TEST

START_TEST(disconnect_ends_only_its_own_connection_until_forgotten)
{
    erh_presence_table table;
    erh_presence_table_init(&table, 16, 1);
    connect(&table, "dev-1", "n/<0.1.0>/100", 100, 5);
    ck_assert_uint_eq(disconnect(&table, "dev-1", "n/<0.2.0>/90"), 0);
    ck_assert_uint_eq(disconnect(&table, "dev-2", "n/<0.1.0>/100"), 0);
    ck_assert_uint_eq(table.live, 1);
    forget(&table, "dev-1", "n/<0.1.0>/100"); /* live: not forgotten */
    ck_assert_uint_eq(table.count, 1);
    ck_assert_uint_eq(disconnect(&table, "dev-1", "n/<0.1.0>/100"), 5);
    ck_assert_uint_eq(table.live, 0);
    ck_assert_uint_eq(table.count, 1); /* ended, kept until Redis has the disconnect */
    ck_assert_uint_eq(disconnect(&table, "dev-1", "n/<0.1.0>/100"), 5);
    forget(&table, "dev-1", "n/<0.9.0>/100");
    ck_assert_uint_eq(table.count, 1);
    forget(&table, "dev-1", "n/<0.1.0>/100");
    ck_assert_uint_eq(table.count, 0);
    ck_assert_uint_eq(disconnect(&table, "dev-1", "n/<0.1.0>/100"), 0);
    erh_presence_table_free(&table);
}
END_TEST

START_TEST(a_newer_connect_replaces_an_ended_one)
{
    erh_presence_table table;
    erh_presence_table_init(&table, 16, 1);
    connect(&table, "dev-1", "old", 100, 1);
    disconnect(&table, "dev-1", "old");
    connect(&table, "dev-1", "new", 200, 2);
    ck_assert_uint_eq(table.count, 1);
    ck_assert_uint_eq(table.live, 1);
    forget(&table, "dev-1", "old"); /* the old disconnect applied later: the new one stays */
    ck_assert_uint_eq(table.live, 1);
    ck_assert_uint_eq(table.count, 1);
    erh_presence_table_free(&table);
}
END_TEST

START_TEST(newest_connect_wins)
{
    erh_presence_table table;
    erh_presence_table_init(&table, 16, 1);
    connect(&table, "dev-1", "a", 100, 1);
    connect(&table, "dev-1", "older", 99, 2);       /* an earlier connected_at: ignored */
    connect(&table, "dev-1", "same-ms-lower", 100, 0); /* same ms, lower seq: ignored */
    ck_assert_uint_eq(disconnect(&table, "dev-1", "older"), 0);
    ck_assert_uint_eq(disconnect(&table, "dev-1", "same-ms-lower"), 0);
    connect(&table, "dev-1", "same-ms-higher", 100, 3); /* same ms, higher seq: replaces */
    ck_assert_uint_eq(disconnect(&table, "dev-1", "a"), 0);
    connect(&table, "dev-1", "later", 101, 4);
    ck_assert_uint_eq(table.count, 1);
    ck_assert_uint_eq(table.live, 1);
    ck_assert_uint_eq(disconnect(&table, "dev-1", "same-ms-higher"), 0);
    ck_assert_uint_eq(disconnect(&table, "dev-1", "later"), 4);
    erh_presence_table_free(&table);
}
END_TEST

START_TEST(client_ids_are_bytes)
{
    static const char nul_id[] = {'a', 0, 'b'};
    static const char nul_id2[] = {'a', 0, 'c'};
    static const char latin1[] = {(char)0xe9, ' ', ':', '{', '}', '\n'};
    size_t long_len = 70000;
    char *long_id = malloc(long_len);
    memset(long_id, 'x', long_len);
    erh_presence_table table;
    erh_presence_table_init(&table, 4, 99);
    erh_bytes ids[] = {bytes(nul_id, 3), bytes(nul_id2, 3), bytes(latin1, sizeof latin1), bytes(long_id, long_len),
                       bytes(long_id, long_len - 1), bytes("", 0)};
    size_t n = sizeof ids / sizeof ids[0];
    for (size_t i = 0; i < n; i++) {
        erh_event event = connected(ids[i], "conn", 10, i + 1, NULL);
        ck_assert_int_eq(erh_presence_table_connect(&table, &event), ERH_OK);
    }
    ck_assert_uint_eq(table.count, n);
    size_t cursor = 0;
    erh_event *list;
    ck_assert_int_eq(erh_presence_table_copy(&table, &cursor, 1000, &list), ERH_OK);
    ck_assert_uint_eq(cursor, table.n_buckets);
    size_t seen = 0;
    for (erh_event *event = list; event; event = event->next, seen++) {
        ck_assert_ptr_null(event->field[ERH_F_USERNAME].data); /* absent stays absent */
        ck_assert_uint_eq(event->connected_at, 10);
        erh_bytes id = event->field[ERH_F_CLIENTID];
        ck_assert_uint_eq(memcmp(id.data, ids[event->seq - 1].data, id.len), 0);
        ck_assert_uint_eq(id.len, ids[event->seq - 1].len);
    }
    ck_assert_uint_eq(seen, n);
    erh_event_list_free(list);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(disconnect_bytes(&table, ids[i], "conn"), i + 1);
        erh_presence_table_forget(&table, ids[i], text("conn"));
    }
    ck_assert_uint_eq(table.count, 0);
    erh_presence_table_free(&table);
    free(long_id);
}
END_TEST

START_TEST(copy_visits_every_connection_once)
{
    erh_presence_table table;
    erh_presence_table_init(&table, 64, 12345); /* 64 buckets, 1000 clients: long chains */
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "client-%d", i);
        connect(&table, id, "c", i, (uint64_t)i + 1);
    }
    ck_assert_uint_eq(table.count, 1000);
    size_t connected, disconnected;
    size_t maxes[] = {1, 7, 100000};
    for (size_t m = 0; m < 3; m++) {
        copy_all(&table, maxes[m], &connected, &disconnected);
        ck_assert_uint_eq(connected, 1000);
        ck_assert_uint_eq(disconnected, 0);
    }
    for (int i = 0; i < 1000; i += 2) {
        snprintf(id, sizeof id, "client-%d", i);
        ck_assert_uint_eq(disconnect(&table, id, "c"), (uint64_t)i + 1);
    }
    copy_all(&table, 10, &connected, &disconnected);
    ck_assert_uint_eq(connected, 500);
    ck_assert_uint_eq(disconnected, 500);
    for (int i = 0; i < 1000; i += 4) {
        snprintf(id, sizeof id, "client-%d", i);
        forget(&table, id, "c");
    }
    copy_all(&table, 10, &connected, &disconnected);
    ck_assert_uint_eq(connected, 500);
    ck_assert_uint_eq(disconnected, 250);
    erh_presence_table_free(&table);
}
END_TEST

START_TEST(copies_carry_every_field)
{
    erh_presence_table table;
    erh_presence_table_init(&table, 8, 3);
    erh_event event = connected(text("dev-9"), "n/<0.9.0>/1700000000001", 1700000000001, 42, "alice");
    erh_presence_table_connect(&table, &event);
    size_t cursor = 0;
    erh_event *list;
    ck_assert_int_eq(erh_presence_table_copy(&table, &cursor, 1, &list), ERH_OK);
    while (!list) /* the buckets before dev-9's are empty */
        ck_assert_int_eq(erh_presence_table_copy(&table, &cursor, 1, &list), ERH_OK);
    ck_assert_ptr_null(list->next);
    ck_assert_str_eq(list->field[ERH_F_CLIENTID].data, "dev-9");
    ck_assert_str_eq(list->field[ERH_F_CONN_ID].data, "n/<0.9.0>/1700000000001");
    ck_assert_str_eq(list->field[ERH_F_IPADDRESS].data, "10.0.0.7");
    ck_assert_str_eq(list->field[ERH_F_USERNAME].data, "alice");
    ck_assert_int_eq(list->connected_at, 1700000000001);
    ck_assert_uint_eq(list->seq, 42);
    erh_event_list_free(list);

    /* Ended, it copies as its disconnect. */
    disconnect(&table, "dev-9", "n/<0.9.0>/1700000000001");
    cursor = 0;
    list = NULL;
    while (!list)
        ck_assert_int_eq(erh_presence_table_copy(&table, &cursor, 1, &list), ERH_OK);
    ck_assert_int_eq(list->type, ERH_EV_DISCONNECTED);
    ck_assert_int_eq(list->disconnected_at, 777);
    ck_assert_int_eq(list->connected_at, 1700000000001);
    ck_assert_uint_eq(list->seq, 42);
    ck_assert_str_eq(list->field[ERH_F_USERNAME].data, "alice");
    erh_event_list_free(list);
    erh_presence_table_free(&table);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, buckets_round_up_to_a_power_of_two);
    tcase_add_test(tc, disconnect_ends_only_its_own_connection_until_forgotten);
    tcase_add_test(tc, a_newer_connect_replaces_an_ended_one);
    tcase_add_test(tc, newest_connect_wins);
    tcase_add_test(tc, client_ids_are_bytes);
    tcase_add_test(tc, copy_visits_every_connection_once);
    tcase_add_test(tc, copies_carry_every_field);
}

int main(void)
{
    return check_run("presence_table", add_tests);
}
