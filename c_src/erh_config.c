#include "erh_config.h"

#include <stdio.h>
#include <stdlib.h>

static void free_strings(char **strings, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

void erh_config_free(erh_config *config)
{
    free(config->node);
    for (size_t i = 0; i < config->n_servers; i++)
        free(config->servers[i].host);
    free(config->servers);
    free(config->username);
    free(config->password);
    free(config->vhost);
    free(config->exchange);
    free(config->exchange_type);
    for (size_t i = 0; i < config->n_queues; i++) {
        free(config->queues[i].name);
        free_strings(config->queues[i].bindings, config->queues[i].n_bindings);
    }
    free(config->queues);
    free(config->queue_type);
    free(config->queue_mode);
    erh_filter_set_free(&config->publish_topics);
    for (int i = 0; i < ERH_EV__COUNT; i++)
        free(config->routing_keys[i]);
    free(config->unroutable_queue);
    free(config->spool_dir);
    free(config->tls_cacertfile);
    free(config->tls_certfile);
    free(config->tls_keyfile);
    free(config->tls_server_name);
    free(config->redis_server.host);
    free(config->redis_username);
    free(config->redis_password);
    free(config->redis_key_prefix);
    *config = (erh_config){0};
}

size_t erh_server_format(const erh_server *server, char *out, size_t cap)
{
    int len = snprintf(out, cap, "%s:%d", server->host, server->port);
    if (len < 0)
        return 0;
    return (size_t)len < cap ? (size_t)len : cap - 1;
}
