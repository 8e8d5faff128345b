/* Presence lookups for emqx_rabbitmq_hook:presence/1: the read script (priv/presence_read.lua) on
 * a Redis connection of their own. Lookups come from dirty I/O schedulers, several at a time, and a
 * hiredis context must not be shared between threads: a mutex lets one lookup at a time use the
 * connection. The presence thread keeps its own connection, so lookups never wait behind updates.
 * While Redis does not answer, a lookup waits at most presence_timeout_ms for the connection and as
 * long again for Redis, and after a failed connection attempt lookups fail at once for
 * reconnect_min_ms: a hung Redis never holds the dirty I/O schedulers one after another. */
#ifndef ERH_PRESENCE_READ_H
#define ERH_PRESENCE_READ_H

#include <pthread.h>
#include <stdbool.h>

#include "erh_config.h"
#include "erh_presence_cmd.h"
#include "erh_redis.h"

typedef struct erh_presence_reader {
    pthread_mutex_t lock;
    bool lock_ready;
    const erh_config *config;
    erh_redis redis;
    erh_redis_script script;
    erh_cmd cmd;
    int64_t retry_at_ms;  /* monotonic: no new connection attempt before this */
    char last_error[256]; /* why the last attempt failed, for the lookups refused until then */
} erh_presence_reader;

erh_status erh_presence_reader_init(erh_presence_reader *reader, const erh_config *config);
/* Safe on a zeroed or half-built reader. */
void erh_presence_reader_destroy(erh_presence_reader *reader);

/* Called for each field, value pair the read script returns. */
typedef void (*erh_presence_pair_fn)(void *ctx, erh_bytes field, erh_bytes value);

/* Run the read script for clientid and hand each pair to fn. Connects (or reconnects once, after a
 * broken connection) as needed; on failure errstr (cap bytes) says why. */
erh_status erh_presence_reader_get(erh_presence_reader *reader, erh_bytes clientid, erh_presence_pair_fn fn,
                                   void *ctx, char *errstr, size_t cap);

#endif
