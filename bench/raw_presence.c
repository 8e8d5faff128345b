/* The limit of the presence registry on this machine: one hiredis client running the plugin's own
 * write script (priv/presence_write.lua) with EVALSHA, pipelined in batches as redis-benchmark -P
 * does. The commands are built by the plugin's code (c_src/erh_presence_cmd.c, linked in), so the
 * keys and arguments are those the plugin sends; no hook, no queue, no NIF.
 *
 *   raw_presence HOST PORT SCRIPT PREFIX NODE CLIENTS BATCH
 *
 * Connects CLIENTS clients ("bench-1"...), then disconnects every second one: CLIENTS + CLIENTS / 2
 * updates, each of which must change the registry (the script answers 1).
 *
 * Prints "updates N seconds S cpu C": S from the first command sent to the last reply, C this
 * process's CPU time in seconds; exits 0, or says what failed on stderr and exits 1. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "bench_util.h"
#include "erh_presence_cmd.h"

/* The fields the hook copies from EMQX's client info, as erh_bench gives them. */
#define USERNAME "fleet-a"
#define IPADDRESS "192.168.7.21"

static redisContext *open_redis(const char *host, int port)
{
    redisContext *ctx = redisConnect(host, port);
    if (!ctx)
        die("connecting", "out of memory");
    if (ctx->err)
        die("connecting", ctx->errstr);
    return ctx;
}

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        die(path, "cannot open");
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    rewind(file);
    char *text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, file) != (size_t)size)
        die(path, "cannot read");
    text[size] = '\0';
    fclose(file);
    return text;
}

/* SCRIPT LOAD: the SHA1 EVALSHA names, as the plugin loads it on every connection. */
static void load_script(redisContext *ctx, const char *path, char sha[41])
{
    char *script = read_file(path);
    redisReply *reply = redisCommand(ctx, "SCRIPT LOAD %s", script);
    if (!reply || reply->type != REDIS_REPLY_STRING || reply->len != 40)
        die("SCRIPT LOAD", reply && reply->type == REDIS_REPLY_ERROR ? reply->str : ctx->errstr);
    memcpy(sha, reply->str, 41);
    freeReplyObject(reply);
    free(script);
}

/* The event the hook makes of client i: conn_id, as the plugin's, is node/channel pid/connected_at. */
typedef struct client_event {
    erh_event event;
    char clientid[32];
    char conn_id[160];
} client_event;

static void client_event_init(client_event *c, erh_bytes node, uint64_t i, bool connected, int64_t at)
{
    int id_len = snprintf(c->clientid, sizeof c->clientid, "bench-%" PRIu64, i);
    int conn_len = snprintf(c->conn_id, sizeof c->conn_id, "%.*s/<0.%" PRIu64 ".0>/%" PRId64, (int)node.len,
                            node.data, 1000 + i % 4, at);
    c->event = (erh_event){.type = connected ? ERH_EV_CONNECTED : ERH_EV_DISCONNECTED,
                           .seq = i,
                           .connected_at = at,
                           .disconnected_at = connected ? 0 : at + 1};
    c->event.field[ERH_F_CLIENTID] = (erh_bytes){c->clientid, (size_t)id_len};
    c->event.field[ERH_F_CONN_ID] = (erh_bytes){c->conn_id, (size_t)conn_len};
    c->event.field[ERH_F_USERNAME] = (erh_bytes){USERNAME, strlen(USERNAME)};
    c->event.field[ERH_F_IPADDRESS] = (erh_bytes){IPADDRESS, strlen(IPADDRESS)};
}

/* Update u of the run: the connects of clients 1..clients, then the disconnects of the even ones. */
static void update_event(client_event *c, erh_bytes node, uint64_t u, uint64_t clients, int64_t t0)
{
    uint64_t i = u < clients ? u + 1 : 2 * (u - clients + 1);
    client_event_init(c, node, i, u < clients, t0 + (int64_t)i);
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT SCRIPT PREFIX NODE CLIENTS BATCH\n", argv[0]);
        return 2;
    }
    int port = (int)parse_count(argv[2], "PORT");
    uint64_t clients = parse_count(argv[6], "CLIENTS");
    uint64_t batch = parse_count(argv[7], "BATCH");
    uint64_t updates = clients + clients / 2;
    erh_presence_node node = {.prefix = {argv[4], strlen(argv[4])}, .node = {argv[5], strlen(argv[5])},
                              .node_ttl_ms = 30000, .tombstone_ttl_ms = 300000};
    erh_presence_node_set_boot(&node, (uint64_t)time(NULL));

    redisContext *ctx = open_redis(argv[1], port);
    char sha[41];
    load_script(ctx, argv[3], sha);

    erh_cmd cmd = {0};
    client_event c;
    int64_t t0 = (int64_t)time(NULL) * 1000;
    double start = now_s(), start_cpu = cpu_s();
    for (uint64_t sent = 0; sent < updates;) {
        uint64_t n = updates - sent < batch ? updates - sent : batch;
        for (uint64_t k = 0; k < n; k++) {
            update_event(&c, node.node, sent + k, clients, t0);
            if (erh_presence_cmd_update(&cmd, sha, &node, &c.event, sent + k + 1) != ERH_OK)
                die("building a command", "out of memory");
            if (redisAppendCommandArgv(ctx, cmd.argc, cmd.argv, cmd.lens) != REDIS_OK)
                die("sending", ctx->errstr);
        }
        for (uint64_t k = 0; k < n; k++) {
            redisReply *reply;
            if (redisGetReply(ctx, (void **)&reply) != REDIS_OK)
                die("reading a reply", ctx->errstr);
            if (reply->type == REDIS_REPLY_ERROR)
                die("EVALSHA", reply->str);
            if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1)
                die("EVALSHA", "an update changed nothing");
            freeReplyObject(reply);
        }
        sent += n;
    }
    double seconds = now_s() - start, cpu = cpu_s() - start_cpu;

    printf("updates %" PRIu64 " seconds %.6f cpu %.6f\n", updates, seconds, cpu);
    erh_cmd_free(&cmd);
    redisFree(ctx);
    return 0;
}
