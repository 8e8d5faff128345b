#include "erh_presence_table.h"

#include <stdlib.h>
#include <string.h>

erh_status erh_presence_table_init(erh_presence_table *table, size_t n_buckets, uint64_t seed)
{
    size_t n = 1;
    while (n < n_buckets)
        n *= 2;
    *table = (erh_presence_table){.n_buckets = n, .seed = seed};
    table->buckets = calloc(n, sizeof *table->buckets);
    return table->buckets ? ERH_OK : ERH_ERR_NOMEM;
}

void erh_presence_table_free(erh_presence_table *table)
{
    for (size_t i = 0; table->buckets && i < table->n_buckets; i++) {
        erh_presence_conn *conn = table->buckets[i];
        while (conn) {
            erh_presence_conn *next = conn->next;
            free(conn);
            conn = next;
        }
    }
    free(table->buckets);
    *table = (erh_presence_table){0};
}

static uint64_t hash_bytes(const erh_presence_table *table, erh_bytes bytes)
{
    uint64_t hash = 14695981039346656037u ^ table->seed;
    for (size_t i = 0; i < bytes.len; i++)
        hash = (hash ^ (unsigned char)bytes.data[i]) * 1099511628211u;
    return hash;
}

static bool same_bytes(erh_bytes a, erh_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* The link that points at the client's connection (or the NULL link at the end of its chain). */
static erh_presence_conn **find(const erh_presence_table *table, erh_bytes clientid, uint64_t hash)
{
    erh_presence_conn **link = &table->buckets[hash & (table->n_buckets - 1)];
    while (*link && !((*link)->hash == hash && same_bytes((*link)->clientid, clientid)))
        link = &(*link)->next;
    return link;
}

/* Copy bytes to *at and advance it; an absent value stays absent. */
static erh_bytes place(char **at, erh_bytes bytes)
{
    if (!bytes.data)
        return bytes;
    erh_bytes copy = {*at, bytes.len};
    if (bytes.len)
        memcpy(*at, bytes.data, bytes.len);
    *at += bytes.len;
    return copy;
}

static erh_presence_conn *conn_new(const erh_event *event, uint64_t hash)
{
    const erh_bytes *f = event->field;
    size_t sizes[] = {f[ERH_F_CLIENTID].len, f[ERH_F_CONN_ID].len, f[ERH_F_IPADDRESS].len, f[ERH_F_USERNAME].len};
    size_t total = sizeof(erh_presence_conn);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (sizes[i] > SIZE_MAX - total)
            return NULL;
        total += sizes[i];
    }
    erh_presence_conn *conn = malloc(total);
    if (!conn)
        return NULL;
    *conn = (erh_presence_conn){.hash = hash, .connected_at = event->connected_at, .seq = event->seq};
    char *at = conn->storage;
    conn->clientid = place(&at, f[ERH_F_CLIENTID]);
    conn->conn_id = place(&at, f[ERH_F_CONN_ID]);
    conn->ipaddress = place(&at, f[ERH_F_IPADDRESS]);
    conn->username = place(&at, f[ERH_F_USERNAME]);
    return conn;
}

erh_status erh_presence_table_connect(erh_presence_table *table, const erh_event *event)
{
    erh_bytes clientid = event->field[ERH_F_CLIENTID];
    uint64_t hash = hash_bytes(table, clientid);
    erh_presence_conn **link = find(table, clientid, hash);
    erh_presence_conn *old = *link;
    if (old && (old->connected_at > event->connected_at ||
                (old->connected_at == event->connected_at && old->seq > event->seq)))
        return ERH_OK;
    erh_presence_conn *conn = conn_new(event, hash);
    if (!conn)
        return ERH_ERR_NOMEM;
    conn->next = old ? old->next : NULL;
    *link = conn;
    table->live++;
    if (old) {
        table->live -= !old->ended;
        free(old);
    } else {
        table->count++;
    }
    return ERH_OK;
}

static erh_presence_conn **find_conn(const erh_presence_table *table, erh_bytes clientid, erh_bytes conn_id)
{
    erh_presence_conn **link = find(table, clientid, hash_bytes(table, clientid));
    return *link && same_bytes((*link)->conn_id, conn_id) ? link : NULL;
}

uint64_t erh_presence_table_disconnect(erh_presence_table *table, const erh_event *event)
{
    erh_presence_conn **link = find_conn(table, event->field[ERH_F_CLIENTID], event->field[ERH_F_CONN_ID]);
    if (!link)
        return 0;
    erh_presence_conn *conn = *link;
    table->live -= !conn->ended;
    conn->ended = true;
    conn->disconnected_at = event->disconnected_at;
    return conn->seq;
}

void erh_presence_table_forget(erh_presence_table *table, erh_bytes clientid, erh_bytes conn_id)
{
    erh_presence_conn **link = find_conn(table, clientid, conn_id);
    if (!link || !(*link)->ended)
        return;
    erh_presence_conn *conn = *link;
    *link = conn->next;
    free(conn);
    table->count--;
}

bool erh_presence_table_is_live(const erh_presence_table *table, erh_bytes clientid)
{
    erh_presence_conn *conn = *find(table, clientid, hash_bytes(table, clientid));
    return conn && !conn->ended;
}

static erh_event *conn_event(const erh_presence_conn *conn)
{
    erh_event proto = {.type = conn->ended ? ERH_EV_DISCONNECTED : ERH_EV_CONNECTED,
                       .connected_at = conn->connected_at,
                       .disconnected_at = conn->disconnected_at,
                       .seq = conn->seq,
                       .timestamp = conn->ended ? conn->disconnected_at : conn->connected_at};
    proto.field[ERH_F_CLIENTID] = conn->clientid;
    proto.field[ERH_F_CONN_ID] = conn->conn_id;
    proto.field[ERH_F_IPADDRESS] = conn->ipaddress;
    proto.field[ERH_F_USERNAME] = conn->username;
    return erh_event_new(&proto);
}

erh_status erh_presence_table_copy(const erh_presence_table *table, size_t *cursor, size_t max, erh_event **out)
{
    erh_event *head = NULL, **tail = &head;
    size_t copied = 0;
    erh_status st = ERH_OK;
    for (; *cursor < table->n_buckets && copied < max && st == ERH_OK; (*cursor)++) {
        for (const erh_presence_conn *conn = table->buckets[*cursor]; conn; conn = conn->next) {
            erh_event *event = conn_event(conn);
            if (!event) {
                st = ERH_ERR_NOMEM;
                break;
            }
            *tail = event;
            tail = &event->next;
            copied++;
        }
    }
    if (st != ERH_OK) {
        erh_event_list_free(head);
        head = NULL;
    }
    *out = head;
    return st;
}
