/* Counters shared by the glue (submit) and the publisher threads: lock-free, relaxed atomics,
 * because each is a tally read as a whole only by stats/1. */
#ifndef ERH_STATS_H
#define ERH_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef enum erh_counter {
    ERH_C_RECEIVED,    /* submit calls with a well-formed event */
    ERH_C_FILTERED,    /* events skipped by configuration (event disabled, topic not matched) */
    ERH_C_QUEUED,      /* events accepted into the memory queue */
    ERH_C_DROPPED,     /* events lost to a full bound: memory queue and spool full, or no room at stop */
    ERH_C_PUBLISHED,   /* basic.publish calls, retries included */
    ERH_C_CONFIRMED,   /* basic.ack received */
    ERH_C_NACKED,      /* basic.nack received (the event is published again) */
    ERH_C_RETURNED,    /* basic.return: no queue was bound for the routing key */
    ERH_C_UNROUTABLE,  /* returned events sent on to the unroutable queue */
    ERH_C_RETRIED,     /* events published again after a nack or a lost connection */
    ERH_C_RECONNECTS,  /* successful connections after the first */
    ERH_C_CONNECT_FAILURES,
    ERH_C_BLOCKED,       /* times RabbitMQ blocked publishing on a connection (connection.blocked) */
    ERH_C_ENCODE_ERRORS, /* events that could not be encoded (logged) */
    ERH_C_UNDELIVERED,   /* events still unconfirmed when stop gave up waiting (kept in the spool) */
    ERH_C_SPOOLED,       /* events written to the disk spool */
    ERH_C_REPLAYED,      /* events read back from the disk spool */
    ERH_C_SPOOL_CORRUPT, /* torn or corrupt spool records cut */
    ERH_C_SPOOL_ERRORS,  /* spool operations that failed (logged) */
    ERH_C_PAYLOADS_OMITTED, /* messages sent without their payload, as it exceeded max_payload_bytes */
    ERH_C_PRESENCE_QUEUED,     /* connected/disconnected events taken for the presence registry */
    ERH_C_PRESENCE_DROPPED,    /* refused because the presence queue was full (each forces a resync) */
    ERH_C_PRESENCE_APPLIED,    /* updates Redis ran */
    ERH_C_PRESENCE_IGNORED,    /* of those, updates that changed nothing (older, ended or repeated) */
    ERH_C_PRESENCE_RETRIED,    /* updates sent again after a lost connection or a NOSCRIPT */
    ERH_C_PRESENCE_ERRORS,     /* updates Redis refused for good (logged, skipped) */
    ERH_C_PRESENCE_RESYNCS,    /* times this node's live connections were written again from memory */
    ERH_C_PRESENCE_REWRITTEN,  /* connections written by those resyncs */
    ERH_C_PRESENCE_SUPERSEDED, /* queued updates skipped because a resync wrote the state they lead to */
    ERH_C_PRESENCE_SWEPT,      /* connections of dead boots (crashed or restarted nodes) marked offline */
    ERH_C_PRESENCE_UNDELIVERED, /* updates not applied when stop gave up waiting */
    ERH_C_PRESENCE_LOST_WRITES, /* times Redis was found without writes it had acknowledged */
    ERH_C_REDIS_RECONNECTS,
    ERH_C_REDIS_CONNECT_FAILURES,
    ERH_C_REDIS_SCRIPT_RELOADS, /* NOSCRIPT answered by loading the script again */
    ERH_C__COUNT
} erh_counter;

typedef struct erh_stats {
    _Atomic uint64_t counter[ERH_C__COUNT];
} erh_stats;

static inline void erh_stats_add(erh_stats *stats, erh_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&stats->counter[c], n, memory_order_relaxed);
}

static inline uint64_t erh_stats_get(const erh_stats *stats, erh_counter c)
{
    return atomic_load_explicit(&stats->counter[c], memory_order_relaxed);
}

/* The key under which stats/1 reports a counter, e.g. "received". */
const char *erh_counter_name(erh_counter c);

#endif
