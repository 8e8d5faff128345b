/* The Redis commands of the presence registry, built as argv arrays with explicit lengths: EVALSHA of
 * priv/presence_write.lua (connected, disconnected, gone, tick), of priv/presence_read.lua, and the
 * SSCAN of a boot's connections. Key
 * names and argument order are those the scripts document. Client ids, usernames and conn_ids may
 * hold any bytes; they are only ever copied. */
#ifndef ERH_PRESENCE_CMD_H
#define ERH_PRESENCE_CMD_H

#include <stdint.h>

#include "erh_buf.h"
#include "erh_event.h"

#define ERH_CMD_MAX_ARGS 24

/* One command being built: the bytes of every argument back to back in text. The first failure
 * sticks, so a builder adds its arguments and checks once, in erh_cmd_finish. */
typedef struct erh_cmd {
    erh_buf text;
    int argc;
    size_t off[ERH_CMD_MAX_ARGS];
    size_t lens[ERH_CMD_MAX_ARGS];
    const char *argv[ERH_CMD_MAX_ARGS];
    erh_status status;
} erh_cmd;

void erh_cmd_start(erh_cmd *cmd);
void erh_cmd_arg(erh_cmd *cmd, const char *data, size_t len);
void erh_cmd_str(erh_cmd *cmd, const char *text);
void erh_cmd_i64(erh_cmd *cmd, int64_t value);
/* One argument made of the three parts, e.g. prefix + "client:" + clientid. */
void erh_cmd_key(erh_cmd *cmd, erh_bytes prefix, const char *kind, erh_bytes name);
/* Point argv into text (which may have moved while it grew); returns the first failure, if any. */
erh_status erh_cmd_finish(erh_cmd *cmd);
void erh_cmd_free(erh_cmd *cmd);

/* Who writes: the same for every command of one plugin instance. */
typedef struct erh_presence_node {
    erh_bytes prefix;  /* redis_key_prefix */
    erh_bytes node;    /* the node name written into events */
    char boot[17];     /* this instance's boot id, 16 hex digits */
    unsigned node_ttl_ms;
    unsigned tombstone_ttl_ms;
} erh_presence_node;

void erh_presence_node_set_boot(erh_presence_node *node, uint64_t boot_id);

/* EVALSHA of a connected or disconnected event. event->seq is the seq of the connection's connect
 * (0 when not known). number: the write's, greater than any this boot sent before (the script's
 * "mark"). */
erh_status erh_presence_cmd_update(erh_cmd *cmd, const char *sha, const erh_presence_node *node,
                                   const erh_event *event, uint64_t number);
/* EVALSHA gone: end the client's connection of this boot, if Redis has one live. */
erh_status erh_presence_cmd_gone(erh_cmd *cmd, const char *sha, const erh_presence_node *node, erh_bytes clientid,
                                 uint64_t number);
/* EVALSHA tick: refresh this boot's liveness, check that Redis has the write numbered acknowledged
 * (the last one it replied to), and sweep at most limit connections of dead boots. */
erh_status erh_presence_cmd_tick(erh_cmd *cmd, const char *sha, const erh_presence_node *node, unsigned limit,
                                 uint64_t acknowledged);
/* SSCAN of this boot's set of live connections, from cursor ("0" to begin), about count at a time. */
erh_status erh_presence_cmd_scan(erh_cmd *cmd, const erh_presence_node *node, erh_bytes cursor, unsigned count);
/* EVALSHA of the read script for one client. */
erh_status erh_presence_cmd_read(erh_cmd *cmd, const char *sha, erh_bytes prefix, erh_bytes clientid);

#endif
