/* A publisher thread: takes events from its queue, encodes them, publishes them on its own AMQP
 * connection with confirms in a window, and reconnects (with backoff, server after server) when the
 * connection fails. Events of one client always go to the same publisher, so they stay in order.
 *
 * Where an accepted event lives until RabbitMQ confirms it, oldest first:
 *   window (published, unconfirmed) → ready list (to publish next) → spool (disk) → memory queue.
 * The publisher sends from the ready list, then the spool, then the memory queue. While RabbitMQ is
 * away, or the memory queue passes its high-water mark, the memory queue is moved to the spool;
 * the first such move also writes the window and the ready list to the spool, so from then on
 * every unconfirmed event has a copy on disk, in order, and a stop loses nothing the spool can hold. */
#ifndef ERH_PUBLISHER_H
#define ERH_PUBLISHER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <erl_nif.h>

#include "erh_amqp.h"
#include "erh_backoff.h"
#include "erh_clock.h"
#include "erh_config.h"
#include "erh_queue.h"
#include "erh_spool.h"
#include "erh_stats.h"

/* Atoms of the messages a publisher sends to the owner process; made once in the NIF's load. */
typedef struct erh_publisher_atoms {
    ERL_NIF_TERM tag; /* emqx_rabbitmq_hook_nif */
    ERL_NIF_TERM connected;
    ERL_NIF_TERM connect_failed;
    ERL_NIF_TERM disconnected;
    ERL_NIF_TERM returned;
    ERL_NIF_TERM encode_failed;
    ERL_NIF_TERM spool_failed;
    ERL_NIF_TERM blocked;
    ERL_NIF_TERM unblocked;
} erh_publisher_atoms;

/* What the publishers of one instance share. Read-only while they run, but for the atomics. */
typedef struct erh_shared {
    const erh_config *config;
    erh_stats *stats;
    erh_publisher_atoms atoms; /* a copy: atoms are global, the library's private data may not be */
    ErlNifPid owner;        /* receives {emqx_rabbitmq_hook_nif, Index, Info} */
    uint64_t boot_id;       /* random per start, stamped on each event: message ids stay unique */
    atomic_bool stopping;   /* drain what is left, then exit */
    _Atomic int64_t stop_deadline_ms; /* monotonic: give up draining at this time */
} erh_shared;

typedef enum erh_link_state {
    ERH_LINK_CONNECTING = 0,
    ERH_LINK_CONNECTED = 1,
    ERH_LINK_STOPPED = 2,
    ERH_LINK_BLOCKED = 3, /* connected, and RabbitMQ blocks publishing (connection.blocked) */
} erh_link_state;

typedef struct erh_publisher {
    erh_shared *shared;
    unsigned index;
    erh_queue queue;
    ErlNifTid tid;
    bool thread_started;

    /* Owned by the publisher thread while it runs, by the glue after the join. */
    erh_amqp amqp;
    bool connected;
    erh_event *ready_head; /* taken from the queue, not yet published; retries go in front */
    erh_event *ready_tail;
    erh_event *inflight_head; /* published, not confirmed; in delivery-tag order */
    erh_event *inflight_tail;
    size_t inflight_count;
    erh_buf json;
    erh_buf json_scratch; /* a text field that is not UTF-8, while the encoder sanitizes it */
    ErlNifEnv *msg_env;
    unsigned next_server;
    erh_backoff backoff;
    int64_t next_connect_ms; /* monotonic: the next connection attempt */
    bool ever_connected;
    erh_spool spool;
    bool spool_open;  /* locked at init, opened by the thread; false when disabled or broken */
    bool spool_full;  /* refused an append; tried again once a confirm frees room or the
                       * refused event moves on (confirmed, or taken from the memory queue) */
    int64_t spool_read_retry_ms; /* monotonic: after a failed read, the spool is read again then */

    /* Read by stats/1 from other threads. */
    _Atomic int link_state;
    _Atomic unsigned current_server;
    _Atomic size_t pending; /* in the ready list or the window */
    _Atomic uint64_t spool_bytes;
    _Atomic uint64_t spool_events; /* unconfirmed events in the spool */
    atomic_bool finished;          /* the thread is done with its connection and spool */
} erh_publisher;

erh_status erh_publisher_init(erh_publisher *publisher, erh_shared *shared, unsigned index, size_t capacity);
/* The options of each publisher's spool: its share of spool_max_bytes, cut in segments. */
erh_spool_options erh_publisher_spool_options(const erh_config *config);
/* Create and lock this publisher's spool folder (cheap: the thread reads the segments). On error
 * errstr says why, e.g. that another instance uses the folder. */
erh_status erh_publisher_lock_spool(erh_publisher *publisher, char *errstr, size_t errstr_len);
erh_status erh_publisher_start(erh_publisher *publisher);
/* Make the thread look at shared->stopping now rather than after its current sleep. */
void erh_publisher_wake(erh_publisher *publisher);
/* The thread has finished its work (or never started): a join returns at once. */
bool erh_publisher_finished(erh_publisher *publisher);
/* From any thread: end at once whatever wait the thread is in on its connection's socket; the
 * thread then handles a lost connection. Used by stop when a publisher outlives the drain. */
void erh_publisher_interrupt(erh_publisher *publisher);
/* Wait for the thread to end (after shared->stopping is set); no-op when it never started. */
void erh_publisher_join(erh_publisher *publisher);
/* Free what is left; call only after the join. Safe on a half-built publisher. */
void erh_publisher_destroy(erh_publisher *publisher);

/* Events in this publisher's memory queue, retry list and window. */
size_t erh_publisher_depth(erh_publisher *publisher);

#endif
