/* One Redis connection with hiredis: connect, log in, select the database, load Lua scripts, and
 * send pipelined commands whose replies are read with a timeout. Owned by one thread at a time
 * (hiredis contexts are not thread-safe). Commands go only through the argv form with explicit
 * lengths, so client ids and other MQTT data are never parsed as a format string. */
#ifndef ERH_REDIS_H
#define ERH_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "erh_config.h"
#include "erh_status.h"

struct redisContext;
struct redisReply;

typedef struct erh_redis {
    struct redisContext *ctx;
    unsigned timeout_ms; /* connect, and each wait for a reply; may be lowered between calls */
    char errstr[256];    /* what went wrong, for the log; never holds a password */
} erh_redis;

/* A Lua script and its SHA1, which Redis gives when the script is loaded. */
typedef struct erh_redis_script {
    const char *text;
    char sha[41]; /* "" until loaded once */
} erh_redis_script;

/* Connect to config->redis_server, AUTH when redis_password or redis_username is set, SELECT
 * redis_db. On failure the connection is closed and errstr says why (ERH_ERR_SOCKET, _TIMEOUT,
 * _LOGIN, _PROTOCOL). */
erh_status erh_redis_connect(erh_redis *redis, const erh_config *config, unsigned timeout_ms);
void erh_redis_close(erh_redis *redis);
bool erh_redis_connected(const erh_redis *redis);
/* The socket to poll() while idle, or -1 when not connected. */
int erh_redis_fd(const erh_redis *redis);
/* The socket is readable while no reply is awaited: Redis closed the connection (or sent what no
 * one asked for). Closes the connection, noting why in errstr. */
void erh_redis_lost_idle(erh_redis *redis);

/* SCRIPT LOAD: fills script->sha. */
erh_status erh_redis_load(erh_redis *redis, erh_redis_script *script);

/* Queue one command in the output buffer (nothing is sent yet). */
erh_status erh_redis_append(erh_redis *redis, int argc, const char **argv, const size_t *lens);
/* Send everything queued. */
erh_status erh_redis_flush(erh_redis *redis);
/* The next reply, waiting at most timeout_ms for each piece of it; free it with erh_redis_free_reply.
 * An error reply from Redis is a reply (ERH_OK), not a failure; a broken or silent connection is. */
erh_status erh_redis_read(erh_redis *redis, struct redisReply **reply);
/* append + flush + read. */
erh_status erh_redis_call(erh_redis *redis, int argc, const char **argv, const size_t *lens,
                          struct redisReply **reply);
void erh_redis_free_reply(struct redisReply *reply);
/* A reply the caller cannot use (an error, or not the shape expected): note it in errstr, prefixed
 * by what, and close the connection. Returns ERH_ERR_PROTOCOL. */
erh_status erh_redis_give_up(erh_redis *redis, const char *what, const struct redisReply *reply);

/* Error replies. NOSCRIPT means the script must be loaded again; a transient error (LOADING, BUSY,
 * OOM, READONLY, ..., also as Redis before 7 wraps them in a script's error) means the command may
 * succeed later, unchanged. */
bool erh_redis_is_error(const struct redisReply *reply);
bool erh_redis_is_noscript(const struct redisReply *reply);
bool erh_redis_is_transient(const struct redisReply *reply);

#endif
