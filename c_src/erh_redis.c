#include "erh_redis.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <hiredis.h>

static erh_status fail(erh_redis *redis, erh_status st, const char *what, const char *why, size_t why_len)
{
    snprintf(redis->errstr, sizeof redis->errstr, "%s: %.*s", what, (int)(why_len < 200 ? why_len : 200), why);
    erh_redis_close(redis);
    return st;
}

/* A failure hiredis recorded in the context. */
static erh_status fail_ctx(erh_redis *redis, const char *what)
{
    const char *why = redis->ctx && redis->ctx->errstr[0] ? redis->ctx->errstr : "connection lost";
    erh_status st = redis->ctx && redis->ctx->err == REDIS_ERR_OOM ? ERH_ERR_NOMEM : ERH_ERR_SOCKET;
    char copy[sizeof redis->ctx->errstr];
    snprintf(copy, sizeof copy, "%s", why); /* the context is freed by fail() */
    return fail(redis, st, what, copy, strlen(copy));
}

void erh_redis_close(erh_redis *redis)
{
    if (redis->ctx)
        redisFree(redis->ctx);
    redis->ctx = NULL;
}

bool erh_redis_connected(const erh_redis *redis)
{
    return redis->ctx != NULL;
}

int erh_redis_fd(const erh_redis *redis)
{
    return redis->ctx ? redis->ctx->fd : -1;
}

void erh_redis_lost_idle(erh_redis *redis)
{
    if (redisBufferRead(redis->ctx) != REDIS_OK)
        fail_ctx(redis, "idle");
    else
        fail(redis, ERH_ERR_PROTOCOL, "idle", "unexpected data from Redis", 26);
}

static struct timeval timeval_ms(unsigned ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* A command whose reply must be +OK: AUTH and SELECT. */
static erh_status expect_ok(erh_redis *redis, erh_status refused, const char *what, int argc, const char **argv,
                            const size_t *lens)
{
    redisReply *reply;
    erh_status st = erh_redis_call(redis, argc, argv, lens, &reply);
    if (st != ERH_OK)
        return st;
    if (reply->type == REDIS_REPLY_ERROR)
        st = fail(redis, refused, what, reply->str, reply->len);
    else if (reply->type != REDIS_REPLY_STATUS)
        st = erh_redis_give_up(redis, what, reply);
    freeReplyObject(reply);
    return st;
}

static erh_status log_in(erh_redis *redis, const erh_config *config)
{
    const char *user = config->redis_username, *password = config->redis_password;
    if (user[0]) {
        const char *argv[] = {"AUTH", user, password};
        const size_t lens[] = {4, strlen(user), strlen(password)};
        return expect_ok(redis, ERH_ERR_LOGIN, "AUTH refused", 3, argv, lens);
    }
    if (password[0]) {
        const char *argv[] = {"AUTH", password};
        const size_t lens[] = {4, strlen(password)};
        return expect_ok(redis, ERH_ERR_LOGIN, "AUTH refused", 2, argv, lens);
    }
    return ERH_OK;
}

erh_status erh_redis_connect(erh_redis *redis, const erh_config *config, unsigned timeout_ms)
{
    erh_redis_close(redis);
    redis->timeout_ms = timeout_ms;
    redis->errstr[0] = '\0';
    const erh_server *server = &config->redis_server;
    redis->ctx = redisConnectWithTimeout(server->host, server->port, timeval_ms(timeout_ms));
    if (!redis->ctx)
        return fail(redis, ERH_ERR_NOMEM, "connect", "out of memory", 13);
    if (redis->ctx->err)
        return fail_ctx(redis, "connect");
    /* Bounds the blocking writes of erh_redis_flush; reads wait in poll() instead. */
    if (redisSetTimeout(redis->ctx, timeval_ms(timeout_ms)) != REDIS_OK)
        return fail_ctx(redis, "connect");
    erh_status st = log_in(redis, config);
    if (st != ERH_OK || config->redis_db == 0)
        return st;
    char db[16];
    const char *argv[] = {"SELECT", db};
    const size_t lens[] = {6, (size_t)snprintf(db, sizeof db, "%u", config->redis_db)};
    return expect_ok(redis, ERH_ERR_PROTOCOL, "SELECT refused", 2, argv, lens);
}

erh_status erh_redis_load(erh_redis *redis, erh_redis_script *script)
{
    const char *argv[] = {"SCRIPT", "LOAD", script->text};
    const size_t lens[] = {6, 4, strlen(script->text)};
    redisReply *reply;
    erh_status st = erh_redis_call(redis, 3, argv, lens, &reply);
    if (st != ERH_OK)
        return st;
    if (reply->type == REDIS_REPLY_STRING && reply->len == sizeof script->sha - 1) {
        memcpy(script->sha, reply->str, reply->len);
        script->sha[reply->len] = '\0';
    } else {
        st = erh_redis_give_up(redis, "SCRIPT LOAD", reply);
    }
    freeReplyObject(reply);
    return st;
}

erh_status erh_redis_append(erh_redis *redis, int argc, const char **argv, const size_t *lens)
{
    if (!redis->ctx)
        return ERH_ERR_CLOSED;
    if (redisAppendCommandArgv(redis->ctx, argc, argv, lens) != REDIS_OK)
        return fail_ctx(redis, "append");
    return ERH_OK;
}

erh_status erh_redis_flush(erh_redis *redis)
{
    if (!redis->ctx)
        return ERH_ERR_CLOSED;
    int done = 0;
    do {
        if (redisBufferWrite(redis->ctx, &done) != REDIS_OK)
            return fail_ctx(redis, "write");
    } while (!done);
    return ERH_OK;
}

erh_status erh_redis_read(erh_redis *redis, redisReply **out)
{
    if (!redis->ctx)
        return ERH_ERR_CLOSED;
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(redis->ctx, &reply) != REDIS_OK)
            return fail_ctx(redis, "read");
        if (reply) {
            *out = reply;
            return ERH_OK;
        }
        struct pollfd pfd = {.fd = redis->ctx->fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)redis->timeout_ms);
        if (ready == 0)
            return fail(redis, ERH_ERR_TIMEOUT, "read", "no reply in time", 16);
        if (ready < 0 && errno != EINTR)
            return fail(redis, ERH_ERR_SYSTEM, "poll", strerror(errno), strlen(strerror(errno)));
        if (ready > 0 && redisBufferRead(redis->ctx) != REDIS_OK)
            return fail_ctx(redis, "read");
    }
}

erh_status erh_redis_call(erh_redis *redis, int argc, const char **argv, const size_t *lens, redisReply **reply)
{
    erh_status st = erh_redis_append(redis, argc, argv, lens);
    if (st == ERH_OK)
        st = erh_redis_flush(redis);
    if (st == ERH_OK)
        st = erh_redis_read(redis, reply);
    return st;
}

void erh_redis_free_reply(redisReply *reply)
{
    if (reply)
        freeReplyObject(reply);
}

erh_status erh_redis_give_up(erh_redis *redis, const char *what, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR)
        return fail(redis, ERH_ERR_PROTOCOL, what, reply->str, reply->len);
    return fail(redis, ERH_ERR_PROTOCOL, what, "unexpected reply", 16);
}

bool erh_redis_is_error(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR;
}

static bool error_starts(const redisReply *reply, const char *code)
{
    size_t n = strlen(code);
    return reply->type == REDIS_REPLY_ERROR && reply->len >= n && memcmp(reply->str, code, n) == 0 &&
           (reply->len == n || reply->str[n] == ' ');
}

bool erh_redis_is_noscript(const redisReply *reply)
{
    return error_starts(reply, "NOSCRIPT");
}

/* Before Redis 7 an error a command met inside a script comes back wrapped:
 * "ERR Error running script (call to f_<sha>): @user_script:9: @user_script: 9: -OOM command not ...". */
static bool error_wrapped(const redisReply *reply, const char *code)
{
    static const char prefix[] = "ERR Error running script";
    if (!error_starts(reply, "ERR") || reply->len < sizeof prefix - 1 ||
        memcmp(reply->str, prefix, sizeof prefix - 1) != 0)
        return false;
    char marker[32];
    int n = snprintf(marker, sizeof marker, ": -%s", code);
    const char *at = memmem(reply->str, reply->len, marker, (size_t)n);
    const char *after = at ? at + n : NULL;
    return at && (after == reply->str + reply->len || *after == ' ');
}

bool erh_redis_is_transient(const redisReply *reply)
{
    static const char *const codes[] = {"LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN",
                                        "CLUSTERDOWN", "NOREPLICAS"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (error_starts(reply, codes[i]) || error_wrapped(reply, codes[i]))
            return true;
    return false;
}
