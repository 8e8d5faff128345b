#include "erh_publisher.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "erh_json.h"
#include "erh_nif_terms.h"
#include "erh_routing.h"
#include "erh_thread.h"

/* Longest sleep in poll(): short enough to send heartbeats on time, to sync the spool on its
 * interval and to notice a stop deadline. */
#define MAX_IDLE_MS 1000
/* While RabbitMQ is away, the memory queue moves to the spool this often (and whenever it reaches
 * its high-water mark): in batches, so a hook call never pays for waking the publisher. */
#define SPILL_EVERY_MS 100
/* After a failed spool read (I/O error, out of memory), reading waits this long before a retry;
 * newer events wait too, as the spool's are older. */
#define SPOOL_READ_RETRY_MS 1000
/* Events taken from the memory queue at a time to write to the spool: one lock per batch. */
#define SPILL_BATCH 256
/* While a write waits for room in the socket, it looks again this often: poll() says a socket is
 * writable long before it has room for a large message. */
#define ROOM_RECHECK_MS 10
/* Segments are a fraction of the spool's bound, so a released segment frees room soon. */
#define SEGMENT_MAX_BYTES (64u << 20)
#define SEGMENTS_PER_SPOOL 8
#define SEGMENT_MIN_BYTES 4096

/* ---- messages to the owner process ---- */

static void notify(erh_publisher *p, ERL_NIF_TERM info)
{
    ErlNifEnv *env = p->msg_env;
    ERL_NIF_TERM msg = enif_make_tuple3(env, p->shared->atoms.tag, enif_make_uint(env, p->index), info);
    enif_send(NULL, &p->shared->owner, env, msg);
    enif_clear_env(env);
}

static ERL_NIF_TERM server_term(erh_publisher *p, unsigned server)
{
    return erh_server_term(p->msg_env, &p->shared->config->servers[server]);
}

/* {What, Server, Reason}: the connection to a server failed or was lost, in the connection's words. */
static void notify_link(erh_publisher *p, ERL_NIF_TERM what, unsigned server)
{
    notify(p, enif_make_tuple3(p->msg_env, what, server_term(p, server), erh_text_term(p->msg_env, p->amqp.errstr)));
}

/* A spool operation failed: counted, and reported with the spool's own words. */
static void spool_failed(erh_publisher *p)
{
    erh_stats_add(p->shared->stats, ERH_C_SPOOL_ERRORS, 1);
    notify(p, enif_make_tuple2(p->msg_env, p->shared->atoms.spool_failed, erh_text_term(p->msg_env, p->spool.errstr)));
}

/* ---- lists of events ---- */

static void list_append(erh_event **head, erh_event **tail, erh_event *event)
{
    event->next = NULL;
    if (*tail)
        (*tail)->next = event;
    else
        *head = event;
    *tail = event;
}

/* Put list, in order and as never sent, in front of the ready list: it is sent again first. A
 * basic.return seen for an earlier send says nothing about the next one, which may be routed: only
 * a return of that send may take the event to the unroutable queue. */
static void ready_prepend(erh_publisher *p, erh_event *list)
{
    erh_event *tail = NULL;
    for (erh_event *event = list; event; event = event->next) {
        event->delivery_tag = 0;
        event->returned = false;
        tail = event;
    }
    if (!tail)
        return;
    tail->next = p->ready_head;
    if (!p->ready_head)
        p->ready_tail = tail;
    p->ready_head = list;
}

static void window_to_ready(erh_publisher *p)
{
    erh_stats_add(p->shared->stats, ERH_C_RETRIED, p->inflight_count);
    ready_prepend(p, p->inflight_head);
    p->inflight_head = p->inflight_tail = NULL;
    p->inflight_count = 0;
}

/* ---- the spool ---- */

static erh_spool_pos spool_pos(const erh_event *event)
{
    return (erh_spool_pos){event->spool_segment, event->spool_offset};
}

static void publish_gauges(erh_publisher *p)
{
    atomic_store(&p->spool_bytes, p->spool.bytes);
    atomic_store(&p->spool_events, p->spool_open ? erh_spool_pending(&p->spool) : 0);
}

/* Records the spool cut as torn or corrupt, when it opened or since, while reading them back. */
static void count_cuts(erh_publisher *p)
{
    erh_stats_add(p->shared->stats, ERH_C_SPOOL_CORRUPT, p->spool.cut);
    p->spool.cut = 0;
}

erh_spool_options erh_publisher_spool_options(const erh_config *config)
{
    uint64_t max_bytes = config->spool_max_bytes / config->publishers;
    uint64_t segment_bytes = max_bytes / SEGMENTS_PER_SPOOL;
    segment_bytes = segment_bytes > SEGMENT_MAX_BYTES   ? SEGMENT_MAX_BYTES
                    : segment_bytes < SEGMENT_MIN_BYTES ? SEGMENT_MIN_BYTES
                                                        : segment_bytes;
    return (erh_spool_options){.max_bytes = max_bytes, .segment_bytes = segment_bytes, .sync = config->spool_sync,
                               .sync_interval_ms = config->spool_sync_interval_ms};
}

static void open_spool(erh_publisher *p)
{
    if (!p->spool_open)
        return;
    erh_spool_options options = erh_publisher_spool_options(p->shared->config);
    erh_status st = erh_spool_open(&p->spool, &options);
    count_cuts(p);
    if (st != ERH_OK) {
        spool_failed(p);
        erh_spool_close(&p->spool, NULL);
        p->spool_open = false;
    }
    publish_gauges(p);
}

/* An append that did not go through: a full spool is not tried again until something changes (see
 * spool_full), any other failure is reported. */
static bool spool_refused(erh_publisher *p, erh_status st)
{
    if (st == ERH_OK)
        return false;
    p->spool_full = st == ERH_ERR_FULL;
    if (!p->spool_full)
        spool_failed(p);
    return true;
}

/* Write the events of list that have no copy in the spool as already taken: they stay where they
 * are, and a confirm releases their copy. */
static bool spool_taken(erh_publisher *p, erh_event *list)
{
    for (erh_event *event = list; event; event = event->next) {
        if (event->in_spool)
            continue;
        erh_spool_pos pos;
        if (spool_refused(p, erh_spool_append(&p->spool, event, true, &pos)))
            return false;
        event->in_spool = true;
        event->spool_segment = pos.segment;
        event->spool_offset = pos.offset;
        erh_stats_add(p->shared->stats, ERH_C_SPOOLED, 1);
    }
    return true;
}

/* Move the memory queue to the spool, oldest first, keeping order: window and ready list get their
 * copies first. Stops, leaving the rest in memory, when the spool is full. */
static void spill(erh_publisher *p)
{
    if (!p->spool_open || p->spool_full || !spool_taken(p, p->inflight_head) || !spool_taken(p, p->ready_head))
        return;
    size_t taken;
    for (erh_event *batch; (batch = erh_queue_pop(&p->queue, SPILL_BATCH, &taken));) {
        for (erh_event *event = batch; event; event = batch) {
            erh_spool_pos pos;
            if (spool_refused(p, erh_spool_append(&p->spool, event, false, &pos))) {
                erh_queue_push_front(&p->queue, batch);
                return;
            }
            batch = event->next;
            event->next = NULL;
            erh_event_free(event);
            erh_stats_add(p->shared->stats, ERH_C_SPOOLED, 1);
        }
    }
}

static bool spool_unread(const erh_publisher *p)
{
    return p->spool_open && p->spool.unread > 0;
}

static bool spool_read_waits(const erh_publisher *p)
{
    return spool_unread(p) && erh_monotonic_ms() < p->spool_read_retry_ms;
}

/* ---- confirms ---- */

/* Detach the events a confirm names: all up to tag when multiple, else the one with tag. */
static erh_event *take_confirmed(erh_publisher *p, uint64_t tag, bool multiple, size_t *count)
{
    erh_event *taken_head = NULL, *taken_tail = NULL;
    erh_event **link = &p->inflight_head;
    erh_event *prev = NULL;
    *count = 0;
    while (*link && (*link)->delivery_tag <= tag) {
        erh_event *event = *link;
        if (multiple || event->delivery_tag == tag) {
            *link = event->next;
            if (p->inflight_tail == event)
                p->inflight_tail = prev;
            list_append(&taken_head, &taken_tail, event);
            (*count)++;
        } else {
            prev = event;
            link = &event->next;
        }
    }
    p->inflight_count -= *count;
    return taken_head;
}

/* A returned event's ack means RabbitMQ dropped it: send it on to the unroutable queue, when there
 * is one. Its spool copy, if any, stays until that publish is confirmed. */
static bool send_to_unroutable(erh_publisher *p, erh_event *event)
{
    if (!event->returned || event->dead_letter || !p->shared->config->unroutable_queue[0])
        return false;
    event->returned = false;
    event->dead_letter = true;
    event->delivery_tag = 0;
    list_append(&p->ready_head, &p->ready_tail, event);
    erh_stats_add(p->shared->stats, ERH_C_UNROUTABLE, 1);
    return true;
}

static void on_ack(void *ctx, uint64_t tag, bool multiple)
{
    erh_publisher *p = ctx;
    size_t count, rerouted = 0;
    erh_event *event = take_confirmed(p, tag, multiple, &count);
    while (event) {
        erh_event *next = event->next;
        if (send_to_unroutable(p, event)) {
            rerouted++;
        } else {
            if (event->in_spool)
                erh_spool_release(&p->spool, spool_pos(event));
            erh_event_free(event);
        }
        event = next;
    }
    /* A confirm may free spool room, or take away an event in flight that the spool refused (one
     * larger than its whole bound, say): let spill try again. */
    p->spool_full = false;
    atomic_fetch_sub(&p->pending, count - rerouted);
    erh_stats_add(p->shared->stats, ERH_C_CONFIRMED, count);
}

static void on_nack(void *ctx, uint64_t tag, bool multiple)
{
    erh_publisher *p = ctx;
    size_t count;
    ready_prepend(p, take_confirmed(p, tag, multiple, &count));
    erh_stats_add(p->shared->stats, ERH_C_NACKED, count);
    erh_stats_add(p->shared->stats, ERH_C_RETRIED, count);
}

/* The message id of an event: the same however often it is sent, unique across restarts. */
static size_t message_id(erh_publisher *p, const erh_event *event, char out[256])
{
    int len = snprintf(out, 256, "%.200s-%016" PRIx64 "-%" PRIu64, p->shared->config->node, event->boot_id,
                       event->seq);
    return len > 0 ? (size_t)len : 0;
}

static void on_return(void *ctx, erh_bytes routing_key, erh_bytes returned_id, erh_bytes reply_text)
{
    erh_publisher *p = ctx;
    erh_stats_add(p->shared->stats, ERH_C_RETURNED, 1);
    for (erh_event *event = p->inflight_head; event; event = event->next) {
        char id[256];
        size_t len = message_id(p, event, id);
        if (len == returned_id.len && memcmp(id, returned_id.data, len) == 0) {
            event->returned = true;
            /* Even the unroutable queue refused it: nothing is left to try. */
            if (event->dead_letter)
                erh_stats_add(p->shared->stats, ERH_C_DROPPED, 1);
            break;
        }
    }
    ErlNifEnv *env = p->msg_env;
    notify(p, enif_make_tuple4(env, p->shared->atoms.returned, erh_binary_term(env, routing_key),
                               erh_binary_term(env, returned_id),
                               erh_binary_term(env, reply_text)));
}

/* RabbitMQ stopped reading what this connection publishes (a memory or disk alarm), or goes on. */
static void on_blocked(void *ctx, bool blocked, erh_bytes reason)
{
    erh_publisher *p = ctx;
    ErlNifEnv *env = p->msg_env;
    ERL_NIF_TERM server = server_term(p, atomic_load(&p->current_server));
    atomic_store(&p->link_state, blocked ? ERH_LINK_BLOCKED : ERH_LINK_CONNECTED);
    if (!blocked) {
        notify(p, enif_make_tuple2(env, p->shared->atoms.unblocked, server));
        return;
    }
    erh_stats_add(p->shared->stats, ERH_C_BLOCKED, 1);
    notify(p, enif_make_tuple3(env, p->shared->atoms.blocked, server, erh_binary_term(env, reason)));
}

/* ---- the connection ---- */

/* RabbitMQ takes nothing from this publisher: it is away, or it blocks publishing. Events are
 * then buffered as in an outage. */
static bool broker_away(erh_publisher *p)
{
    return !p->connected || erh_amqp_blocked(&p->amqp);
}

static void lose_connection(erh_publisher *p)
{
    notify_link(p, p->shared->atoms.disconnected, atomic_load(&p->current_server));
    erh_amqp_close(&p->amqp, false);
    p->connected = false;
    atomic_store(&p->link_state, ERH_LINK_CONNECTING);
    window_to_ready(p);
    p->next_connect_ms = erh_monotonic_ms() + erh_backoff_next(&p->backoff);
}

/* Each step of a connection attempt waits at most connect_timeout_ms, and during a stop no longer
 * than the drain has left. */
static unsigned connect_timeout(erh_publisher *p)
{
    erh_shared *shared = p->shared;
    int64_t timeout = shared->config->connect_timeout_ms;
    if (atomic_load(&shared->stopping)) {
        int64_t left = atomic_load(&shared->stop_deadline_ms) - erh_monotonic_ms();
        timeout = left < timeout ? left : timeout;
    }
    return timeout > 1 ? (unsigned)timeout : 1;
}

static void try_connect(erh_publisher *p)
{
    const erh_config *config = p->shared->config;
    unsigned server = p->next_server;
    p->next_server = (p->next_server + 1) % (unsigned)config->n_servers;
    atomic_store(&p->current_server, server);
    erh_status st = erh_amqp_connect(&p->amqp, config, &config->servers[server], connect_timeout(p));
    if (st != ERH_OK) {
        erh_stats_add(p->shared->stats, ERH_C_CONNECT_FAILURES, 1);
        notify_link(p, p->shared->atoms.connect_failed, server);
        p->next_connect_ms = erh_monotonic_ms() + erh_backoff_next(&p->backoff);
        return;
    }
    if (p->ever_connected)
        erh_stats_add(p->shared->stats, ERH_C_RECONNECTS, 1);
    p->ever_connected = true;
    p->connected = true;
    p->next_server = server; /* stay on the server that works */
    erh_backoff_reset(&p->backoff);
    atomic_store(&p->link_state, ERH_LINK_CONNECTED);
    notify(p, enif_make_tuple2(p->msg_env, p->shared->atoms.connected, server_term(p, server)));
}

/* ---- publishing ---- */

static erh_status publish_one(erh_publisher *p, erh_event *event)
{
    const erh_config *config = p->shared->config;
    erh_json_options json_options = {.node = config->node, .force_base64 = config->payload_base64,
                                     .scratch = &p->json_scratch};
    if (erh_json_encode(event, &json_options, &p->json) != ERH_OK)
        return ERH_ERR_ENCODE;

    char routing_key[ERH_ROUTING_KEY_MAX + 1];
    size_t routing_key_len;
    const char *exchange = config->exchange;
    if (event->dead_letter) {
        exchange = ""; /* the default exchange routes by queue name */
        routing_key_len = strlen(config->unroutable_queue);
        memcpy(routing_key, config->unroutable_queue, routing_key_len + 1);
    } else {
        /* A key cut to the AMQP limit is still a valid key: publish with it rather than hold the event. */
        erh_routing_render(config->routing_keys[event->type], event, routing_key, &routing_key_len);
    }
    char id[256];
    erh_amqp_message message = {
        .routing_key = {routing_key, routing_key_len},
        .message_id = {id, message_id(p, event, id)},
        .type = erh_event_name(event->type),
        .timestamp_s = event->timestamp / 1000,
        .clientid = event->field[ERH_F_CLIENTID],
        .node = config->node,
        .body = {p->json.data, p->json.len},
    };
    return erh_amqp_publish(&p->amqp, exchange, &message, &event->delivery_tag);
}

/* Refill the empty ready list, up to max events: from the spool while it has unread events (they
 * are older), else from the memory queue. */
static void take_more(erh_publisher *p, size_t max)
{
    size_t taken = 0;
    if (spool_read_waits(p))
        return;
    if (spool_unread(p)) {
        for (; taken < max; taken++) {
            erh_event *event;
            erh_spool_pos pos;
            if (erh_spool_read(&p->spool, &event, &pos) != ERH_OK) {
                spool_failed(p);
                p->spool_read_retry_ms = erh_monotonic_ms() + SPOOL_READ_RETRY_MS;
                break;
            }
            if (!event)
                break;
            event->in_spool = true;
            event->spool_segment = pos.segment;
            event->spool_offset = pos.offset;
            list_append(&p->ready_head, &p->ready_tail, event);
        }
        count_cuts(p);
        erh_stats_add(p->shared->stats, ERH_C_REPLAYED, taken);
    } else {
        erh_event *batch = erh_queue_pop(&p->queue, max, &taken);
        if (batch) {
            p->spool_full = false; /* the event the spool refused may be among these */
            p->ready_head = batch;
            for (p->ready_tail = batch; p->ready_tail->next; p->ready_tail = p->ready_tail->next)
                ;
        }
    }
    atomic_fetch_add(&p->pending, taken);
}

/* Publish the first ready event and move it to the in-flight list. An event that cannot be encoded
 * (out of memory) stays first and is tried again on the next pass. */
static erh_status publish_event(erh_publisher *p)
{
    erh_event *event = p->ready_head;
    erh_status st = publish_one(p, event);
    if (st == ERH_ERR_ENCODE) {
        erh_stats_add(p->shared->stats, ERH_C_ENCODE_ERRORS, 1);
        notify(p, enif_make_tuple2(p->msg_env, p->shared->atoms.encode_failed,
                                   erh_text_term(p->msg_env, erh_event_name(event->type))));
    }
    if (st != ERH_OK)
        return st;
    erh_stats_add(p->shared->stats, ERH_C_PUBLISHED, 1);
    p->ready_head = event->next;
    if (!p->ready_head)
        p->ready_tail = NULL;
    list_append(&p->inflight_head, &p->inflight_tail, event);
    p->inflight_count++;
    return ERH_OK;
}

/* Publish ready events, taking more as needed, while the window has room and RabbitMQ does not
 * block publishing. A run of more than one message is held and sent in full segments; a lone event
 * goes out at once. ERH_ERR_AGAIN: the socket has no room for the next one now. */
static erh_status fill_window(erh_publisher *p)
{
    size_t window = p->shared->config->confirm_window;
    size_t sent = 0;
    erh_status st = ERH_OK;
    while (st == ERH_OK && p->inflight_count < window && !erh_amqp_blocked(&p->amqp)) {
        if (!p->ready_head)
            take_more(p, window - p->inflight_count);
        if (!p->ready_head)
            break;
        if (++sent == 2)
            erh_amqp_hold(&p->amqp, true);
        st = publish_event(p);
    }
    if (sent >= 2)
        erh_amqp_hold(&p->amqp, false);
    return st;
}

/* Publish what can go, then read confirms, returns and blocks. False when the connection is lost. */
static bool exchange_frames(erh_publisher *p)
{
    const erh_amqp_handler handler = {
        .ack = on_ack, .nack = on_nack, .returned = on_return, .blocked = on_blocked, .ctx = p};
    erh_status st = fill_window(p);
    if (st != ERH_OK && st != ERH_ERR_ENCODE && st != ERH_ERR_AGAIN)
        return false;
    return erh_amqp_service(&p->amqp, &handler) == ERH_OK;
}

/* ---- the thread ---- */

static bool memory_empty(erh_publisher *p)
{
    return erh_queue_count(&p->queue) == 0 && atomic_load(&p->pending) == 0;
}

static bool should_exit(erh_publisher *p)
{
    erh_shared *shared = p->shared;
    if (!atomic_load(&shared->stopping))
        return false;
    bool delivered = memory_empty(p) && (!p->spool_open || erh_spool_pending(&p->spool) == 0);
    return delivered || erh_monotonic_ms() >= atomic_load(&shared->stop_deadline_ms);
}

/* An event could be published at once: connected, not blocked, room in the window and in the socket. */
static bool can_publish(erh_publisher *p)
{
    return !broker_away(p) && !erh_amqp_waiting(&p->amqp) && p->inflight_count < p->shared->config->confirm_window;
}

/* Work that can go on at once, without waiting for the broker or a timer. */
static bool has_work(erh_publisher *p)
{
    if (!can_publish(p))
        return false;
    if (p->ready_head)
        return true;
    /* The memory queue's events are newer than the spool's: they wait while it has unread ones. */
    return spool_unread(p) ? !spool_read_waits(p) : erh_queue_count(&p->queue) > 0;
}

/* Sleep until woken, until the socket has data (when connected), until the next connection attempt
 * or for at most MAX_IDLE_MS (half the heartbeat when shorter); never past the stop deadline. While
 * RabbitMQ takes nothing, wake up to spill; while a write waits for room, to look again. */
static void wait_for_work(erh_publisher *p)
{
    erh_shared *shared = p->shared;
    int64_t now = erh_monotonic_ms();
    int64_t timeout = MAX_IDLE_MS;
    int64_t half_heartbeat = (int64_t)shared->config->heartbeat_s * 500;
    if (p->connected && half_heartbeat > 0 && half_heartbeat < timeout)
        timeout = half_heartbeat;
    if (!p->connected && p->next_connect_ms - now < timeout)
        timeout = p->next_connect_ms - now;
    /* Nothing goes to RabbitMQ meanwhile: spill on time (a spool read waiting to retry comes back
     * within MAX_IDLE_MS). */
    if ((broker_away(p) || spool_read_waits(p)) && p->spool_open && SPILL_EVERY_MS < timeout)
        timeout = SPILL_EVERY_MS;
    if (erh_amqp_waiting(&p->amqp) && ROOM_RECHECK_MS < timeout)
        timeout = ROOM_RECHECK_MS;
    if (atomic_load(&shared->stopping) && atomic_load(&shared->stop_deadline_ms) - now < timeout)
        timeout = atomic_load(&shared->stop_deadline_ms) - now;
    if (timeout <= 0)
        return;
    /* A new event is work when it can be published at once (not behind unread spooled ones). */
    if (can_publish(p) && !spool_unread(p) && !erh_queue_prepare_sleep(&p->queue))
        return;
    struct pollfd fds[2] = {{.fd = p->queue.wake_fd, .events = POLLIN},
                            {.fd = erh_amqp_fd(&p->amqp), .events = POLLIN}};
    poll(fds, p->connected ? 2 : 1, (int)timeout);
    erh_queue_clear_wake(&p->queue);
}

/* The first record the next start must send again: the oldest unconfirmed copy, else the cursor. */
static erh_spool_pos spool_head(erh_publisher *p)
{
    erh_spool_pos head = {p->spool.count ? p->spool.segments[p->spool.read_index].id : 0, p->spool.read_offset};
    erh_event *lists[2] = {p->inflight_head, p->ready_head};
    for (int i = 0; i < 2; i++) {
        for (erh_event *event = lists[i]; event; event = event->next) {
            erh_spool_pos pos = spool_pos(event);
            if (event->in_spool && (pos.segment < head.segment || (pos.segment == head.segment && pos.offset < head.offset)))
                head = pos;
        }
    }
    return head;
}

/* Stop: every unconfirmed event is kept in the spool for the next start; what does not fit is
 * counted as dropped. */
static void finish(erh_publisher *p)
{
    erh_stats *stats = p->shared->stats;
    uint64_t unconfirmed = erh_queue_count(&p->queue) + atomic_load(&p->pending) + (p->spool_open ? p->spool.unread : 0);
    erh_stats_add(stats, ERH_C_UNDELIVERED, unconfirmed);
    p->spool_full = false;
    spill(p);
    size_t left_in_memory = erh_queue_count(&p->queue);
    erh_event *lists[2] = {p->inflight_head, p->ready_head};
    for (int i = 0; i < 2; i++)
        for (erh_event *event = lists[i]; event; event = event->next)
            left_in_memory += !event->in_spool;
    erh_stats_add(stats, ERH_C_DROPPED, left_in_memory);
    if (p->spool_open) {
        erh_spool_pos head = spool_head(p);
        publish_gauges(p);
        if (erh_spool_close(&p->spool, &head) != ERH_OK)
            spool_failed(p);
        p->spool_open = false;
    }
    erh_amqp_close(&p->amqp, p->connected);
    p->connected = false;
    atomic_store(&p->link_state, ERH_LINK_STOPPED);
}

static void *publisher_main(void *arg)
{
    erh_publisher *p = arg;
    size_t high_water = p->queue.high_water;
    erh_thread_run_in_background();
    open_spool(p);
    while (!should_exit(p)) {
        if (!p->connected && erh_monotonic_ms() >= p->next_connect_ms) {
            spill(p); /* connecting may take a while: save what waits first */
            try_connect(p);
        }
        if (p->connected && !exchange_frames(p))
            lose_connection(p);
        if (broker_away(p) || erh_queue_count(&p->queue) >= high_water)
            spill(p);
        if (p->spool_open && erh_spool_tick(&p->spool, erh_monotonic_ms()) != ERH_OK)
            spool_failed(p);
        publish_gauges(p);
        /* After the last confirm of a drain, stop now rather than after an idle wait. */
        if (!has_work(p) && !should_exit(p))
            wait_for_work(p);
    }
    finish(p);
    atomic_store(&p->finished, true);
    return NULL;
}

/* ---- life cycle ---- */

erh_status erh_publisher_init(erh_publisher *p, erh_shared *shared, unsigned index, size_t capacity)
{
    *p = (erh_publisher){.shared = shared, .index = index, .spool = {.lock_fd = -1}};
    erh_amqp_init(&p->amqp);
    erh_backoff_init(&p->backoff, shared->config->reconnect_min_ms, shared->config->reconnect_max_ms,
                     (unsigned)(shared->boot_id ^ index));
    erh_status st = erh_queue_init(&p->queue, capacity, capacity - capacity / 4);
    if (st != ERH_OK)
        return st;
    p->msg_env = enif_alloc_env();
    return p->msg_env ? ERH_OK : ERH_ERR_NOMEM;
}

erh_status erh_publisher_lock_spool(erh_publisher *p, char *errstr, size_t errstr_len)
{
    const erh_config *config = p->shared->config;
    char dir[4096];
    erh_status st = ERH_ERR_TOO_LONG;
    if (snprintf(dir, sizeof dir, "%s/%u", config->spool_dir, p->index) < (int)sizeof dir)
        st = erh_spool_lock(&p->spool, dir);
    else
        snprintf(p->spool.errstr, sizeof p->spool.errstr, "folder name too long");
    p->spool_open = st == ERH_OK;
    if (st != ERH_OK)
        snprintf(errstr, errstr_len, "%s", p->spool.errstr);
    return st;
}

erh_status erh_publisher_start(erh_publisher *p)
{
    char name[32];
    snprintf(name, sizeof name, "erh_publisher_%u", p->index);
    if (enif_thread_create(name, &p->tid, publisher_main, p, NULL) != 0)
        return ERH_ERR_SYSTEM;
    p->thread_started = true;
    return ERH_OK;
}

void erh_publisher_wake(erh_publisher *p)
{
    erh_queue_wake(&p->queue);
}

bool erh_publisher_finished(erh_publisher *p)
{
    return !p->thread_started || atomic_load(&p->finished);
}

void erh_publisher_interrupt(erh_publisher *p)
{
    erh_amqp_interrupt(&p->amqp);
}

void erh_publisher_join(erh_publisher *p)
{
    if (!p->thread_started)
        return;
    erh_queue_wake(&p->queue);
    enif_thread_join(p->tid, NULL);
    p->thread_started = false;
}

void erh_publisher_destroy(erh_publisher *p)
{
    erh_event_list_free(p->ready_head);
    erh_event_list_free(p->inflight_head);
    p->ready_head = p->ready_tail = p->inflight_head = p->inflight_tail = NULL;
    erh_spool_close(&p->spool, NULL); /* only a spool locked by a thread that never ran */
    erh_amqp_destroy(&p->amqp);
    erh_buf_free(&p->json);
    erh_buf_free(&p->json_scratch);
    erh_queue_destroy(&p->queue);
    if (p->msg_env)
        enif_free_env(p->msg_env);
    p->msg_env = NULL;
}

size_t erh_publisher_depth(erh_publisher *p)
{
    return erh_queue_count(&p->queue) + atomic_load(&p->pending);
}
