/* This node's view of its clients, one entry per client id: the newest connection this node has
 * seen, live, or ended with a disconnect that Redis may not have applied yet. It is what the presence
 * thread writes back when the registry may have missed some of this node's events (queue overflow,
 * liveness expired, Redis restarted empty). Updated on every connected/disconnected event at submit
 * time, so it holds where the events lead even when the queue had to drop some of them. An ended
 * entry goes once its disconnect is applied: the table holds this node's live connections plus
 * the ends still on their way.
 *
 * A fixed array of buckets (no resize, so no operation ever pauses a scheduler to rehash), chained,
 * indexed by a seeded FNV-1a hash of the client id: the seed is random per instance, so clients
 * cannot aim their ids at one chain. Not locked: the owner serialises access. */
#ifndef ERH_PRESENCE_TABLE_H
#define ERH_PRESENCE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "erh_event.h"

typedef struct erh_presence_conn {
    struct erh_presence_conn *next; /* in its bucket */
    uint64_t hash;
    int64_t connected_at;
    int64_t disconnected_at; /* when ended */
    uint64_t seq;            /* of the connect event */
    bool ended;
    erh_bytes clientid;
    erh_bytes conn_id;
    erh_bytes ipaddress;
    erh_bytes username; /* data == NULL when the client gave none */
    char storage[];
} erh_presence_conn;

typedef struct erh_presence_table {
    erh_presence_conn **buckets;
    size_t n_buckets; /* a power of two */
    size_t count;     /* entries */
    size_t live;      /* entries not ended */
    uint64_t seed;
} erh_presence_table;

/* n_buckets is rounded up to a power of two. */
erh_status erh_presence_table_init(erh_presence_table *table, size_t n_buckets, uint64_t seed);
/* Free every connection and the buckets; safe on a zeroed table. */
void erh_presence_table_free(erh_presence_table *table);

/* A connected event (with its seq): it becomes the client's entry unless the one there is newer (a
 * later connected_at, or the same millisecond and a greater seq). */
erh_status erh_presence_table_connect(erh_presence_table *table, const erh_event *event);

/* A disconnected event: when it names the client's entry, the entry ends (and stays until
 * erh_presence_table_forget). Returns the seq of that connection's connect, or 0 when the event
 * names another connection. */
uint64_t erh_presence_table_disconnect(erh_presence_table *table, const erh_event *event);

/* Redis has applied the disconnect of conn_id: drop the client's entry if it is that connection,
 * ended. */
void erh_presence_table_forget(erh_presence_table *table, erh_bytes clientid, erh_bytes conn_id);

/* Has the client a live connection in the table? */
bool erh_presence_table_is_live(const erh_presence_table *table, erh_bytes clientid);

/* Copies of the entries in the buckets from *cursor on, as events (a NULL-terminated list in *out):
 * a connected event for a live entry, a disconnected one for an ended entry. Whole buckets at a time,
 * until at least max are copied or the table ends; *cursor moves past the buckets copied and equals
 * n_buckets at the end. */
erh_status erh_presence_table_copy(const erh_presence_table *table, size_t *cursor, size_t max, erh_event **out);

#endif
