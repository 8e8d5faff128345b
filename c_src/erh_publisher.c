#include "erh_publisher.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "erh_json.h"
#include "erh_routing.h"

/* Longest sleep in poll(): short enough to send heartbeats on time and to notice a stop deadline. */
#define MAX_IDLE_MS 1000

int64_t erh_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- messages to the owner process ---- */

static ERL_NIF_TERM make_binary(ErlNifEnv *env, const char *data, size_t len)
{
    ERL_NIF_TERM term;
    unsigned char *out = enif_make_new_binary(env, len, &term);
    if (len)
        memcpy(out, data, len);
    return term;
}

static ERL_NIF_TERM make_cstring(ErlNifEnv *env, const char *text)
{
    return make_binary(env, text, strlen(text));
}

static void notify(erh_publisher *p, ERL_NIF_TERM info)
{
    ErlNifEnv *env = p->msg_env;
    ERL_NIF_TERM msg = enif_make_tuple3(env, p->shared->atoms.tag, enif_make_uint(env, p->index), info);
    enif_send(NULL, &p->shared->owner, env, msg);
    enif_clear_env(env);
}

static ERL_NIF_TERM server_term(erh_publisher *p, unsigned server)
{
    char text[300];
    size_t len = erh_server_format(&p->shared->config->servers[server], text, sizeof text);
    return make_binary(p->msg_env, text, len);
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

static size_t list_free(erh_event *event)
{
    size_t n = 0;
    while (event) {
        erh_event *next = event->next;
        erh_event_free(event);
        event = next;
        n++;
    }
    return n;
}

/* Put the whole window in front of the ready list, keeping the order: it is sent again first. */
static void window_to_ready(erh_publisher *p)
{
    if (!p->inflight_head)
        return;
    erh_stats_add(p->shared->stats, ERH_C_RETRIED, p->inflight_count);
    p->inflight_tail->next = p->ready_head;
    if (!p->ready_head)
        p->ready_tail = p->inflight_tail;
    p->ready_head = p->inflight_head;
    p->inflight_head = p->inflight_tail = NULL;
    p->inflight_count = 0;
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
    atomic_fetch_sub(&p->pending, *count);
    return taken_head;
}

static void on_ack(void *ctx, uint64_t tag, bool multiple)
{
    erh_publisher *p = ctx;
    size_t count;
    list_free(take_confirmed(p, tag, multiple, &count));
    erh_stats_add(p->shared->stats, ERH_C_CONFIRMED, count);
}

static void on_nack(void *ctx, uint64_t tag, bool multiple)
{
    erh_publisher *p = ctx;
    size_t count;
    erh_event *event = take_confirmed(p, tag, multiple, &count);
    erh_stats_add(p->shared->stats, ERH_C_NACKED, count);
    erh_stats_add(p->shared->stats, ERH_C_RETRIED, count);
    atomic_fetch_add(&p->pending, count);
    while (event) {
        erh_event *next = event->next;
        event->delivery_tag = 0;
        list_append(&p->ready_head, &p->ready_tail, event);
        event = next;
    }
}

static void on_return(void *ctx, erh_bytes routing_key, erh_bytes message_id, erh_bytes reply_text)
{
    erh_publisher *p = ctx;
    erh_stats_add(p->shared->stats, ERH_C_RETURNED, 1);
    ErlNifEnv *env = p->msg_env;
    notify(p, enif_make_tuple4(env, p->shared->atoms.returned, make_binary(env, routing_key.data, routing_key.len),
                               make_binary(env, message_id.data, message_id.len),
                               make_binary(env, reply_text.data, reply_text.len)));
}

/* ---- the connection ---- */

static void lose_connection(erh_publisher *p)
{
    ErlNifEnv *env = p->msg_env;
    notify(p, enif_make_tuple3(env, p->shared->atoms.disconnected, server_term(p, atomic_load(&p->current_server)),
                               make_cstring(env, p->amqp.errstr)));
    erh_amqp_close(&p->amqp, false);
    p->connected = false;
    atomic_store(&p->link_state, ERH_LINK_CONNECTING);
    window_to_ready(p);
}

/* Full jitter: a random delay in [backoff/2, backoff], so many nodes do not reconnect in step. */
static unsigned next_delay(erh_publisher *p)
{
    const erh_config *config = p->shared->config;
    unsigned delay = p->backoff_ms / 2 + (unsigned)rand_r(&p->rng) % (p->backoff_ms / 2 + 1);
    p->backoff_ms = p->backoff_ms > config->reconnect_max_ms / 2 ? config->reconnect_max_ms : p->backoff_ms * 2;
    return delay;
}

static bool try_connect(erh_publisher *p)
{
    const erh_config *config = p->shared->config;
    unsigned server = p->next_server;
    p->next_server = (p->next_server + 1) % (unsigned)config->n_servers;
    atomic_store(&p->current_server, server);
    erh_status st = erh_amqp_connect(&p->amqp, config, &config->servers[server]);
    ErlNifEnv *env = p->msg_env;
    if (st != ERH_OK) {
        erh_stats_add(p->shared->stats, ERH_C_CONNECT_FAILURES, 1);
        notify(p, enif_make_tuple3(env, p->shared->atoms.connect_failed, server_term(p, server),
                                   make_cstring(env, p->amqp.errstr)));
        return false;
    }
    if (p->ever_connected)
        erh_stats_add(p->shared->stats, ERH_C_RECONNECTS, 1);
    p->ever_connected = true;
    p->connected = true;
    p->next_server = server; /* stay on the server that works */
    p->backoff_ms = config->reconnect_min_ms;
    atomic_store(&p->link_state, ERH_LINK_CONNECTED);
    notify(p, enif_make_tuple2(env, p->shared->atoms.connected, server_term(p, server)));
    return true;
}

/* ---- publishing ---- */

static erh_status publish_one(erh_publisher *p, erh_event *event)
{
    const erh_config *config = p->shared->config;
    erh_json_options json_options = {.node = config->node, .force_base64 = config->payload_base64};
    if (erh_json_encode(event, &json_options, &p->json) != ERH_OK)
        return ERH_ERR_ENCODE;

    char routing_key[ERH_ROUTING_KEY_MAX + 1];
    size_t routing_key_len;
    /* A key cut to the AMQP limit is still a valid key: publish with it rather than hold the event. */
    erh_routing_render(config->routing_keys[event->type], event, routing_key, &routing_key_len);

    char message_id[256];
    int id_len = snprintf(message_id, sizeof message_id, "%.200s-%016" PRIx64 "-%" PRIu64, config->node,
                          p->shared->boot_id, event->seq);
    erh_amqp_message message = {
        .routing_key = {routing_key, routing_key_len},
        .message_id = {message_id, (size_t)id_len},
        .type = erh_event_name(event->type),
        .timestamp_s = event->timestamp / 1000,
        .clientid = event->field[ERH_F_CLIENTID],
        .node = config->node,
        .body = {p->json.data, p->json.len},
    };
    return erh_amqp_publish(&p->amqp, config->exchange, &message, &event->delivery_tag);
}

/* Publish ready events, then queued ones, while the window has room. */
static erh_status fill_window(erh_publisher *p)
{
    size_t window = p->shared->config->confirm_window;
    while (p->inflight_count < window) {
        if (!p->ready_head) {
            size_t taken;
            erh_event *batch = erh_queue_pop(&p->queue, window - p->inflight_count, &taken);
            if (!batch)
                return ERH_OK;
            atomic_fetch_add(&p->pending, taken);
            p->ready_head = batch;
            for (p->ready_tail = batch; p->ready_tail->next; p->ready_tail = p->ready_tail->next)
                ;
        }
        erh_event *event = p->ready_head;
        erh_status st = publish_one(p, event);
        if (st == ERH_ERR_ENCODE) {
            erh_stats_add(p->shared->stats, ERH_C_ENCODE_ERRORS, 1);
            notify(p, enif_make_tuple2(p->msg_env, p->shared->atoms.encode_failed,
                                       make_cstring(p->msg_env, erh_event_name(event->type))));
        }
        if (st != ERH_OK)
            return st;
        erh_stats_add(p->shared->stats, ERH_C_PUBLISHED, 1);
        p->ready_head = event->next;
        if (!p->ready_head)
            p->ready_tail = NULL;
        list_append(&p->inflight_head, &p->inflight_tail, event);
        p->inflight_count++;
    }
    return ERH_OK;
}

/* ---- the thread ---- */

static bool should_exit(erh_publisher *p)
{
    erh_shared *shared = p->shared;
    if (!atomic_load(&shared->stopping))
        return false;
    return erh_publisher_depth(p) == 0 || erh_monotonic_ms() >= atomic_load(&shared->stop_deadline_ms);
}

/* Sleep until woken, until the socket has data (when connected), or for at most timeout_ms;
 * never past the stop deadline. */
static void wait_for(erh_publisher *p, int64_t timeout_ms)
{
    erh_shared *shared = p->shared;
    if (atomic_load(&shared->stopping)) {
        int64_t left = atomic_load(&shared->stop_deadline_ms) - erh_monotonic_ms();
        timeout_ms = left < timeout_ms ? (left > 0 ? left : 0) : timeout_ms;
    }
    struct pollfd fds[2] = {{.fd = p->queue.wake_fd, .events = POLLIN},
                            {.fd = erh_amqp_fd(&p->amqp), .events = POLLIN}};
    poll(fds, p->connected ? 2 : 1, (int)timeout_ms);
    erh_queue_clear_wake(&p->queue);
}

static int64_t idle_ms(const erh_config *config)
{
    int64_t half_heartbeat = (int64_t)config->heartbeat_s * 500;
    return half_heartbeat > 0 && half_heartbeat < MAX_IDLE_MS ? half_heartbeat : MAX_IDLE_MS;
}

static void *publisher_main(void *arg)
{
    erh_publisher *p = arg;
    const erh_config *config = p->shared->config;
    const erh_amqp_handler handler = {.ack = on_ack, .nack = on_nack, .returned = on_return, .ctx = p};

    while (!should_exit(p)) {
        if (!p->connected && !try_connect(p)) {
            wait_for(p, next_delay(p));
            continue;
        }
        erh_status st = fill_window(p);
        if (st == ERH_OK || st == ERH_ERR_ENCODE)
            st = erh_amqp_service(&p->amqp, &handler) == ERH_OK ? st : ERH_ERR_SOCKET;
        if (st != ERH_OK && st != ERH_ERR_ENCODE) {
            lose_connection(p);
            continue;
        }
        bool room = p->inflight_count < config->confirm_window;
        if (st == ERH_OK && room && (p->ready_head || !erh_queue_prepare_sleep(&p->queue)))
            continue;
        if (should_exit(p)) /* the last confirm of a drain: stop now, not after an idle wait */
            break;
        wait_for(p, idle_ms(config));
    }

    erh_amqp_close(&p->amqp, p->connected);
    p->connected = false;
    atomic_store(&p->link_state, ERH_LINK_STOPPED);
    return NULL;
}

/* ---- life cycle ---- */

erh_status erh_publisher_init(erh_publisher *p, erh_shared *shared, unsigned index, size_t capacity)
{
    *p = (erh_publisher){.shared = shared, .index = index, .backoff_ms = shared->config->reconnect_min_ms,
                         .rng = (unsigned)(shared->boot_id ^ index)};
    erh_status st = erh_queue_init(&p->queue, capacity);
    if (st != ERH_OK)
        return st;
    p->msg_env = enif_alloc_env();
    return p->msg_env ? ERH_OK : ERH_ERR_NOMEM;
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
    list_free(p->ready_head);
    list_free(p->inflight_head);
    p->ready_head = p->ready_tail = p->inflight_head = p->inflight_tail = NULL;
    erh_amqp_close(&p->amqp, false);
    erh_buf_free(&p->json);
    erh_queue_destroy(&p->queue);
    if (p->msg_env)
        enif_free_env(p->msg_env);
    p->msg_env = NULL;
}

size_t erh_publisher_depth(erh_publisher *p)
{
    return erh_queue_count(&p->queue) + atomic_load(&p->pending);
}
