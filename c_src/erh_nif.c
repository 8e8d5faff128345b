/* NIF glue: the only place where Erlang terms become C data and back.
 *
 * Who owns what:
 * - An instance (the resource behind the handle that start/2 returns) owns its configuration,
 *   its counters and one publisher per configured connection.
 * - submit/2 runs on the caller's scheduler: it checks, filters, copies the event into one record
 *   cut from the instance's arena (erh_arena.h: no page fault) and pushes it onto a publisher's
 *   bounded queue. No I/O, no encoding, no waiting.
 * - Each publisher thread owns its AMQP connection and every event it has taken from its queue.
 * - With presence on, the instance also owns a presence object (erh_presence.h): its thread owns one
 *   Redis connection; submit/2 feeds it connected/disconnected events, whatever `events` says;
 *   presence/2 reads on dirty I/O schedulers through a second connection behind a mutex.
 * - A boot is what a node's message ids and registry entries are made under: a random boot id and
 *   the seq that counts its events. start/2 given a stopped instance (a configuration change)
 *   continues that instance's boot: its boot id, its last seq and, with presence, its table of this
 *   node's connections move to the new instance, once, after the old threads are joined. A plain
 *   start begins a new boot.
 *
 * Shutdown order (stop/2 on a dirty I/O scheduler, or the destructor if stop was never called):
 * 1. refuse new submits to the publishers and wait for the submits already inside to finish pushing;
 * 2. set the drain deadline, tell the publishers to stop and wake them (they drain in parallel, to
 *    the same deadline); the presence thread goes on taking and applying events meanwhile, so a hook
 *    call during a configuration change still reaches the registry;
 * 3. each publisher, before it ends, writes what is still unconfirmed to its spool (counted as
 *    undelivered; what the spool cannot take is counted as dropped), closes the spool and its
 *    connection (politely only when RabbitMQ reads, waiting a second at most);
 * 4. a publisher still busy STOP_GRACE_MS after the deadline has its socket shut down, which ends
 *    any wait on it at once; then each publisher thread started is joined;
 * 5. tell the presence thread to stop (it drains to the same deadline) and join it; from then on the
 *    instance's boot may be continued by a new one;
 * 6. the destructor frees what is left, after the joins, never before. */

#include <erl_nif.h>

#include <arpa/inet.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "erh_clock.h"
#include "erh_config.h"
#include "erh_event.h"
#include "erh_int_text.h"
#include "erh_nif_atoms.h"
#include "erh_nif_config.h"
#include "erh_nif_terms.h"
#include "erh_presence.h"
#include "erh_publisher.h"
#include "erh_spool_regroup.h"
#include "erh_stats.h"

typedef struct erh_priv {
    erh_atoms atoms;
    ERL_NIF_TERM counter_atoms[ERH_C__COUNT];
    ErlNifResourceType *instance_type;
} erh_priv;

typedef struct erh_instance {
    erh_config config;
    erh_stats stats;
    erh_shared shared;
    erh_arena arena; /* the memory of the events submit makes for the publishers */
    erh_publisher *publishers;
    unsigned n_publishers;  /* initialised, so safe to destroy */
    erh_presence *presence; /* NULL when presence is off */
    _Atomic uint64_t last_seq;
    atomic_bool closing;         /* submit refuses new events */
    _Atomic unsigned submitting; /* submits between their closing check and their push */
    atomic_bool stop_begun;
    atomic_bool stopped;   /* every thread joined: the boot may be continued */
    atomic_bool continued; /* a later instance continues this boot */
    char *spool_moved_to;  /* where a later start moved this instance's spooled events, or NULL */
} erh_instance;

void erh_atoms_make(ErlNifEnv *env, erh_atoms *atoms)
{
#define ERH_ATOM_MAKE(name, text) atoms->name = enif_make_atom(env, text);
    ERH_ATOMS(ERH_ATOM_MAKE)
#undef ERH_ATOM_MAKE
}

static ERL_NIF_TERM error_tuple(ErlNifEnv *env, const erh_atoms *atoms, ERL_NIF_TERM reason)
{
    return enif_make_tuple2(env, atoms->error, reason);
}

/* ---- life cycle ---- */

/* After the drain deadline, the time a publisher has to write its spool and close its connection
 * (a polite close waits a second at most) before stop shuts its socket down. */
#define STOP_GRACE_MS 1500
/* How often stop looks whether the publishers are done. */
#define STOP_POLL_MS 5

static bool publishers_finished(erh_instance *inst)
{
    for (unsigned i = 0; i < inst->n_publishers; i++)
        if (!erh_publisher_finished(&inst->publishers[i]))
            return false;
    return true;
}

/* Joining has no timeout: wait for the publishers' own word that they are done, until give_up_ms;
 * then interrupt those still waiting on their socket, which makes them finish at once. */
static void join_publishers(erh_instance *inst, int64_t give_up_ms)
{
    struct timespec pause = {.tv_nsec = STOP_POLL_MS * 1000000L};
    while (!publishers_finished(inst) && erh_monotonic_ms() < give_up_ms)
        nanosleep(&pause, NULL);
    for (unsigned i = 0; i < inst->n_publishers; i++)
        if (!erh_publisher_finished(&inst->publishers[i]))
            erh_publisher_interrupt(&inst->publishers[i]);
    for (unsigned i = 0; i < inst->n_publishers; i++)
        erh_publisher_join(&inst->publishers[i]);
}

static void stop_instance(erh_instance *inst, unsigned timeout_ms)
{
    if (atomic_exchange(&inst->stop_begun, true))
        return;
    atomic_store(&inst->closing, true);
    while (atomic_load(&inst->submitting) > 0)
        sched_yield(); /* a submit holds this for a few instructions only */
    int64_t deadline_ms = erh_monotonic_ms() + timeout_ms;
    atomic_store(&inst->shared.stop_deadline_ms, deadline_ms);
    atomic_store(&inst->shared.stopping, true);
    for (unsigned i = 0; i < inst->n_publishers; i++)
        erh_publisher_wake(&inst->publishers[i]);
    join_publishers(inst, deadline_ms + STOP_GRACE_MS);
    erh_presence_stop(inst->presence, deadline_ms);
    erh_presence_join(inst->presence);
    atomic_store(&inst->stopped, true);
}

static void instance_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    erh_instance *inst = obj;
    stop_instance(inst, 0);
    for (unsigned i = 0; i < inst->n_publishers; i++)
        erh_publisher_destroy(&inst->publishers[i]);
    free(inst->publishers);
    erh_arena_destroy(&inst->arena); /* after the publishers: they held the last events */
    erh_presence_destroy(inst->presence);
    erh_config_free(&inst->config);
    free(inst->spool_moved_to);
}

static uint64_t make_boot_id(void)
{
    uint64_t id;
    if (getrandom(&id, sizeof id, GRND_NONBLOCK) == sizeof id)
        return id;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Before the publishers lock their spool folders: the events spooled under another count of
 * publishers, or by prev (in its spool folder, or where a failed start moved them from it), move to
 * the folders that fit inst's configuration (erh_spool_regroup.h). When some of prev's moved, prev
 * remembers where: if inst cannot start, prev's configuration, started again with prev, takes them
 * back. A regroup that fails does not stop the start: what it did not move stays on disk for the
 * next start to move, and the owner of a start that succeeds is told. */
static erh_status regroup_spool(erh_instance *inst, erh_instance *prev, erh_regroup_result *moved, char *errstr,
                                size_t errstr_len)
{
    *moved = (erh_regroup_result){0};
    if (inst->config.spool_max_bytes == 0)
        return ERH_OK;
    erh_spool_options options = erh_publisher_spool_options(&inst->config);
    const char *previous = !prev ? NULL : prev->spool_moved_to ? prev->spool_moved_to : prev->config.spool_dir;
    erh_status st = erh_spool_regroup(inst->config.spool_dir, previous, inst->config.publishers, &options, moved,
                                      errstr, errstr_len);
    erh_stats_add(&inst->stats, ERH_C_SPOOL_CORRUPT, moved->cut);
    if (moved->previous_moved) {
        free(prev->spool_moved_to);
        prev->spool_moved_to = strdup(inst->config.spool_dir); /* NULL: back to its own folder */
    }
    return st;
}

/* The owner logs what a regroup moved, or why it could not. */
static void report_regroup(ErlNifEnv *env, const erh_atoms *atoms, erh_instance *inst, erh_status st,
                           const erh_regroup_result *moved, int64_t ms, const char *errstr)
{
    ERL_NIF_TERM report;
    if (st != ERH_OK) {
        report = enif_make_tuple2(env, atoms->regroup_failed, erh_text_term(env, errstr));
    } else if (moved->folders > 0) {
        ERL_NIF_TERM info[] = {atoms->regrouped,
                               enif_make_uint64(env, moved->events),
                               enif_make_uint(env, moved->folders),
                               enif_make_uint(env, inst->config.publishers),
                               enif_make_uint64(env, moved->cut),
                               enif_make_int64(env, ms)};
        report = enif_make_tuple_from_array(env, info, sizeof info / sizeof *info);
    } else {
        return;
    }
    enif_send(env, &inst->shared.owner, NULL, enif_make_tuple3(env, atoms->nif_tag, atoms->spool, report));
}

/* Make and start the publishers. On error *bad_key names the setting to blame and errstr why. */
static erh_status start_publishers(erh_instance *inst, const erh_atoms *atoms, ERL_NIF_TERM *bad_key, char *errstr,
                                   size_t errstr_len)
{
    unsigned n = inst->config.publishers;
    size_t capacity = (inst->config.buffer_events + n - 1) / n;
    *bad_key = atoms->publishers;
    erh_status arena_st = erh_arena_init(&inst->arena, n);
    if (arena_st != ERH_OK)
        return arena_st;
    inst->publishers = calloc(n, sizeof(erh_publisher));
    if (!inst->publishers)
        return ERH_ERR_NOMEM;
    for (unsigned i = 0; i < n; i++) {
        erh_status st = erh_publisher_init(&inst->publishers[i], &inst->shared, i, capacity);
        inst->n_publishers++;
        if (st != ERH_OK)
            return st;
        if (inst->config.spool_max_bytes > 0 &&
            (st = erh_publisher_lock_spool(&inst->publishers[i], errstr, errstr_len)) != ERH_OK) {
            *bad_key = atoms->spool_dir;
            return st;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        erh_status st = erh_publisher_start(&inst->publishers[i]);
        if (st != ERH_OK)
            return st;
    }
    return ERH_OK;
}

/* from: the presence object of the boot inst continues, or NULL. */
static erh_status start_presence(ErlNifEnv *env, const erh_atoms *atoms, erh_instance *inst, erh_presence *from)
{
    if (!inst->config.presence)
        return ERH_OK;
    const erh_presence_atoms presence_atoms = {.tag = atoms->nif_tag,
                                               .presence = atoms->presence,
                                               .connected = atoms->connected,
                                               .connect_failed = atoms->connect_failed,
                                               .disconnected = atoms->disconnected,
                                               .redis_error = atoms->redis_error,
                                               .lost_writes = atoms->lost_writes};
    ErlNifPid owner;
    enif_self(env, &owner);
    return erh_presence_start(&inst->presence, &inst->config, &inst->stats, &presence_atoms, &owner,
                              inst->shared.boot_id, make_boot_id(), from);
}

static ERL_NIF_TERM status_atom(const erh_atoms *atoms, erh_status st)
{
    return st == ERH_ERR_NOMEM ? atoms->enomem : st == ERH_ERR_SYSTEM ? atoms->system_limit : atoms->badarg;
}

static void init_shared(ErlNifEnv *env, const erh_atoms *atoms, erh_instance *inst, uint64_t boot_id)
{
    inst->shared = (erh_shared){
        .config = &inst->config,
        .stats = &inst->stats,
        .atoms = {.tag = atoms->nif_tag,
                  .connected = atoms->connected,
                  .connect_failed = atoms->connect_failed,
                  .disconnected = atoms->disconnected,
                  .returned = atoms->returned,
                  .encode_failed = atoms->encode_failed,
                  .spool_failed = atoms->spool_failed,
                  .blocked = atoms->blocked,
                  .unblocked = atoms->unblocked},
        .boot_id = boot_id,
    };
    enif_self(env, &inst->shared.owner);
}

/* The instance a new one may continue: undefined for none, else a handle whose stop has returned. */
static bool get_previous(ErlNifEnv *env, const erh_priv *priv, ERL_NIF_TERM term, erh_instance **out)
{
    *out = NULL;
    if (enif_is_identical(term, priv->atoms.undefined))
        return true;
    return enif_get_resource(env, term, priv->instance_type, (void **)out) && atomic_load(&(*out)->stopped);
}

/* Does an instance with config continue prev's boot? Only under the same node name, which the
 * registry and the conn_ids carry, and not when presence comes on: the registry's entries of this
 * boot from before presence went off would come back as online, though they may have ended. Each
 * boot is continued once: two instances would hand out the same seqs. */
static bool claim_boot(erh_instance *prev, const erh_config *config)
{
    return prev && strcmp(prev->config.node, config->node) == 0 && (prev->config.presence || !config->presence) &&
           !atomic_exchange(&prev->continued, true);
}

/* start(ConfigMap, Previous) -> {ok, Handle} | {error, {Key, Reason}}; Previous is undefined or a
 * stopped instance whose boot the new one continues where it may (claim_boot). */
static ERL_NIF_TERM nif_start(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    const erh_priv *priv = enif_priv_data(env);
    const erh_atoms *atoms = &priv->atoms;
    erh_instance *prev;
    if (!get_previous(env, priv, argv[1], &prev))
        return enif_make_badarg(env);
    erh_instance *inst = enif_alloc_resource(priv->instance_type, sizeof(erh_instance));
    if (!inst)
        return error_tuple(env, atoms, atoms->enomem);
    memset(inst, 0, sizeof *inst);

    ERL_NIF_TERM bad_key;
    erh_status st = erh_nif_read_config(env, atoms, argv[0], &inst->config, &bad_key);
    if (st != ERH_OK) {
        enif_release_resource(inst);
        return error_tuple(env, atoms, enif_make_tuple2(env, bad_key, status_atom(atoms, st)));
    }
    bool continues = claim_boot(prev, &inst->config);
    init_shared(env, atoms, inst, continues ? prev->shared.boot_id : make_boot_id());
    erh_regroup_result moved;
    char regroup_errstr[256] = "";
    int64_t regroup_started_ms = erh_monotonic_ms();
    erh_status regroup_st = regroup_spool(inst, prev, &moved, regroup_errstr, sizeof regroup_errstr);
    int64_t regroup_ms = erh_monotonic_ms() - regroup_started_ms;
    char errstr[256] = "";
    st = start_publishers(inst, atoms, &bad_key, errstr, sizeof errstr);
    if (st == ERH_OK) {
        st = start_presence(env, atoms, inst, continues ? prev->presence : NULL);
        bad_key = atoms->presence;
    }
    /* No submit has reached inst yet: its seq goes on from prev's. A failed start took nothing. */
    if (continues && st == ERH_OK)
        atomic_store(&inst->last_seq, atomic_load(&prev->last_seq));
    else if (continues)
        atomic_store(&prev->continued, false);
    /* A reason in words where there is one (the spool folder's), else the status. */
    ERL_NIF_TERM reason = status_atom(atoms, st);
    if (errstr[0])
        reason = erh_text_term(env, errstr);
    ERL_NIF_TERM result = st == ERH_OK ? enif_make_tuple2(env, atoms->ok, enif_make_resource(env, inst))
                                       : error_tuple(env, atoms, enif_make_tuple2(env, bad_key, reason));
    if (st == ERH_OK) /* else the start's own error says enough, and a revert regroups again */
        report_regroup(env, atoms, inst, regroup_st, &moved, regroup_ms, regroup_errstr);
    enif_release_resource(inst); /* the handle term holds the only reference; the destructor joins */
    return result;
}

/* stop(Handle, TimeoutMs) -> ok, on a dirty I/O scheduler: drains for at most TimeoutMs. */
static ERL_NIF_TERM nif_stop(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    const erh_priv *priv = enif_priv_data(env);
    erh_instance *inst;
    unsigned timeout_ms;
    if (!enif_get_resource(env, argv[0], priv->instance_type, (void **)&inst) ||
        !enif_get_uint(env, argv[1], &timeout_ms))
        return enif_make_badarg(env);
    stop_instance(inst, timeout_ms);
    return priv->atoms.ok;
}

/* ---- submit ---- */

static bool get_bytes(ErlNifEnv *env, ERL_NIF_TERM term, erh_bytes *out)
{
    ErlNifBinary bin;
    if (!enif_inspect_binary(env, term, &bin))
        return false;
    *out = (erh_bytes){(const char *)bin.data, bin.size};
    return true;
}

/* A binary, or the atom undefined for an absent value. */
static bool get_optional_bytes(ErlNifEnv *env, const erh_atoms *atoms, ERL_NIF_TERM term, erh_bytes *out)
{
    if (enif_is_identical(term, atoms->undefined)) {
        *out = (erh_bytes){0};
        return true;
    }
    return get_bytes(env, term, out);
}

static bool get_bool(const erh_atoms *atoms, ERL_NIF_TERM term, bool *out)
{
    *out = enif_is_identical(term, atoms->true_);
    return *out || enif_is_identical(term, atoms->false_);
}

static bool get_i64(ErlNifEnv *env, ERL_NIF_TERM term, int64_t *out)
{
    ErlNifSInt64 value;
    if (!enif_get_int64(env, term, &value))
        return false;
    *out = value;
    return true;
}

static bool get_i32(ErlNifEnv *env, ERL_NIF_TERM term, int32_t *out)
{
    int value;
    if (!enif_get_int(env, term, &value))
        return false;
    *out = value;
    return true;
}

/* inet_ntop writes a dotted quad with sprintf; this is the same text without the format parsing. */
static size_t write_ipv4(const unsigned char addr[4], char *text)
{
    char *at = text;
    for (int i = 0; i < 4; i++) {
        char digits[ERH_INT_TEXT_MAX];
        char *end = digits + sizeof digits, *start = erh_int_text(addr[i], end);
        memcpy(at, start, (size_t)(end - start));
        at += end - start;
        *at++ = i < 3 ? '.' : '\0';
    }
    return (size_t)(at - text - 1);
}

/* EMQX gives peer addresses as inet tuples: {A,B,C,D} or eight 16-bit groups. A binary is taken
 * as already written out; undefined stays absent. */
static bool get_ip(ErlNifEnv *env, const erh_atoms *atoms, ERL_NIF_TERM term, char text[INET6_ADDRSTRLEN],
                   erh_bytes *out)
{
    const ERL_NIF_TERM *parts;
    int arity;
    if (!enif_get_tuple(env, term, &arity, &parts))
        return get_optional_bytes(env, atoms, term, out);
    unsigned char addr[16];
    int width = arity == 4 ? 1 : arity == 8 ? 2 : 0;
    if (!width)
        return false;
    for (int i = 0; i < arity; i++) {
        unsigned part;
        if (!enif_get_uint(env, parts[i], &part) || part >= (width == 1 ? 256u : 65536u))
            return false;
        if (width == 2)
            addr[2 * i] = (unsigned char)(part >> 8);
        addr[width * i + width - 1] = (unsigned char)part;
    }
    if (width == 1) {
        *out = (erh_bytes){text, write_ipv4(addr, text)};
        return true;
    }
    if (!inet_ntop(AF_INET6, addr, text, INET6_ADDRSTRLEN))
        return false;
    *out = (erh_bytes){text, strlen(text)};
    return true;
}

/* Scratch space for the text the glue makes itself before the event copies it. */
typedef struct submit_text {
    char ip[INET6_ADDRSTRLEN];
    char pid[64];
    char conn_id[512];
    char msg_id[129];
} submit_text;

/* The channel pid, written as pid_to_list/1 writes it: "<0.4711.0>". Written here rather than by
 * the hook, which would build a list and a binary on the channel process's heap for it. */
static bool get_pid(ErlNifEnv *env, ERL_NIF_TERM term, submit_text *text, erh_bytes *out)
{
    if (!enif_is_pid(env, term))
        return false;
    int len = enif_snprintf(text->pid, sizeof text->pid, "%T", term);
    if (len <= 0 || len >= (int)sizeof text->pid)
        return false;
    *out = (erh_bytes){text->pid, (size_t)len};
    return true;
}

/* conn_id names one connection: node, channel process and connect time, "Node/Pid/ConnectedAt";
 * cut at the buffer's end. */
static erh_bytes make_conn_id(const erh_instance *inst, erh_bytes pid, int64_t connected_at, submit_text *text)
{
    char digits[ERH_INT_TEXT_MAX];
    char *digits_end = digits + sizeof digits, *number = erh_int_text(connected_at, digits_end);
    const erh_bytes parts[] = {{inst->config.node, strlen(inst->config.node)},
                               {"/", 1},
                               pid,
                               {"/", 1},
                               {number, (size_t)(digits_end - number)}};
    size_t len = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t n = parts[i].len < sizeof text->conn_id - len ? parts[i].len : sizeof text->conn_id - len;
        memcpy(text->conn_id + len, parts[i].data, n);
        len += n;
    }
    return (erh_bytes){text->conn_id, len};
}

/* A number for MQTT; EMQX's gateways give text ("1.2" for MQTT-SN, "1.0.1" for LwM2M). */
static bool get_proto_ver(ErlNifEnv *env, ERL_NIF_TERM term, erh_event *ev)
{
    return get_i32(env, term, &ev->proto_ver) || get_bytes(env, term, &ev->field[ERH_F_PROTO_VER]);
}

/* {connected, ClientId, Username, PeerHost, PeerPort, Keepalive, ProtoName, ProtoVer, CleanStart,
 *  ConnectedAt, Pid} */
static bool decode_connected(ErlNifEnv *env, const erh_atoms *atoms, const erh_instance *inst, const ERL_NIF_TERM *t,
                             int arity, submit_text *text, erh_event *ev)
{
    erh_bytes *f = ev->field, pid;
    if (arity != 11 || !get_bytes(env, t[1], &f[ERH_F_CLIENTID]) ||
        !get_optional_bytes(env, atoms, t[2], &f[ERH_F_USERNAME]) ||
        !get_ip(env, atoms, t[3], text->ip, &f[ERH_F_IPADDRESS]) || !get_i32(env, t[4], &ev->peerport) ||
        !get_i32(env, t[5], &ev->keepalive) || !get_optional_bytes(env, atoms, t[6], &f[ERH_F_PROTO_NAME]) ||
        !get_proto_ver(env, t[7], ev) || !get_bool(atoms, t[8], &ev->clean_start) ||
        !get_i64(env, t[9], &ev->connected_at) || !get_pid(env, t[10], text, &pid))
        return false;
    f[ERH_F_CONN_ID] = make_conn_id(inst, pid, ev->connected_at, text);
    ev->timestamp = ev->connected_at;
    return true;
}

/* {disconnected, ClientId, Username, PeerHost, Reason, ConnectedAt, DisconnectedAt, Pid} */
static bool decode_disconnected(ErlNifEnv *env, const erh_atoms *atoms, const erh_instance *inst, const ERL_NIF_TERM *t,
                                int arity, submit_text *text, erh_event *ev)
{
    erh_bytes *f = ev->field, pid;
    if (arity != 8 || !get_bytes(env, t[1], &f[ERH_F_CLIENTID]) ||
        !get_optional_bytes(env, atoms, t[2], &f[ERH_F_USERNAME]) ||
        !get_ip(env, atoms, t[3], text->ip, &f[ERH_F_IPADDRESS]) || !get_bytes(env, t[4], &f[ERH_F_REASON]) ||
        !get_i64(env, t[5], &ev->connected_at) || !get_i64(env, t[6], &ev->disconnected_at) ||
        !get_pid(env, t[7], text, &pid))
        return false;
    f[ERH_F_CONN_ID] = make_conn_id(inst, pid, ev->connected_at, text);
    ev->timestamp = ev->disconnected_at;
    return true;
}

static erh_bytes hex(erh_bytes raw, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = raw.len < (cap - 1) / 2 ? raw.len : (cap - 1) / 2;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[(unsigned char)raw.data[i] >> 4];
        out[2 * i + 1] = digits[(unsigned char)raw.data[i] & 15];
    }
    out[2 * n] = '\0';
    return (erh_bytes){out, 2 * n};
}

/* {publish, MsgId, From, Username, Topic, Payload, Qos, Retain, Timestamp} */
static bool decode_publish(ErlNifEnv *env, const erh_atoms *atoms, const erh_instance *inst, const ERL_NIF_TERM *t,
                           int arity, submit_text *text, erh_event *ev)
{
    erh_bytes *f = ev->field, raw_id;
    if (arity != 9 || !get_bytes(env, t[1], &raw_id) || !get_optional_bytes(env, atoms, t[2], &f[ERH_F_CLIENTID]) ||
        !get_optional_bytes(env, atoms, t[3], &f[ERH_F_USERNAME]) || !get_bytes(env, t[4], &f[ERH_F_TOPIC]) ||
        !get_bytes(env, t[5], &f[ERH_F_PAYLOAD]) || !get_i32(env, t[6], &ev->qos) ||
        !get_bool(atoms, t[7], &ev->retain) || !get_i64(env, t[8], &ev->timestamp))
        return false;
    f[ERH_F_MSG_ID] = hex(raw_id, text->msg_id, sizeof text->msg_id);
    /* An oversized payload is not copied at all: the submit stays as cheap as for a small one. */
    if (f[ERH_F_PAYLOAD].len > inst->config.max_payload_bytes) {
        ev->payload_omitted = true;
        ev->payload_size = f[ERH_F_PAYLOAD].len;
        f[ERH_F_PAYLOAD] = (erh_bytes){0};
    }
    return true;
}

static int event_type(const erh_atoms *atoms, ERL_NIF_TERM tag)
{
    if (enif_is_identical(tag, atoms->publish))
        return ERH_EV_PUBLISH;
    if (enif_is_identical(tag, atoms->connected))
        return ERH_EV_CONNECTED;
    if (enif_is_identical(tag, atoms->disconnected))
        return ERH_EV_DISCONNECTED;
    return -1;
}

/* An event not taken: counted as dropped, and the caller told why. */
static ERL_NIF_TERM refuse(ErlNifEnv *env, const erh_atoms *atoms, erh_instance *inst, ERL_NIF_TERM reason)
{
    erh_stats_add(&inst->stats, ERH_C_DROPPED, 1);
    return error_tuple(env, atoms, reason);
}

static ERL_NIF_TERM enqueue(ErlNifEnv *env, const erh_atoms *atoms, erh_instance *inst, erh_publisher *publisher,
                            erh_event *event)
{
    atomic_fetch_add(&inst->submitting, 1);
    ERL_NIF_TERM result = atoms->ok;
    if (atomic_load(&inst->closing)) {
        /* A hook call that raced with the stop: the publishers are draining, none will take it. Not
         * a bound's drop: the caller counts it (not_running), also across a configuration change. */
        result = error_tuple(env, atoms, atoms->closed);
    } else {
        event->seq = atomic_fetch_add_explicit(&inst->last_seq, 1, memory_order_relaxed) + 1;
        event->boot_id = inst->shared.boot_id;
        bool payload_omitted = event->payload_omitted;
        if (erh_queue_push(&publisher->queue, event) == ERH_OK) {
            event = NULL;
            erh_stats_add(&inst->stats, ERH_C_QUEUED, 1);
            if (payload_omitted)
                erh_stats_add(&inst->stats, ERH_C_PAYLOADS_OMITTED, 1);
        } else {
            result = refuse(env, atoms, inst, atoms->overloaded);
        }
    }
    atomic_fetch_sub(&inst->submitting, 1);
    erh_event_free(event);
    return result;
}

typedef bool (*decoder)(ErlNifEnv *, const erh_atoms *, const erh_instance *, const ERL_NIF_TERM *, int, submit_text *,
                        erh_event *);

static bool filtered_out(const erh_instance *inst, const erh_event *ev)
{
    return !inst->config.event_enabled[ev->type] ||
           (ev->type == ERH_EV_PUBLISH &&
            !erh_filter_set_match(&inst->config.publish_topics, ev->field[ERH_F_TOPIC].data,
                                  ev->field[ERH_F_TOPIC].len));
}

/* The presence registry needs every connected/disconnected event, whether or not RabbitMQ gets it. */
static void feed_presence(erh_instance *inst, const erh_event *ev)
{
    if (inst->presence && ev->type != ERH_EV_PUBLISH)
        erh_presence_submit(inst->presence, ev);
}

/* submit(Handle, Event) -> ok | {error, overloaded | closed | enomem}; badarg for a malformed event. */
static ERL_NIF_TERM nif_submit(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    static const decoder decoders[ERH_EV__COUNT] = {
        [ERH_EV_CONNECTED] = decode_connected,
        [ERH_EV_DISCONNECTED] = decode_disconnected,
        [ERH_EV_PUBLISH] = decode_publish,
    };
    const erh_priv *priv = enif_priv_data(env);
    const erh_atoms *atoms = &priv->atoms;
    erh_instance *inst;
    const ERL_NIF_TERM *t;
    int arity;
    if (!enif_get_resource(env, argv[0], priv->instance_type, (void **)&inst) ||
        !enif_get_tuple(env, argv[1], &arity, &t) || arity < 1)
        return enif_make_badarg(env);
    int type = event_type(atoms, t[0]);
    submit_text text;
    erh_event proto = {.type = type};
    if (type < 0 || !decoders[type](env, atoms, inst, t, arity, &text, &proto))
        return enif_make_badarg(env);
    erh_stats_add(&inst->stats, ERH_C_RECEIVED, 1);
    feed_presence(inst, &proto);
    if (filtered_out(inst, &proto)) {
        erh_stats_add(&inst->stats, ERH_C_FILTERED, 1);
        return atoms->ok;
    }
    unsigned index = erh_event_publisher_of(proto.field[ERH_F_CLIENTID], inst->n_publishers);
    erh_publisher *publisher = &inst->publishers[index];
    /* Refused before the copy: under overload a refusal costs less than an accepted event, and
     * leaves no gap between the accepted ones in the arena's chunks. */
    if (erh_queue_looks_full(&publisher->queue))
        return refuse(env, atoms, inst, atoms->overloaded);
    erh_event *event = erh_event_new_in(&inst->arena, index, &proto);
    if (!event)
        return refuse(env, atoms, inst, atoms->enomem);
    return enqueue(env, atoms, inst, publisher, event);
}

/* ---- stats ---- */

static ERL_NIF_TERM link_state_atom(const erh_atoms *atoms, int state)
{
    return state == ERH_LINK_CONNECTED ? atoms->connected
           : state == ERH_LINK_BLOCKED ? atoms->blocked
           : state == ERH_LINK_STOPPED ? atoms->stopped
                                       : atoms->connecting;
}

static ERL_NIF_TERM connection_info(ErlNifEnv *env, const erh_atoms *atoms, const erh_instance *inst, erh_publisher *p)
{
    ERL_NIF_TERM state_atom = link_state_atom(atoms, atomic_load(&p->link_state));
    ERL_NIF_TERM server_bin = erh_server_term(env, &inst->config.servers[atomic_load(&p->current_server)]);
    ERL_NIF_TERM keys[] = {atoms->state, atoms->server, atoms->queue_depth, atoms->spool_bytes, atoms->spool_events};
    ERL_NIF_TERM values[] = {state_atom, server_bin, enif_make_uint64(env, erh_publisher_depth(p)),
                             enif_make_uint64(env, atomic_load(&p->spool_bytes)),
                             enif_make_uint64(env, atomic_load(&p->spool_events))};
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, values, sizeof keys / sizeof keys[0], &map);
    return map;
}

#define PRESENCE_STATS 3

/* redis_state (disabled when presence is off), presence_queue_depth, presence_connections. */
static void presence_stats(ErlNifEnv *env, const erh_atoms *atoms, erh_instance *inst, ERL_NIF_TERM *keys,
                           ERL_NIF_TERM *values)
{
    erh_presence *p = inst->presence;
    keys[0] = atoms->redis_state;
    values[0] = p ? link_state_atom(atoms, atomic_load(&p->link_state)) : atoms->disabled;
    keys[1] = atoms->presence_queue_depth;
    values[1] = enif_make_uint64(env, p ? erh_presence_depth(p) : 0);
    keys[2] = atoms->presence_connections;
    values[2] = enif_make_uint64(env, p ? erh_presence_connections(p) : 0);
}

/* stats(Handle) -> #{received => N, ..., queue_depth => N, seq => N, connections => [#{...}]} */
static ERL_NIF_TERM nif_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    const erh_priv *priv = enif_priv_data(env);
    const erh_atoms *atoms = &priv->atoms;
    erh_instance *inst;
    if (!enif_get_resource(env, argv[0], priv->instance_type, (void **)&inst))
        return enif_make_badarg(env);
    enum { GAUGES = 6 };
    ERL_NIF_TERM keys[ERH_C__COUNT + GAUGES + PRESENCE_STATS], values[ERH_C__COUNT + GAUGES + PRESENCE_STATS];
    for (int c = 0; c < ERH_C__COUNT; c++) {
        keys[c] = priv->counter_atoms[c];
        values[c] = enif_make_uint64(env, erh_stats_get(&inst->stats, c));
    }
    uint64_t depth = 0, spool_bytes = 0, spool_events = 0;
    ERL_NIF_TERM connections = enif_make_list(env, 0);
    for (unsigned i = inst->n_publishers; i-- > 0;) {
        erh_publisher *p = &inst->publishers[i];
        depth += erh_publisher_depth(p);
        spool_bytes += atomic_load(&p->spool_bytes);
        spool_events += atomic_load(&p->spool_events);
        connections = enif_make_list_cell(env, connection_info(env, atoms, inst, p), connections);
    }
    const ERL_NIF_TERM gauge_keys[GAUGES] = {atoms->queue_depth, atoms->buffer_memory_bytes, atoms->seq,
                                             atoms->spool_bytes, atoms->spool_events,        atoms->connections};
    const ERL_NIF_TERM gauge_values[GAUGES] = {enif_make_uint64(env, depth),
                                               enif_make_uint64(env, erh_arena_bytes(&inst->arena)),
                                               enif_make_uint64(env, atomic_load(&inst->last_seq)),
                                               enif_make_uint64(env, spool_bytes),
                                               enif_make_uint64(env, spool_events),
                                               connections};
    memcpy(keys + ERH_C__COUNT, gauge_keys, sizeof gauge_keys);
    memcpy(values + ERH_C__COUNT, gauge_values, sizeof gauge_values);
    presence_stats(env, atoms, inst, keys + ERH_C__COUNT + GAUGES, values + ERH_C__COUNT + GAUGES);
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, values, ERH_C__COUNT + GAUGES + PRESENCE_STATS, &map);
    return map;
}

/* ---- presence lookups ---- */

typedef struct pair_list {
    ErlNifEnv *env;
    ERL_NIF_TERM list;
} pair_list;

static void add_pair(void *ctx, erh_bytes field, erh_bytes value)
{
    pair_list *pairs = ctx;
    ErlNifEnv *env = pairs->env;
    pairs->list = enif_make_list_cell(
        env, enif_make_tuple2(env, erh_binary_term(env, field), erh_binary_term(env, value)), pairs->list);
}

/* presence(Handle, ClientId) -> {ok, [{Field, Value}]} | {error, disabled | {redis, Message}}, on a
 * dirty I/O scheduler: it waits for one Redis round trip (two after a broken connection). There is
 * no Redis client in OTP; this reads with the same script that README shows to any Redis client. */
static ERL_NIF_TERM nif_presence(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    const erh_priv *priv = enif_priv_data(env);
    const erh_atoms *atoms = &priv->atoms;
    erh_instance *inst;
    erh_bytes clientid;
    if (!enif_get_resource(env, argv[0], priv->instance_type, (void **)&inst) || !get_bytes(env, argv[1], &clientid))
        return enif_make_badarg(env);
    if (!inst->presence)
        return error_tuple(env, atoms, atoms->disabled);
    pair_list pairs = {env, enif_make_list(env, 0)};
    char errstr[256];
    if (erh_presence_reader_get(&inst->presence->reader, clientid, add_pair, &pairs, errstr, sizeof errstr) != ERH_OK)
        return error_tuple(env, atoms, enif_make_tuple2(env, atoms->redis, erh_text_term(env, errstr)));
    return enif_make_tuple2(env, atoms->ok, pairs.list);
}

/* ---- loading ---- */

static int open_library(ErlNifEnv *env, void **priv_data)
{
    erh_priv *priv = enif_alloc(sizeof *priv);
    if (!priv)
        return 1;
    erh_atoms_make(env, &priv->atoms);
    for (int c = 0; c < ERH_C__COUNT; c++)
        priv->counter_atoms[c] = enif_make_atom(env, erh_counter_name(c));
    priv->instance_type = enif_open_resource_type(env, NULL, "erh_instance", instance_dtor,
                                                  ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    if (!priv->instance_type) {
        enif_free(priv);
        return 1;
    }
    *priv_data = priv;
    return 0;
}

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM info)
{
    (void)info;
    return open_library(env, priv_data);
}

/* Reloading the module while old code still holds the library: take over the resource type so
 * handles made by the old code keep working and are destroyed by this code. */
static int upgrade(ErlNifEnv *env, void **priv_data, void **old_priv_data, ERL_NIF_TERM info)
{
    (void)old_priv_data;
    (void)info;
    return open_library(env, priv_data);
}

static void unload(ErlNifEnv *env, void *priv_data)
{
    (void)env;
    enif_free(priv_data);
}

/* start locks spool folders (file system calls) and, when it fails half way, joins the threads it
 * started, which may sit in a connection attempt: a dirty I/O scheduler waits for that. */
static ErlNifFunc functions[] = {
    {"start", 2, nif_start, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"submit", 2, nif_submit, 0},
    {"stats", 1, nif_stats, 0},
    {"stop", 2, nif_stop, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"presence", 2, nif_presence, ERL_NIF_DIRTY_JOB_IO_BOUND},
};

ERL_NIF_INIT(emqx_rabbitmq_hook_nif, functions, load, NULL, upgrade, unload)
