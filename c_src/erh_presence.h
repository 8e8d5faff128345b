/* The presence registry's writer: one thread with its own Redis connection that applies this node's
 * connected/disconnected events to the registry in Redis (priv/presence_write.lua, DESIGN §5), in
 * the order they were submitted, pipelined in batches.
 *
 * Submit side (scheduler threads): the event updates the in-memory table (erh_presence_table.h)
 * and is pushed onto a bounded queue, both under one lock, so the queue and the table agree on
 * order. When the queue is full the event is dropped, counted, and the thread resyncs: it skips
 * what is queued and writes the table instead (a connect per live connection, a disconnect per
 * ended one not yet applied), which leads the registry where the skipped updates would have.
 *
 * Thread side: every third of presence_node_ttl_ms a tick refreshes this boot's liveness key and
 * marks the connections of dead boots offline. A tick that finds the key gone or taken after it
 * held it (Redis was away longer than the TTL, or restarted empty) resyncs too, and so does one
 * that finds Redis without a write it had acknowledged (each write is numbered, and Redis keeps the
 * greatest number it ran: a failover to a replica that was behind, or a restart from an older
 * snapshot, goes back). A resync then also ends the connections Redis holds live for this boot
 * that the table does not: their disconnects may be among the lost writes. While Redis is away,
 * updates wait in the queue and clients are never slowed. */
#ifndef ERH_PRESENCE_H
#define ERH_PRESENCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <erl_nif.h>

#include "erh_backoff.h"
#include "erh_config.h"
#include "erh_presence_cmd.h"
#include "erh_presence_read.h"
#include "erh_presence_table.h"
#include "erh_queue.h"
#include "erh_redis.h"
#include "erh_stats.h"

/* Atoms of the messages the thread sends to the owner: {Tag, presence, Info}. */
typedef struct erh_presence_atoms {
    ERL_NIF_TERM tag; /* emqx_rabbitmq_hook_nif */
    ERL_NIF_TERM presence;
    ERL_NIF_TERM connected;
    ERL_NIF_TERM connect_failed;
    ERL_NIF_TERM disconnected;
    ERL_NIF_TERM redis_error;
    ERL_NIF_TERM lost_writes;
} erh_presence_atoms;

typedef struct erh_presence {
    const erh_config *config;
    erh_stats *stats;
    erh_presence_atoms atoms; /* a copy: atoms are global, the library's private data may not be */
    ErlNifPid owner;
    erh_presence_node node;
    erh_presence_reader reader; /* lookups: its own connection and lock */

    /* Submit side, under lock. */
    pthread_mutex_t lock;
    bool lock_ready;
    erh_presence_table table;
    uint64_t last_seq;
    bool closed;
    _Atomic unsigned resync_requests; /* events dropped, or this boot's liveness lapsed, since the last resync */
    erh_queue queue;

    ErlNifTid tid;
    bool thread_started;
    atomic_bool stopping;
    _Atomic int64_t stop_deadline_ms;

    /* Owned by the thread while it runs, by the glue after the join. */
    erh_redis redis;
    erh_redis_script script;
    erh_cmd cmd;
    erh_event *pending; /* taken from the queue, not yet applied, in order */
    int64_t next_tick_ms;
    bool sweep_more; /* dead boots may have connections left to clear */
    bool held;       /* this boot's liveness key has been set */
    uint64_t write_number; /* of the last write sent (the script's mark) */
    uint64_t acknowledged; /* the greatest write number Redis replied to without an error */
    erh_backoff backoff;
    bool ever_connected;
    ErlNifEnv *msg_env;

    /* Read by stats/1 from other threads. */
    _Atomic int link_state; /* erh_link_state */
    _Atomic size_t pending_count;
} erh_presence;

/* Build the presence object and start its thread. boot_id names this instance in Redis; seed
 * keys the table's hash. from, when not NULL, is the presence object of the boot this one
 * continues, stopped and joined: its table of this node's connections moves here, with its seq and
 * whether it held the liveness key, so the registry needs no rewrite; a resync is due only when
 * from left updates unapplied or the registry (Redis server, db, prefix) is another one. On failure
 * *out may hold a half-built object (erh_presence_destroy it) and from keeps its table. */
erh_status erh_presence_start(erh_presence **out, const erh_config *config, erh_stats *stats,
                              const erh_presence_atoms *atoms, const ErlNifPid *owner, uint64_t boot_id, uint64_t seed,
                              erh_presence *from);

/* A connected or disconnected event (proto borrows its bytes): copied, noted in the table, queued.
 * Never blocks on I/O; drops and counts when the queue is full or stop has begun. */
void erh_presence_submit(erh_presence *presence, const erh_event *proto);

/* Refuse new events and let the thread drain until deadline_ms (monotonic), then join it. The
 * updates left are counted as presence_undelivered. Both safe on NULL. */
void erh_presence_stop(erh_presence *presence, int64_t deadline_ms);
void erh_presence_join(erh_presence *presence);
/* Stops (without waiting) and joins if needed, then frees everything. Safe on NULL and half-built. */
void erh_presence_destroy(erh_presence *presence);

/* Updates waiting for Redis: queued, in the thread's hands, or (while a resync is due) the table's
 * entries, which the resync writes. */
size_t erh_presence_depth(erh_presence *presence);
/* Live connections of this node in the table. */
size_t erh_presence_connections(erh_presence *presence);

#endif
