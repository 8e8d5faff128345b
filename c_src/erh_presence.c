#include "erh_presence.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "erh_nif_terms.h"
#include "erh_publisher.h"
#include "erh_scripts.h"
#include "erh_thread.h"

/* Longest sleep in poll(): short enough to notice a stop deadline. */
#define MAX_IDLE_MS 1000
/* Table buckets: fixed, so no insert ever rehashes on a scheduler thread. 2 MB of pointers; chains
 * stay short up to millions of connections per node. */
#define TABLE_BUCKETS (1u << 18)
/* Connections of dead boots one tick clears; more wait for the next tick, run at once. */
#define SWEEP_LIMIT 1000

/* ---- messages to the owner process ---- */

static void notify(erh_presence *p, ERL_NIF_TERM info)
{
    ErlNifEnv *env = p->msg_env;
    enif_send(NULL, &p->owner, env, enif_make_tuple3(env, p->atoms.tag, p->atoms.presence, info));
    enif_clear_env(env);
}

static ERL_NIF_TERM server_term(erh_presence *p)
{
    return erh_server_term(p->msg_env, &p->config->redis_server);
}

static void notify_link(erh_presence *p, ERL_NIF_TERM what)
{
    notify(p, enif_make_tuple3(p->msg_env, what, server_term(p), erh_text_term(p->msg_env, p->redis.errstr)));
}

/* ---- submit side ---- */

void erh_presence_submit(erh_presence *p, const erh_event *proto)
{
    erh_event *event = erh_event_new(proto);
    erh_status st = event ? ERH_OK : ERH_ERR_NOMEM;
    pthread_mutex_lock(&p->lock);
    if (p->closed)
        st = ERH_ERR_CLOSED;
    if (st == ERH_OK) {
        uint64_t seq = ++p->last_seq;
        if (event->type == ERH_EV_CONNECTED) {
            event->seq = seq;
            st = erh_presence_table_connect(&p->table, event);
        } else {
            /* The registry orders same-millisecond connections by the seq of their connect. */
            event->seq = erh_presence_table_disconnect(&p->table, event);
        }
    }
    if (st == ERH_OK)
        st = erh_queue_push(&p->queue, event);
    pthread_mutex_unlock(&p->lock);
    if (st == ERH_OK) {
        erh_stats_add(p->stats, ERH_C_PRESENCE_QUEUED, 1);
        return;
    }
    erh_event_free(event);
    if (st == ERH_ERR_CLOSED)
        return;
    erh_stats_add(p->stats, ERH_C_PRESENCE_DROPPED, 1);
    atomic_fetch_add(&p->resync_requests, 1);
}

/* ---- running scripts ---- */

/* Count what one update's reply says. */
static void count_reply(erh_presence *p, const redisReply *reply, bool from_queue)
{
    if (erh_redis_is_error(reply)) {
        erh_stats_add(p->stats, ERH_C_PRESENCE_ERRORS, 1);
        notify(p, enif_make_tuple2(p->msg_env, p->atoms.redis_error, erh_text_term(p->msg_env, reply->str)));
    } else if (!from_queue) {
        erh_stats_add(p->stats, ERH_C_PRESENCE_REWRITTEN, 1);
    } else {
        erh_stats_add(p->stats, ERH_C_PRESENCE_APPLIED, 1);
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
            erh_stats_add(p->stats, ERH_C_PRESENCE_IGNORED, 1);
    }
}

static erh_status reload_script(erh_presence *p)
{
    erh_stats_add(p->stats, ERH_C_REDIS_SCRIPT_RELOADS, 1);
    return erh_redis_load(&p->redis, &p->script);
}

/* Updates Redis has applied (or refused for good): the ended connections they name leave the table. */
static void finish(erh_presence *p, erh_event *done)
{
    pthread_mutex_lock(&p->lock);
    for (erh_event *event = done; event; event = event->next)
        if (event->type == ERH_EV_DISCONNECTED)
            erh_presence_table_forget(&p->table, event->field[ERH_F_CLIENTID], event->field[ERH_F_CONN_ID]);
    pthread_mutex_unlock(&p->lock);
    erh_event_list_free(done);
}

/* One pipeline: send every update of the list, then read the replies in order. Updates done are
 * taken from the front of the list. From the first NOSCRIPT or transient error on, the rest stay
 * to be sent again: the script is reloaded (its SHA does not change), or the connection is dropped
 * to retry after a backoff. Sending an update twice is harmless: each is idempotent. */
static erh_status pipeline(erh_presence *p, erh_event **list, bool from_queue, size_t *done)
{
    size_t sent = 0;
    uint64_t first_number = p->write_number + 1;
    erh_status st = ERH_OK;
    for (erh_event *event = *list; event && st == ERH_OK; event = event->next) {
        st = erh_presence_cmd_update(&p->cmd, p->script.sha, &p->node, event, ++p->write_number);
        if (st == ERH_OK)
            st = erh_redis_append(&p->redis, p->cmd.argc, p->cmd.argv, p->cmd.lens);
        sent += st == ERH_OK;
    }
    if (st == ERH_OK)
        st = erh_redis_flush(&p->redis);
    if (st != ERH_OK)
        return st;
    redisReply *stopper = NULL; /* the reply after which the rest is sent again */
    erh_event *finished = NULL, **finished_tail = &finished;
    *done = 0;
    for (size_t i = 0; i < sent && st == ERH_OK; i++) {
        redisReply *reply;
        st = erh_redis_read(&p->redis, &reply);
        if (st != ERH_OK)
            break;
        if (!stopper && (erh_redis_is_noscript(reply) || erh_redis_is_transient(reply))) {
            stopper = reply;
            continue;
        }
        if (!stopper) {
            count_reply(p, reply, from_queue);
            if (!erh_redis_is_error(reply))
                p->acknowledged = first_number + i;
            erh_event *event = *list;
            *list = event->next;
            event->next = NULL;
            *finished_tail = event;
            finished_tail = &event->next;
            (*done)++;
            if (from_queue)
                atomic_fetch_sub(&p->pending_count, 1);
        }
        erh_redis_free_reply(reply);
    }
    finish(p, finished);
    if (from_queue && *done < sent)
        erh_stats_add(p->stats, ERH_C_PRESENCE_RETRIED, sent - *done);
    if (st == ERH_OK && stopper)
        st = erh_redis_is_noscript(stopper) ? reload_script(p) : erh_redis_give_up(&p->redis, "update", stopper);
    erh_redis_free_reply(stopper);
    return st;
}

/* Apply the whole list, a pipeline at a time. Two pipelines in a row that get nowhere (NOSCRIPT
 * right after loading the script) give up the connection. */
static erh_status run_updates(erh_presence *p, erh_event **list, bool from_queue)
{
    int stalls = 0;
    while (*list) {
        size_t done = 0;
        erh_status st = pipeline(p, list, from_queue, &done);
        if (st != ERH_OK)
            return st;
        stalls = done ? 0 : stalls + 1;
        if (stalls > 1) {
            snprintf(p->redis.errstr, sizeof p->redis.errstr, "the write script keeps failing to load");
            erh_redis_close(&p->redis);
            return ERH_ERR_PROTOCOL;
        }
    }
    return ERH_OK;
}

/* Run the command in p->cmd; on NOSCRIPT load the script and run it once more. The reply must be
 * an array of n elements (free it with erh_redis_free_reply). */
static erh_status call_script(erh_presence *p, const char *what, size_t n, redisReply **out)
{
    for (int attempt = 0;; attempt++) {
        redisReply *reply;
        erh_status st = erh_redis_call(&p->redis, p->cmd.argc, p->cmd.argv, p->cmd.lens, &reply);
        if (st != ERH_OK)
            return st;
        if (attempt == 0 && erh_redis_is_noscript(reply)) {
            erh_redis_free_reply(reply);
            st = reload_script(p);
            if (st != ERH_OK)
                return st;
            continue;
        }
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == n) {
            *out = reply;
            return ERH_OK;
        }
        st = erh_redis_give_up(&p->redis, what, reply);
        erh_redis_free_reply(reply);
        return st;
    }
}

static long long element_int(const redisReply *reply, size_t i)
{
    const redisReply *e = reply->element[i];
    return e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
}

/* ---- tick and resync ---- */

static erh_status tick(erh_presence *p)
{
    redisReply *reply = NULL;
    erh_status st = erh_presence_cmd_tick(&p->cmd, p->script.sha, &p->node, SWEEP_LIMIT, p->acknowledged);
    if (st == ERH_OK)
        st = call_script(p, "tick", 4, &reply);
    if (st != ERH_OK)
        return st;
    bool held = element_int(reply, 0) == 1, lost = element_int(reply, 3) == 1;
    /* The key expired or names another boot although this boot set it: other nodes may have marked
     * this node's connections offline meanwhile. Or Redis lacks writes it had acknowledged. */
    if ((p->held && !held) || lost)
        atomic_fetch_add(&p->resync_requests, 1);
    /* With the key still there, only a Redis gone back in time explains it: worth a warning. */
    if (lost && held) {
        erh_stats_add(p->stats, ERH_C_PRESENCE_LOST_WRITES, 1);
        notify(p, enif_make_tuple2(p->msg_env, p->atoms.lost_writes, server_term(p)));
    }
    p->held = true;
    p->sweep_more = element_int(reply, 1) == 1;
    erh_stats_add(p->stats, ERH_C_PRESENCE_SWEPT, (uint64_t)element_int(reply, 2));
    p->next_tick_ms = erh_monotonic_ms() + p->config->presence_node_ttl_ms / 3;
    erh_redis_free_reply(reply);
    return ERH_OK;
}

/* End, in Redis, the connections of this page of the boot's set that the table does not have live.
 * The table is asked as the page comes: a client that connects meanwhile is live in it already. */
static erh_status end_stale(erh_presence *p, const redisReply *ids)
{
    size_t sent = 0;
    uint64_t first_number = p->write_number + 1;
    for (size_t i = 0; i < ids->elements; i++) {
        const redisReply *id = ids->element[i];
        if (id->type != REDIS_REPLY_STRING)
            continue;
        erh_bytes clientid = {id->str, id->len};
        pthread_mutex_lock(&p->lock);
        bool live = erh_presence_table_is_live(&p->table, clientid);
        pthread_mutex_unlock(&p->lock);
        if (live)
            continue;
        erh_status st = erh_presence_cmd_gone(&p->cmd, p->script.sha, &p->node, clientid, ++p->write_number);
        if (st == ERH_OK)
            st = erh_redis_append(&p->redis, p->cmd.argc, p->cmd.argv, p->cmd.lens);
        if (st != ERH_OK)
            return st;
        sent++;
    }
    erh_status st = sent ? erh_redis_flush(&p->redis) : ERH_OK;
    /* A NOSCRIPT or a transient error drops the connection: the resync runs again after it. */
    for (size_t i = 0; i < sent && st == ERH_OK; i++) {
        redisReply *reply;
        if ((st = erh_redis_read(&p->redis, &reply)) != ERH_OK)
            break;
        if (erh_redis_is_noscript(reply) || erh_redis_is_transient(reply)) {
            st = erh_redis_give_up(&p->redis, "ending a connection", reply);
        } else if (erh_redis_is_error(reply)) {
            count_reply(p, reply, false);
        } else {
            p->acknowledged = first_number + i;
            if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
                erh_stats_add(p->stats, ERH_C_PRESENCE_REWRITTEN, 1);
        }
        erh_redis_free_reply(reply);
    }
    return st;
}

static bool is_scan_page(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
           reply->element[0]->type == REDIS_REPLY_STRING && reply->element[0]->len < 32 &&
           reply->element[1]->type == REDIS_REPLY_ARRAY;
}

/* Redis may hold connections of this boot live that the table no longer has (their disconnects
 * were lost with writes Redis had acknowledged): scan the boot's set and end those. */
static erh_status clear_stale(erh_presence *p)
{
    char cursor[32] = "0";
    do {
        if (erh_monotonic_ms() >= p->next_tick_ms) {
            erh_status st = tick(p);
            if (st != ERH_OK)
                return st;
        }
        redisReply *page;
        erh_status st = erh_presence_cmd_scan(&p->cmd, &p->node, (erh_bytes){cursor, strlen(cursor)},
                                              p->config->presence_batch);
        if (st == ERH_OK)
            st = erh_redis_call(&p->redis, p->cmd.argc, p->cmd.argv, p->cmd.lens, &page);
        if (st != ERH_OK)
            return st;
        if (!is_scan_page(page)) {
            st = erh_redis_give_up(&p->redis, "SSCAN", page);
            erh_redis_free_reply(page);
            return st;
        }
        memcpy(cursor, page->element[0]->str, page->element[0]->len);
        cursor[page->element[0]->len] = '\0';
        st = end_stale(p, page->element[1]);
        erh_redis_free_reply(page);
        if (st != ERH_OK)
            return st;
    } while (strcmp(cursor, "0") != 0);
    return ERH_OK;
}

/* Write the whole table again: a connect for each live connection, a disconnect for each ended one
 * not yet applied; then end the connections Redis has live for this boot and the table does not.
 * What is queued is skipped: the table already holds where those updates lead. Submits go on
 * meanwhile: the table is copied a few buckets at a time, and what changes after a bucket was
 * copied is in the queue, applied after. */
static erh_status resync(erh_presence *p)
{
    erh_stats_add(p->stats, ERH_C_PRESENCE_RESYNCS, 1);
    size_t taken;
    size_t skipped = erh_event_list_free(p->pending) + erh_event_list_free(erh_queue_pop(&p->queue, SIZE_MAX, &taken));
    p->pending = NULL;
    atomic_store(&p->pending_count, 0);
    erh_stats_add(p->stats, ERH_C_PRESENCE_SUPERSEDED, skipped);
    erh_status st = ERH_OK;
    size_t cursor = 0;
    while (st == ERH_OK && cursor < p->table.n_buckets) {
        /* A large table takes a while: keep the liveness key fresh, or other nodes would sweep
         * this node's connections and ask for another resync. */
        if (erh_monotonic_ms() >= p->next_tick_ms && (st = tick(p)) != ERH_OK)
            break;
        erh_event *copies;
        pthread_mutex_lock(&p->lock);
        st = erh_presence_table_copy(&p->table, &cursor, p->config->presence_batch, &copies);
        pthread_mutex_unlock(&p->lock);
        if (st == ERH_OK)
            st = run_updates(p, &copies, false);
        erh_event_list_free(copies);
    }
    return st == ERH_OK ? clear_stale(p) : st;
}

/* Updates from the queue, one batch at a time. */
static erh_status apply_queue(erh_presence *p)
{
    if (!p->pending) {
        size_t taken;
        p->pending = erh_queue_pop(&p->queue, p->config->presence_batch, &taken);
        atomic_fetch_add(&p->pending_count, taken);
    }
    return p->pending ? run_updates(p, &p->pending, true) : ERH_OK;
}

/* Never wait for Redis past the stop deadline, not even to connect. */
static unsigned timeout_ms(erh_presence *p)
{
    unsigned timeout = p->config->presence_timeout_ms;
    if (atomic_load(&p->stopping)) {
        int64_t left = atomic_load(&p->stop_deadline_ms) - erh_monotonic_ms();
        timeout = left < 1 ? 1 : left < timeout ? (unsigned)left : timeout;
    }
    return timeout;
}

static erh_status work(erh_presence *p)
{
    erh_status st = ERH_OK;
    p->redis.timeout_ms = timeout_ms(p);
    if (p->sweep_more || erh_monotonic_ms() >= p->next_tick_ms)
        st = tick(p);
    /* Requests made while a resync runs are not covered by it: they stay for another one. */
    unsigned requests = atomic_load(&p->resync_requests);
    if (st == ERH_OK && requests) {
        st = resync(p);
        if (st == ERH_OK)
            atomic_compare_exchange_strong(&p->resync_requests, &requests, 0);
    }
    if (st == ERH_OK)
        st = apply_queue(p);
    return st;
}

/* ---- the connection ---- */

static bool try_connect(erh_presence *p)
{
    erh_status st = erh_redis_connect(&p->redis, p->config, timeout_ms(p));
    if (st == ERH_OK)
        st = erh_redis_load(&p->redis, &p->script);
    if (st != ERH_OK) {
        erh_stats_add(p->stats, ERH_C_REDIS_CONNECT_FAILURES, 1);
        notify_link(p, p->atoms.connect_failed);
        return false;
    }
    if (p->ever_connected)
        erh_stats_add(p->stats, ERH_C_REDIS_RECONNECTS, 1);
    p->ever_connected = true;
    erh_backoff_reset(&p->backoff);
    p->next_tick_ms = 0; /* liveness first, before any update */
    atomic_store(&p->link_state, ERH_LINK_CONNECTED);
    notify(p, enif_make_tuple2(p->msg_env, p->atoms.connected, server_term(p)));
    return true;
}

static void lose_connection(erh_presence *p)
{
    if (!p->redis.errstr[0])
        snprintf(p->redis.errstr, sizeof p->redis.errstr, "connection closed");
    notify_link(p, p->atoms.disconnected);
    erh_redis_close(&p->redis);
    atomic_store(&p->link_state, ERH_LINK_CONNECTING);
}

/* ---- the thread ---- */

static bool should_exit(erh_presence *p)
{
    if (!atomic_load(&p->stopping))
        return false;
    return erh_presence_depth(p) == 0 || erh_monotonic_ms() >= atomic_load(&p->stop_deadline_ms);
}

/* Sleep until an event is pushed or stop wakes us, for at most timeout_ms. The Redis socket is
 * watched too: it turns readable only when Redis closes the connection, which is then noticed at
 * once rather than at the next write. */
static void sleep_ms(erh_presence *p, int64_t timeout_ms)
{
    if (atomic_load(&p->stopping)) {
        int64_t left = atomic_load(&p->stop_deadline_ms) - erh_monotonic_ms();
        timeout_ms = left < timeout_ms ? (left > 0 ? left : 0) : timeout_ms;
    }
    struct pollfd fds[2] = {{.fd = p->queue.wake_fd, .events = POLLIN},
                            {.fd = erh_redis_fd(&p->redis), .events = POLLIN}};
    if (poll(fds, fds[1].fd >= 0 ? 2 : 1, (int)timeout_ms) > 0 && fds[1].fd >= 0 && fds[1].revents) {
        erh_redis_lost_idle(&p->redis);
        lose_connection(p);
    }
    erh_queue_clear_wake(&p->queue);
}

static bool has_work(erh_presence *p)
{
    return p->pending || p->sweep_more || atomic_load(&p->resync_requests) || !erh_queue_prepare_sleep(&p->queue);
}

static void *presence_main(void *arg)
{
    erh_presence *p = arg;
    erh_thread_run_in_background();
    while (!should_exit(p)) {
        if (!erh_redis_connected(&p->redis) && !try_connect(p)) {
            sleep_ms(p, erh_backoff_next(&p->backoff));
            continue;
        }
        if (work(p) != ERH_OK) {
            /* Wait before connecting again: Redis may be loading its data or busy for a while. */
            lose_connection(p);
            sleep_ms(p, erh_backoff_next(&p->backoff));
            continue;
        }
        if (!has_work(p)) {
            int64_t until_tick = p->next_tick_ms - erh_monotonic_ms();
            sleep_ms(p, until_tick < 0 ? 0 : until_tick < MAX_IDLE_MS ? until_tick : MAX_IDLE_MS);
        }
    }
    erh_redis_close(&p->redis);
    atomic_store(&p->link_state, ERH_LINK_STOPPED);
    return NULL;
}

/* ---- life cycle ---- */

static bool same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The same keys in the same Redis: what one instance wrote, the next one finds. */
static bool same_registry(const erh_config *a, const erh_config *b)
{
    return same_text(a->redis_server.host, b->redis_server.host) && a->redis_server.port == b->redis_server.port &&
           a->redis_db == b->redis_db && same_text(a->redis_key_prefix, b->redis_key_prefix);
}

/* Move the table, and the seq that goes with it, under the lock of the stopped object: stats/1 may
 * read its table meanwhile. */
static void move_table(erh_presence *to, erh_presence *from, pthread_mutex_t *lock)
{
    pthread_mutex_lock(lock);
    to->table = from->table;
    from->table = (erh_presence_table){0};
    to->last_seq = from->last_seq;
    pthread_mutex_unlock(lock);
}

/* Go on where from (stopped and joined, of the same boot) ended. Its table holds where every
 * event it took leads, so when it left some unapplied, or the registry is another one, a resync
 * writes the table. The write numbers go on, and what Redis acknowledged carries over unless the
 * registry is another one. held carries over: a first tick that finds the liveness key gone after the
 * switch then resyncs as well, since other nodes may have swept this boot's connections. */
static void continue_from(erh_presence *p, erh_presence *from)
{
    move_table(p, from, &from->lock);
    p->held = from->held;
    p->write_number = from->write_number;
    bool same = same_registry(p->config, from->config);
    /* Another registry has acknowledged nothing of this boot. */
    p->acknowledged = same ? from->acknowledged : 0;
    if (from->pending || erh_queue_count(&from->queue) > 0 || atomic_load(&from->resync_requests) > 0 || !same)
        atomic_store(&p->resync_requests, 1);
}

erh_status erh_presence_start(erh_presence **out, const erh_config *config, erh_stats *stats,
                              const erh_presence_atoms *atoms, const ErlNifPid *owner, uint64_t boot_id, uint64_t seed,
                              erh_presence *from)
{
    erh_presence *p = calloc(1, sizeof *p);
    *out = p;
    if (!p)
        return ERH_ERR_NOMEM;
    p->config = config;
    p->stats = stats;
    p->atoms = *atoms;
    p->owner = *owner;
    p->node = (erh_presence_node){
        .prefix = {config->redis_key_prefix, strlen(config->redis_key_prefix)},
        .node = {config->node, strlen(config->node)},
        .node_ttl_ms = config->presence_node_ttl_ms,
        .tombstone_ttl_ms = config->presence_tombstone_ttl_ms,
    };
    erh_presence_node_set_boot(&p->node, boot_id);
    p->script.text = erh_script_presence_write;
    erh_backoff_init(&p->backoff, config->reconnect_min_ms, config->reconnect_max_ms, (unsigned)seed);
    erh_status st = erh_presence_reader_init(&p->reader, config);
    if (st != ERH_OK)
        return st;
    if (pthread_mutex_init(&p->lock, NULL) != 0)
        return ERH_ERR_SYSTEM;
    p->lock_ready = true;
    st = from ? ERH_OK : erh_presence_table_init(&p->table, TABLE_BUCKETS, seed);
    if (st == ERH_OK)
        st = erh_queue_init(&p->queue, config->presence_buffer_events, 0);
    if (st != ERH_OK)
        return st;
    p->msg_env = enif_alloc_env();
    if (!p->msg_env)
        return ERH_ERR_NOMEM;
    if (from)
        continue_from(p, from);
    if (enif_thread_create("erh_presence", &p->tid, presence_main, p, NULL) != 0) {
        if (from)
            move_table(from, p, &from->lock); /* the boot goes on from there, not here */
        return ERH_ERR_SYSTEM;
    }
    p->thread_started = true;
    return ERH_OK;
}

void erh_presence_stop(erh_presence *p, int64_t deadline_ms)
{
    if (!p || !p->lock_ready)
        return;
    pthread_mutex_lock(&p->lock);
    p->closed = true;
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->stop_deadline_ms, deadline_ms);
    atomic_store(&p->stopping, true);
    erh_queue_wake(&p->queue);
}

void erh_presence_join(erh_presence *p)
{
    if (!p || !p->thread_started)
        return;
    erh_queue_wake(&p->queue);
    enif_thread_join(p->tid, NULL);
    p->thread_started = false;
    erh_stats_add(p->stats, ERH_C_PRESENCE_UNDELIVERED, erh_presence_depth(p));
}

void erh_presence_destroy(erh_presence *p)
{
    if (!p)
        return;
    if (p->thread_started) {
        erh_presence_stop(p, erh_monotonic_ms());
        erh_presence_join(p);
    }
    erh_event_list_free(p->pending);
    erh_queue_destroy(&p->queue);
    erh_presence_table_free(&p->table);
    erh_redis_close(&p->redis);
    erh_cmd_free(&p->cmd);
    erh_presence_reader_destroy(&p->reader);
    if (p->msg_env)
        enif_free_env(p->msg_env);
    if (p->lock_ready)
        pthread_mutex_destroy(&p->lock);
    free(p);
}

size_t erh_presence_depth(erh_presence *p)
{
    size_t depth = erh_queue_count(&p->queue) + atomic_load(&p->pending_count);
    if (atomic_load(&p->resync_requests)) {
        pthread_mutex_lock(&p->lock);
        depth += p->table.count;
        pthread_mutex_unlock(&p->lock);
    }
    return depth;
}

size_t erh_presence_connections(erh_presence *p)
{
    pthread_mutex_lock(&p->lock);
    size_t count = p->table.live;
    pthread_mutex_unlock(&p->lock);
    return count;
}
