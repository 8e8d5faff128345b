/* Every atom the glue uses, made once in load (X-macro: ATOM(c_name, "erlang_name")). */
#ifndef ERH_NIF_ATOMS_H
#define ERH_NIF_ATOMS_H

#include <erl_nif.h>

#define ERH_ATOMS(ATOM)                                                                                  \
    ATOM(ok, "ok")                                                                                       \
    ATOM(error, "error")                                                                                 \
    ATOM(true_, "true")                                                                                  \
    ATOM(false_, "false")                                                                                \
    ATOM(undefined, "undefined")                                                                         \
    ATOM(overloaded, "overloaded")                                                                       \
    ATOM(closed, "closed")                                                                               \
    ATOM(badarg, "badarg")                                                                               \
    ATOM(enomem, "enomem")                                                                               \
    ATOM(system_limit, "system_limit")                                                                   \
    ATOM(filtered, "filtered")                                                                           \
    ATOM(connected, "connected")                                                                         \
    ATOM(disconnected, "disconnected")                                                                   \
    ATOM(publish, "publish")                                                                             \
    ATOM(connecting, "connecting")                                                                       \
    ATOM(stopped, "stopped")                                                                             \
    ATOM(blocked, "blocked")                                                                             \
    ATOM(unblocked, "unblocked")                                                                         \
    ATOM(state, "state")                                                                                 \
    ATOM(server, "server")                                                                               \
    ATOM(connections, "connections")                                                                     \
    ATOM(buffer_memory_bytes, "buffer_memory_bytes")                                                     \
    ATOM(queue_depth, "queue_depth")                                                                     \
    ATOM(seq, "seq")                                                                                     \
    ATOM(nif_tag, "emqx_rabbitmq_hook_nif")                                                              \
    ATOM(connect_failed, "connect_failed")                                                               \
    ATOM(returned, "returned")                                                                           \
    ATOM(encode_failed, "encode_failed")                                                                 \
    ATOM(auto_, "auto")                                                                                  \
    ATOM(base64, "base64")                                                                               \
    ATOM(client_connected, "client_connected")                                                           \
    ATOM(client_disconnected, "client_disconnected")                                                     \
    ATOM(message_publish, "message_publish")                                                             \
    ATOM(node, "node")                                                                                   \
    ATOM(servers, "servers")                                                                             \
    ATOM(username, "username")                                                                           \
    ATOM(password, "password")                                                                           \
    ATOM(vhost, "vhost")                                                                                 \
    ATOM(exchange, "exchange")                                                                           \
    ATOM(exchange_type, "exchange_type")                                                                 \
    ATOM(queues, "queues")                                                                               \
    ATOM(queue_type, "queue_type")                                                                       \
    ATOM(queue_mode, "queue_mode")                                                                       \
    ATOM(queue_version, "queue_version")                                                                 \
    ATOM(events, "events")                                                                               \
    ATOM(publish_topics, "publish_topics")                                                               \
    ATOM(payload_encoding, "payload_encoding")                                                           \
    ATOM(routing_keys, "routing_keys")                                                                   \
    ATOM(publishers, "publishers")                                                                       \
    ATOM(confirm_window, "confirm_window")                                                               \
    ATOM(buffer_events, "buffer_events")                                                                 \
    ATOM(heartbeat, "heartbeat")                                                                         \
    ATOM(reconnect_min_ms, "reconnect_min_ms")                                                           \
    ATOM(reconnect_max_ms, "reconnect_max_ms")                                                           \
    ATOM(connect_timeout_ms, "connect_timeout_ms")                                                       \
    ATOM(unroutable_queue, "unroutable_queue")                                                           \
    ATOM(spool_dir, "spool_dir")                                                                         \
    ATOM(spool_max_bytes, "spool_max_bytes")                                                             \
    ATOM(spool_sync, "spool_sync")                                                                       \
    ATOM(spool_sync_interval_ms, "spool_sync_interval_ms")                                               \
    ATOM(always, "always")                                                                               \
    ATOM(interval, "interval")                                                                           \
    ATOM(never, "never")                                                                                 \
    ATOM(spool_failed, "spool_failed")                                                                   \
    ATOM(spool, "spool")                                                                                 \
    ATOM(regrouped, "regrouped")                                                                         \
    ATOM(regroup_failed, "regroup_failed")                                                               \
    ATOM(spool_bytes, "spool_bytes")                                                                     \
    ATOM(spool_events, "spool_events")                                                                   \
    ATOM(tls_enable, "tls_enable")                                                                       \
    ATOM(tls_cacertfile, "tls_cacertfile")                                                               \
    ATOM(tls_certfile, "tls_certfile")                                                                   \
    ATOM(tls_keyfile, "tls_keyfile")                                                                     \
    ATOM(tls_verify, "tls_verify")                                                                       \
    ATOM(tls_server_name, "tls_server_name")                                                             \
    ATOM(auth_mechanism, "auth_mechanism")                                                               \
    ATOM(plain, "plain")                                                                                 \
    ATOM(external, "external")                                                                           \
    ATOM(max_payload_bytes, "max_payload_bytes")                                                         \
    ATOM(presence, "presence")                                                                           \
    ATOM(redis_server, "redis_server")                                                                   \
    ATOM(redis_username, "redis_username")                                                               \
    ATOM(redis_password, "redis_password")                                                               \
    ATOM(redis_db, "redis_db")                                                                           \
    ATOM(redis_key_prefix, "redis_key_prefix")                                                           \
    ATOM(presence_buffer_events, "presence_buffer_events")                                               \
    ATOM(presence_batch, "presence_batch")                                                               \
    ATOM(presence_node_ttl_ms, "presence_node_ttl_ms")                                                   \
    ATOM(presence_tombstone_ttl_ms, "presence_tombstone_ttl_ms")                                         \
    ATOM(presence_timeout_ms, "presence_timeout_ms")                                                     \
    ATOM(disabled, "disabled")                                                                           \
    ATOM(redis, "redis")                                                                                 \
    ATOM(redis_error, "redis_error")                                                                     \
    ATOM(lost_writes, "lost_writes")                                                                     \
    ATOM(redis_state, "redis_state")                                                                     \
    ATOM(presence_queue_depth, "presence_queue_depth")                                                   \
    ATOM(presence_connections, "presence_connections")

typedef struct erh_atoms {
#define ERH_ATOM_FIELD(name, text) ERL_NIF_TERM name;
    ERH_ATOMS(ERH_ATOM_FIELD)
#undef ERH_ATOM_FIELD
} erh_atoms;

void erh_atoms_make(ErlNifEnv *env, erh_atoms *atoms);

#endif
