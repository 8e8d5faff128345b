#include "erh_nif_config.h"

#include <stdlib.h>
#include <string.h>

#include "erh_routing.h"

/* A binary without NUL bytes, copied into a new C string. */
static erh_status copy_cstring(ErlNifEnv *env, ERL_NIF_TERM term, char **out)
{
    ErlNifBinary bin;
    if (!enif_inspect_binary(env, term, &bin) || memchr(bin.data, 0, bin.size))
        return ERH_ERR_BADARG;
    char *text = malloc(bin.size + 1);
    if (!text)
        return ERH_ERR_NOMEM;
    memcpy(text, bin.data, bin.size);
    text[bin.size] = '\0';
    *out = text;
    return ERH_OK;
}

static erh_status copy_uint(ErlNifEnv *env, ERL_NIF_TERM term, unsigned min, unsigned max, unsigned *out)
{
    unsigned value;
    if (!enif_get_uint(env, term, &value) || value < min || value > max)
        return ERH_ERR_BADARG;
    *out = value;
    return ERH_OK;
}

static erh_status read_bool(const erh_atoms *atoms, ERL_NIF_TERM term, bool *out)
{
    *out = enif_compare(term, atoms->true_) == 0;
    return *out || enif_compare(term, atoms->false_) == 0 ? ERH_OK : ERH_ERR_BADARG;
}

/* A list of C strings: *out is an array of *count strings. */
static erh_status copy_cstrings(ErlNifEnv *env, ERL_NIF_TERM list, char ***out, size_t *count)
{
    unsigned length;
    if (!enif_get_list_length(env, list, &length))
        return ERH_ERR_BADARG;
    *out = calloc(length ? length : 1, sizeof(char *));
    if (!*out)
        return ERH_ERR_NOMEM;
    ERL_NIF_TERM head;
    for (*count = 0; enif_get_list_cell(env, list, &head, &list); (*count)++) {
        erh_status st = copy_cstring(env, head, &(*out)[*count]);
        if (st != ERH_OK)
            return st;
    }
    return ERH_OK;
}

/* {HostBinary, Port} */
static erh_status read_server(ErlNifEnv *env, ERL_NIF_TERM term, erh_server *server)
{
    const ERL_NIF_TERM *pair;
    int arity;
    if (!enif_get_tuple(env, term, &arity, &pair) || arity != 2 || !enif_get_int(env, pair[1], &server->port) ||
        server->port < 1 || server->port > 65535)
        return ERH_ERR_BADARG;
    return copy_cstring(env, pair[0], &server->host);
}

static erh_status read_servers(ErlNifEnv *env, ERL_NIF_TERM list, erh_config *config)
{
    unsigned length;
    if (!enif_get_list_length(env, list, &length) || length == 0)
        return ERH_ERR_BADARG;
    config->servers = calloc(length, sizeof(erh_server));
    if (!config->servers)
        return ERH_ERR_NOMEM;
    ERL_NIF_TERM head;
    while (enif_get_list_cell(env, list, &head, &list)) {
        erh_status st = read_server(env, head, &config->servers[config->n_servers]);
        if (st != ERH_OK)
            return st;
        config->n_servers++;
    }
    return ERH_OK;
}

static erh_status read_queues(ErlNifEnv *env, ERL_NIF_TERM list, erh_config *config)
{
    unsigned length;
    if (!enif_get_list_length(env, list, &length))
        return ERH_ERR_BADARG;
    config->queues = calloc(length ? length : 1, sizeof(erh_queue_decl));
    if (!config->queues)
        return ERH_ERR_NOMEM;
    ERL_NIF_TERM head;
    while (enif_get_list_cell(env, list, &head, &list)) {
        const ERL_NIF_TERM *pair;
        int arity;
        if (!enif_get_tuple(env, head, &arity, &pair) || arity != 2)
            return ERH_ERR_BADARG;
        erh_queue_decl *queue = &config->queues[config->n_queues++];
        erh_status st = copy_cstring(env, pair[0], &queue->name);
        if (st == ERH_OK)
            st = copy_cstrings(env, pair[1], &queue->bindings, &queue->n_bindings);
        if (st != ERH_OK)
            return st;
    }
    return ERH_OK;
}

/* The atom of each event type, as events and routing_keys name them. */
static void event_names(const erh_atoms *atoms, ERL_NIF_TERM names[ERH_EV__COUNT])
{
    names[ERH_EV_CONNECTED] = atoms->client_connected;
    names[ERH_EV_DISCONNECTED] = atoms->client_disconnected;
    names[ERH_EV_PUBLISH] = atoms->message_publish;
}

static erh_status read_events(ErlNifEnv *env, const erh_atoms *atoms, ERL_NIF_TERM list, erh_config *config)
{
    ERL_NIF_TERM names[ERH_EV__COUNT];
    event_names(atoms, names);
    ERL_NIF_TERM head;
    if (!enif_is_list(env, list))
        return ERH_ERR_BADARG;
    while (enif_get_list_cell(env, list, &head, &list)) {
        int type = 0;
        while (type < ERH_EV__COUNT && enif_compare(head, names[type]) != 0)
            type++;
        if (type == ERH_EV__COUNT)
            return ERH_ERR_BADARG;
        config->event_enabled[type] = true;
    }
    return ERH_OK;
}

static erh_status read_topics(ErlNifEnv *env, ERL_NIF_TERM list, erh_config *config)
{
    char **filters = NULL;
    size_t count = 0, bad_index;
    erh_status st = copy_cstrings(env, list, &filters, &count);
    size_t *lens = calloc(count ? count : 1, sizeof(size_t));
    if (st == ERH_OK && !lens)
        st = ERH_ERR_NOMEM;
    for (size_t i = 0; st == ERH_OK && i < count; i++)
        lens[i] = strlen(filters[i]);
    if (st == ERH_OK)
        st = erh_filter_set_init(&config->publish_topics, (const char *const *)filters, lens, count, &bad_index);
    for (size_t i = 0; filters && i < count; i++)
        free(filters[i]);
    free(filters);
    free(lens);
    return st;
}

static erh_status read_routing_keys(ErlNifEnv *env, const erh_atoms *atoms, ERL_NIF_TERM map, erh_config *config)
{
    ERL_NIF_TERM names[ERH_EV__COUNT];
    event_names(atoms, names);
    for (int type = 0; type < ERH_EV__COUNT; type++) {
        ERL_NIF_TERM value;
        if (!enif_get_map_value(env, map, names[type], &value))
            return ERH_ERR_BADARG;
        erh_status st = copy_cstring(env, value, &config->routing_keys[type]);
        if (st != ERH_OK)
            return st;
        if (!erh_routing_template_valid(config->routing_keys[type]))
            return ERH_ERR_BADARG;
    }
    return ERH_OK;
}

static erh_status read_spool_sync(const erh_atoms *atoms, ERL_NIF_TERM value, erh_config *config)
{
    const ERL_NIF_TERM names[] = {[ERH_SPOOL_SYNC_ALWAYS] = atoms->always,
                                  [ERH_SPOOL_SYNC_INTERVAL] = atoms->interval,
                                  [ERH_SPOOL_SYNC_NEVER] = atoms->never};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (enif_is_identical(value, names[i])) {
            config->spool_sync = (erh_spool_sync)i;
            return ERH_OK;
        }
    }
    return ERH_ERR_BADARG;
}

/* One row per key: how to read it. Kept as a switch over an index so each reader keeps its own
 * signature; the table gives the order and the key atom for error reports. */
enum key_index {
    K_NODE, K_SERVERS, K_USERNAME, K_PASSWORD, K_VHOST, K_EXCHANGE, K_EXCHANGE_TYPE, K_QUEUES, K_QUEUE_TYPE,
    K_QUEUE_MODE, K_QUEUE_VERSION,
    K_EVENTS, K_PUBLISH_TOPICS, K_PAYLOAD_ENCODING, K_ROUTING_KEYS, K_PUBLISHERS, K_CONFIRM_WINDOW,
    K_BUFFER_EVENTS, K_HEARTBEAT, K_RECONNECT_MIN_MS, K_RECONNECT_MAX_MS, K_CONNECT_TIMEOUT_MS,
    K_UNROUTABLE_QUEUE, K_SPOOL_DIR, K_SPOOL_MAX_BYTES, K_SPOOL_SYNC, K_SPOOL_SYNC_INTERVAL_MS,
    K_TLS_ENABLE, K_TLS_CACERTFILE, K_TLS_CERTFILE, K_TLS_KEYFILE, K_TLS_VERIFY, K_TLS_SERVER_NAME,
    K_AUTH_MECHANISM, K_MAX_PAYLOAD_BYTES,
    K_PRESENCE, K_REDIS_SERVER, K_REDIS_USERNAME, K_REDIS_PASSWORD, K_REDIS_DB, K_REDIS_KEY_PREFIX,
    K_PRESENCE_BUFFER_EVENTS, K_PRESENCE_BATCH, K_PRESENCE_NODE_TTL_MS, K_PRESENCE_TOMBSTONE_TTL_MS,
    K_PRESENCE_TIMEOUT_MS, K__COUNT
};

static ERL_NIF_TERM key_atom(const erh_atoms *atoms, enum key_index key)
{
    const ERL_NIF_TERM keys[K__COUNT] = {
        atoms->node, atoms->servers, atoms->username, atoms->password, atoms->vhost, atoms->exchange,
        atoms->exchange_type, atoms->queues, atoms->queue_type, atoms->queue_mode,
        atoms->queue_version, atoms->events, atoms->publish_topics,
        atoms->payload_encoding, atoms->routing_keys, atoms->publishers, atoms->confirm_window,
        atoms->buffer_events, atoms->heartbeat, atoms->reconnect_min_ms, atoms->reconnect_max_ms,
        atoms->connect_timeout_ms, atoms->unroutable_queue, atoms->spool_dir, atoms->spool_max_bytes,
        atoms->spool_sync, atoms->spool_sync_interval_ms, atoms->tls_enable, atoms->tls_cacertfile,
        atoms->tls_certfile, atoms->tls_keyfile, atoms->tls_verify, atoms->tls_server_name,
        atoms->auth_mechanism, atoms->max_payload_bytes, atoms->presence, atoms->redis_server,
        atoms->redis_username, atoms->redis_password, atoms->redis_db, atoms->redis_key_prefix,
        atoms->presence_buffer_events, atoms->presence_batch, atoms->presence_node_ttl_ms,
        atoms->presence_tombstone_ttl_ms, atoms->presence_timeout_ms,
    };
    return keys[key];
}

static erh_status read_key(ErlNifEnv *env, const erh_atoms *atoms, enum key_index key, ERL_NIF_TERM value,
                           erh_config *c)
{
    switch (key) {
    case K_NODE:
        return copy_cstring(env, value, &c->node);
    case K_SERVERS:
        return read_servers(env, value, c);
    case K_USERNAME:
        return copy_cstring(env, value, &c->username);
    case K_PASSWORD:
        return copy_cstring(env, value, &c->password);
    case K_VHOST:
        return copy_cstring(env, value, &c->vhost);
    case K_EXCHANGE:
        return copy_cstring(env, value, &c->exchange);
    case K_EXCHANGE_TYPE:
        return copy_cstring(env, value, &c->exchange_type);
    case K_QUEUES:
        return read_queues(env, value, c);
    case K_QUEUE_TYPE:
        return copy_cstring(env, value, &c->queue_type);
    case K_QUEUE_MODE:
        return copy_cstring(env, value, &c->queue_mode);
    case K_QUEUE_VERSION:
        return copy_uint(env, value, 0, 2, &c->queue_version);
    case K_EVENTS:
        return read_events(env, atoms, value, c);
    case K_PUBLISH_TOPICS:
        return read_topics(env, value, c);
    case K_PAYLOAD_ENCODING:
        c->payload_base64 = enif_compare(value, atoms->base64) == 0;
        return c->payload_base64 || enif_compare(value, atoms->auto_) == 0 ? ERH_OK : ERH_ERR_BADARG;
    case K_ROUTING_KEYS:
        return read_routing_keys(env, atoms, value, c);
    case K_PUBLISHERS:
        return copy_uint(env, value, 1, 64, &c->publishers);
    case K_CONFIRM_WINDOW:
        return copy_uint(env, value, 1, 65535, &c->confirm_window);
    case K_BUFFER_EVENTS:
        return copy_uint(env, value, 1, 1000000000, &c->buffer_events);
    case K_HEARTBEAT:
        return copy_uint(env, value, 0, 3600, &c->heartbeat_s);
    case K_RECONNECT_MIN_MS:
        return copy_uint(env, value, 1, 3600000, &c->reconnect_min_ms);
    case K_RECONNECT_MAX_MS:
        return copy_uint(env, value, c->reconnect_min_ms, 3600000, &c->reconnect_max_ms);
    case K_CONNECT_TIMEOUT_MS:
        return copy_uint(env, value, 1, 600000, &c->connect_timeout_ms);
    case K_UNROUTABLE_QUEUE:
        return copy_cstring(env, value, &c->unroutable_queue);
    case K_SPOOL_DIR:
        return copy_cstring(env, value, &c->spool_dir);
    case K_SPOOL_MAX_BYTES: {
        ErlNifUInt64 bytes;
        if (!enif_get_uint64(env, value, &bytes))
            return ERH_ERR_BADARG;
        c->spool_max_bytes = bytes;
        return ERH_OK;
    }
    case K_SPOOL_SYNC:
        return read_spool_sync(atoms, value, c);
    case K_SPOOL_SYNC_INTERVAL_MS:
        return copy_uint(env, value, 1, 3600000, &c->spool_sync_interval_ms);
    case K_TLS_ENABLE:
        return read_bool(atoms, value, &c->tls_enable);
    case K_TLS_CACERTFILE:
        return copy_cstring(env, value, &c->tls_cacertfile);
    case K_TLS_CERTFILE:
        return copy_cstring(env, value, &c->tls_certfile);
    case K_TLS_KEYFILE: {
        /* A client certificate is of use only with its key, and a key only with its certificate. */
        erh_status st = copy_cstring(env, value, &c->tls_keyfile);
        return st == ERH_OK && !c->tls_certfile[0] != !c->tls_keyfile[0] ? ERH_ERR_BADARG : st;
    }
    case K_TLS_VERIFY:
        return read_bool(atoms, value, &c->tls_verify);
    case K_TLS_SERVER_NAME:
        return copy_cstring(env, value, &c->tls_server_name);
    case K_AUTH_MECHANISM:
        /* EXTERNAL logs in with the client certificate, so it needs TLS with one. */
        c->auth_external = enif_compare(value, atoms->external) == 0;
        if (c->auth_external)
            return c->tls_enable && c->tls_certfile[0] ? ERH_OK : ERH_ERR_BADARG;
        return enif_compare(value, atoms->plain) == 0 ? ERH_OK : ERH_ERR_BADARG;
    case K_MAX_PAYLOAD_BYTES:
        return copy_uint(env, value, 0, 268435456, &c->max_payload_bytes);
    case K_PRESENCE:
        return read_bool(atoms, value, &c->presence);
    case K_REDIS_SERVER:
        return read_server(env, value, &c->redis_server);
    case K_REDIS_USERNAME:
        return copy_cstring(env, value, &c->redis_username);
    case K_REDIS_PASSWORD:
        return copy_cstring(env, value, &c->redis_password);
    case K_REDIS_DB:
        return copy_uint(env, value, 0, 65535, &c->redis_db);
    case K_REDIS_KEY_PREFIX:
        return copy_cstring(env, value, &c->redis_key_prefix);
    case K_PRESENCE_BUFFER_EVENTS:
        return copy_uint(env, value, 1, 1000000000, &c->presence_buffer_events);
    case K_PRESENCE_BATCH:
        return copy_uint(env, value, 1, 100000, &c->presence_batch);
    case K_PRESENCE_NODE_TTL_MS:
        return copy_uint(env, value, 1000, 86400000, &c->presence_node_ttl_ms);
    case K_PRESENCE_TOMBSTONE_TTL_MS:
        return copy_uint(env, value, 1, 2000000000, &c->presence_tombstone_ttl_ms);
    case K_PRESENCE_TIMEOUT_MS:
        return copy_uint(env, value, 1, 600000, &c->presence_timeout_ms);
    default:
        return ERH_ERR_BADARG;
    }
}

erh_status erh_nif_read_config(ErlNifEnv *env, const erh_atoms *atoms, ERL_NIF_TERM map, erh_config *config,
                               ERL_NIF_TERM *bad_key)
{
    if (!enif_is_map(env, map)) {
        *bad_key = atoms->undefined;
        return ERH_ERR_BADARG;
    }
    for (int key = 0; key < K__COUNT; key++) {
        ERL_NIF_TERM value;
        erh_status st = enif_get_map_value(env, map, key_atom(atoms, key), &value)
                            ? read_key(env, atoms, key, value, config)
                            : ERH_ERR_BADARG;
        if (st != ERH_OK) {
            *bad_key = key_atom(atoms, key);
            return st;
        }
    }
    return ERH_OK;
}
