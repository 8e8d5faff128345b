#include "erh_presence_read.h"

#include <stdio.h>
#include <string.h>

#include <hiredis.h>

#include "erh_clock.h"
#include "erh_scripts.h"

erh_status erh_presence_reader_init(erh_presence_reader *reader, const erh_config *config)
{
    *reader = (erh_presence_reader){.config = config, .script = {.text = erh_script_presence_read}};
    if (pthread_mutex_init(&reader->lock, NULL) != 0)
        return ERH_ERR_SYSTEM;
    reader->lock_ready = true;
    return ERH_OK;
}

void erh_presence_reader_destroy(erh_presence_reader *reader)
{
    erh_redis_close(&reader->redis);
    erh_cmd_free(&reader->cmd);
    if (reader->lock_ready)
        pthread_mutex_destroy(&reader->lock);
    reader->lock_ready = false;
}

/* Connect when needed, then run the script once. */
static erh_status lookup_once(erh_presence_reader *reader, erh_bytes clientid, redisReply **reply)
{
    const erh_config *config = reader->config;
    erh_status st = ERH_OK;
    if (!erh_redis_connected(&reader->redis)) {
        st = erh_redis_connect(&reader->redis, config, config->presence_timeout_ms);
        if (st == ERH_OK)
            st = erh_redis_load(&reader->redis, &reader->script);
    }
    erh_bytes prefix = {config->redis_key_prefix, strlen(config->redis_key_prefix)};
    if (st == ERH_OK)
        st = erh_presence_cmd_read(&reader->cmd, reader->script.sha, prefix, clientid);
    if (st == ERH_OK)
        st = erh_redis_call(&reader->redis, reader->cmd.argc, reader->cmd.argv, reader->cmd.lens, reply);
    return st;
}

/* The reply is field, value pairs of strings. */
static bool pairs_valid(const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0)
        return false;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type != REDIS_REPLY_STRING)
            return false;
    return true;
}

static erh_status answer(const redisReply *reply, erh_presence_pair_fn fn, void *ctx, char *errstr, size_t cap)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, cap, "%.*s", (int)(reply->len < 200 ? reply->len : 200), reply->str);
        return ERH_ERR_PROTOCOL;
    }
    if (!pairs_valid(reply)) {
        snprintf(errstr, cap, "unexpected reply from the read script");
        return ERH_ERR_PROTOCOL;
    }
    for (size_t i = 0; i < reply->elements; i += 2) {
        const redisReply *field = reply->element[i], *value = reply->element[i + 1];
        fn(ctx, (erh_bytes){field->str, field->len}, (erh_bytes){value->str, value->len});
    }
    return ERH_OK;
}

/* Take the connection, waiting at most the reply timeout for the lookup that holds it. */
static bool lock_within_timeout(erh_presence_reader *reader)
{
    struct timespec until = erh_monotonic_deadline(reader->config->presence_timeout_ms);
    return pthread_mutex_clocklock(&reader->lock, CLOCK_MONOTONIC, &until) == 0;
}

erh_status erh_presence_reader_get(erh_presence_reader *reader, erh_bytes clientid, erh_presence_pair_fn fn,
                                   void *ctx, char *errstr, size_t cap)
{
    if (!lock_within_timeout(reader)) {
        snprintf(errstr, cap, "another lookup has been waiting for Redis for %u ms",
                 reader->config->presence_timeout_ms);
        return ERH_ERR_TIMEOUT;
    }
    if (!erh_redis_connected(&reader->redis) && erh_monotonic_ms() < reader->retry_at_ms) {
        snprintf(errstr, cap, "%s (the next attempt waits %u ms after the last)", reader->last_error,
                 reader->config->reconnect_min_ms);
        pthread_mutex_unlock(&reader->lock);
        return ERH_ERR_SOCKET;
    }
    reader->redis.errstr[0] = '\0';
    bool reused = erh_redis_connected(&reader->redis);
    redisReply *reply = NULL;
    erh_status st = lookup_once(reader, clientid, &reply);
    if (st == ERH_OK && erh_redis_is_noscript(reply)) {
        /* Redis forgot its scripts (restart, SCRIPT FLUSH): load it again and retry once. */
        erh_redis_free_reply(reply);
        reply = NULL;
        st = erh_redis_load(&reader->redis, &reader->script);
        if (st == ERH_OK)
            st = lookup_once(reader, clientid, &reply);
    } else if (st != ERH_OK && reused) {
        /* The connection kept from an earlier lookup may have broken since (a failure closes it):
         * one new connection, once. */
        st = lookup_once(reader, clientid, &reply);
    }
    if (st == ERH_OK)
        st = answer(reply, fn, ctx, errstr, cap);
    else
        snprintf(errstr, cap, "%s", reader->redis.errstr[0] ? reader->redis.errstr : erh_strerror(st));
    if (st != ERH_OK && !erh_redis_connected(&reader->redis)) {
        reader->retry_at_ms = erh_monotonic_ms() + reader->config->reconnect_min_ms;
        snprintf(reader->last_error, sizeof reader->last_error, "%s", errstr);
    }
    erh_redis_free_reply(reply);
    pthread_mutex_unlock(&reader->lock);
    return st;
}
