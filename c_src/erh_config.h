/* The instance configuration in plain C, filled by the glue from the map that
 * emqx_rabbitmq_hook_config:parse/1 produced (which already validated every value). */
#ifndef ERH_CONFIG_H
#define ERH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "erh_event.h"
#include "erh_filter.h"
#include "erh_spool.h"

typedef struct erh_server {
    char *host;
    int port;
} erh_server;

typedef struct erh_queue_decl {
    char *name;
    char **bindings;
    size_t n_bindings;
} erh_queue_decl;

typedef struct erh_config {
    char *node;
    erh_server *servers;
    size_t n_servers;
    char *username;
    char *password;
    char *vhost;
    char *exchange;
    char *exchange_type;
    erh_queue_decl *queues;
    size_t n_queues;
    char *queue_type;                      /* "classic" or "quorum" */
    char *queue_mode;                      /* classic queues: "lazy" or "default" (argument left out) */
    unsigned queue_version;                /* classic queues: 1 or 2; 0 leaves the argument out */
    bool event_enabled[ERH_EV__COUNT];
    erh_filter_set publish_topics;
    bool payload_base64;
    char *routing_keys[ERH_EV__COUNT];     /* templates, see erh_routing.h */
    unsigned publishers;                   /* publisher threads, each with its own connection */
    unsigned confirm_window;               /* unconfirmed messages per connection */
    unsigned buffer_events;                /* events waiting in memory, all publishers together */
    unsigned heartbeat_s;
    unsigned reconnect_min_ms;
    unsigned reconnect_max_ms;
    unsigned connect_timeout_ms;
    char *unroutable_queue;                /* where returned messages go; "" to drop them */
    char *spool_dir;                       /* one folder per publisher below it */
    uint64_t spool_max_bytes;              /* all publishers together; 0: no spool */
    erh_spool_sync spool_sync;
    unsigned spool_sync_interval_ms;
    bool tls_enable;
    char *tls_cacertfile;                  /* "" means unset, here and in the three below */
    char *tls_certfile;
    char *tls_keyfile;
    bool tls_verify;                       /* the server's certificate chain and name */
    char *tls_server_name;                 /* the name to verify; "" means the host dialled */
    bool auth_external;                    /* SASL EXTERNAL (the client certificate) instead of PLAIN */
    unsigned max_payload_bytes;            /* larger payloads are left out of the event, see erh_event.h */

    /* The presence registry in Redis (erh_presence.h). */
    bool presence;
    erh_server redis_server;
    char *redis_username;                  /* "" for none */
    char *redis_password;                  /* "" for no AUTH */
    unsigned redis_db;
    char *redis_key_prefix;
    unsigned presence_buffer_events;       /* updates waiting for Redis */
    unsigned presence_batch;               /* updates per pipeline */
    unsigned presence_node_ttl_ms;         /* liveness key TTL; refreshed every third of it */
    unsigned presence_tombstone_ttl_ms;
    unsigned presence_timeout_ms;          /* Redis connect and reply timeout */
} erh_config;

/* Write "host:port" into out (always NUL-terminated); returns the length written. */
size_t erh_server_format(const erh_server *server, char *out, size_t cap);

/* Free everything the config owns; safe on a zeroed or half-filled config. */
void erh_config_free(erh_config *config);

#endif
