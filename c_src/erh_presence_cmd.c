#include "erh_presence_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void erh_cmd_start(erh_cmd *cmd)
{
    cmd->text.len = 0;
    cmd->argc = 0;
    cmd->status = ERH_OK;
}

/* Append bytes to the argument being built (the last one). */
static void extend(erh_cmd *cmd, const char *data, size_t len)
{
    if (cmd->status == ERH_OK) {
        cmd->status = erh_buf_append(&cmd->text, data, len);
        cmd->lens[cmd->argc - 1] += len;
    }
}

static void begin_arg(erh_cmd *cmd)
{
    if (cmd->status != ERH_OK)
        return;
    if (cmd->argc == ERH_CMD_MAX_ARGS) {
        cmd->status = ERH_ERR_TOO_LONG;
        return;
    }
    cmd->off[cmd->argc] = cmd->text.len;
    cmd->lens[cmd->argc] = 0;
    cmd->argc++;
}

void erh_cmd_arg(erh_cmd *cmd, const char *data, size_t len)
{
    begin_arg(cmd);
    extend(cmd, data, len);
}

void erh_cmd_str(erh_cmd *cmd, const char *text)
{
    erh_cmd_arg(cmd, text, strlen(text));
}

void erh_cmd_i64(erh_cmd *cmd, int64_t value)
{
    char text[24];
    erh_cmd_arg(cmd, text, (size_t)snprintf(text, sizeof text, "%" PRId64, value));
}

void erh_cmd_key(erh_cmd *cmd, erh_bytes prefix, const char *kind, erh_bytes name)
{
    begin_arg(cmd);
    extend(cmd, prefix.data, prefix.len);
    extend(cmd, kind, strlen(kind));
    extend(cmd, name.data, name.len);
}

erh_status erh_cmd_finish(erh_cmd *cmd)
{
    for (int i = 0; cmd->status == ERH_OK && i < cmd->argc; i++)
        cmd->argv[i] = cmd->text.data + cmd->off[i];
    return cmd->status;
}

void erh_cmd_free(erh_cmd *cmd)
{
    erh_buf_free(&cmd->text);
    cmd->argc = 0;
}

void erh_presence_node_set_boot(erh_presence_node *node, uint64_t boot_id)
{
    snprintf(node->boot, sizeof node->boot, "%016" PRIx64, boot_id);
}

static erh_bytes cstring_bytes(const char *text)
{
    return (erh_bytes){text, strlen(text)};
}

/* EVALSHA sha numkeys: the start of every command. */
static void evalsha(erh_cmd *cmd, const char *sha, int numkeys)
{
    erh_cmd_start(cmd);
    erh_cmd_str(cmd, "EVALSHA");
    erh_cmd_str(cmd, sha);
    erh_cmd_i64(cmd, numkeys);
}

static void bytes_arg(erh_cmd *cmd, erh_bytes bytes)
{
    erh_cmd_arg(cmd, bytes.data ? bytes.data : "", bytes.len);
}

static const erh_bytes none = {"", 0};

erh_status erh_presence_cmd_update(erh_cmd *cmd, const char *sha, const erh_presence_node *node,
                                   const erh_event *event, uint64_t number)
{
    const erh_bytes *f = event->field;
    bool connected = event->type == ERH_EV_CONNECTED;
    erh_bytes boot = cstring_bytes(node->boot);
    evalsha(cmd, sha, 6);
    erh_cmd_key(cmd, node->prefix, "client:", f[ERH_F_CLIENTID]);
    erh_cmd_key(cmd, node->prefix, "online", none);
    erh_cmd_key(cmd, node->prefix, "tombstone:", f[ERH_F_CONN_ID]);
    erh_cmd_key(cmd, node->prefix, "boot:", boot);
    erh_cmd_key(cmd, node->prefix, "boots", none);
    erh_cmd_key(cmd, node->prefix, "marks", none);
    erh_cmd_str(cmd, connected ? "connected" : "disconnected");
    bytes_arg(cmd, f[ERH_F_CLIENTID]);
    bytes_arg(cmd, f[ERH_F_CONN_ID]);
    bytes_arg(cmd, node->node);
    bytes_arg(cmd, boot);
    erh_cmd_i64(cmd, event->connected_at);
    erh_cmd_i64(cmd, (int64_t)event->seq);
    erh_cmd_i64(cmd, connected ? 0 : event->disconnected_at);
    bytes_arg(cmd, f[ERH_F_IPADDRESS]);
    bytes_arg(cmd, f[ERH_F_USERNAME]);
    erh_cmd_str(cmd, f[ERH_F_USERNAME].data ? "1" : "0");
    erh_cmd_i64(cmd, node->tombstone_ttl_ms);
    bytes_arg(cmd, node->prefix);
    erh_cmd_i64(cmd, (int64_t)number);
    return erh_cmd_finish(cmd);
}

erh_status erh_presence_cmd_gone(erh_cmd *cmd, const char *sha, const erh_presence_node *node, erh_bytes clientid,
                                 uint64_t number)
{
    erh_bytes boot = cstring_bytes(node->boot);
    evalsha(cmd, sha, 3);
    erh_cmd_key(cmd, node->prefix, "online", none);
    erh_cmd_key(cmd, node->prefix, "boot:", boot);
    erh_cmd_key(cmd, node->prefix, "marks", none);
    erh_cmd_str(cmd, "gone");
    bytes_arg(cmd, clientid);
    bytes_arg(cmd, boot);
    bytes_arg(cmd, node->prefix);
    erh_cmd_i64(cmd, (int64_t)number);
    return erh_cmd_finish(cmd);
}

erh_status erh_presence_cmd_tick(erh_cmd *cmd, const char *sha, const erh_presence_node *node, unsigned limit,
                                 uint64_t acknowledged)
{
    erh_bytes boot = cstring_bytes(node->boot);
    evalsha(cmd, sha, 4);
    erh_cmd_key(cmd, node->prefix, "node:", node->node);
    erh_cmd_key(cmd, node->prefix, "boots", none);
    erh_cmd_key(cmd, node->prefix, "online", none);
    erh_cmd_key(cmd, node->prefix, "marks", none);
    erh_cmd_str(cmd, "tick");
    bytes_arg(cmd, node->node);
    bytes_arg(cmd, boot);
    erh_cmd_i64(cmd, node->node_ttl_ms);
    erh_cmd_i64(cmd, limit);
    bytes_arg(cmd, node->prefix);
    erh_cmd_i64(cmd, (int64_t)acknowledged);
    return erh_cmd_finish(cmd);
}

erh_status erh_presence_cmd_scan(erh_cmd *cmd, const erh_presence_node *node, erh_bytes cursor, unsigned count)
{
    erh_cmd_start(cmd);
    erh_cmd_str(cmd, "SSCAN");
    erh_cmd_key(cmd, node->prefix, "boot:", cstring_bytes(node->boot));
    bytes_arg(cmd, cursor);
    erh_cmd_str(cmd, "COUNT");
    erh_cmd_i64(cmd, count);
    return erh_cmd_finish(cmd);
}

erh_status erh_presence_cmd_read(erh_cmd *cmd, const char *sha, erh_bytes prefix, erh_bytes clientid)
{
    evalsha(cmd, sha, 1);
    erh_cmd_key(cmd, prefix, "client:", clientid);
    bytes_arg(cmd, prefix);
    return erh_cmd_finish(cmd);
}
