#include "erh_stats.h"

static const char *const names[ERH_C__COUNT] = {
    [ERH_C_RECEIVED] = "received",
    [ERH_C_FILTERED] = "filtered",
    [ERH_C_QUEUED] = "queued",
    [ERH_C_DROPPED] = "dropped",
    [ERH_C_PUBLISHED] = "published",
    [ERH_C_CONFIRMED] = "confirmed",
    [ERH_C_NACKED] = "nacked",
    [ERH_C_RETURNED] = "returned",
    [ERH_C_UNROUTABLE] = "unroutable",
    [ERH_C_RETRIED] = "retried",
    [ERH_C_RECONNECTS] = "reconnects",
    [ERH_C_CONNECT_FAILURES] = "connect_failures",
    [ERH_C_BLOCKED] = "blocked",
    [ERH_C_ENCODE_ERRORS] = "encode_errors",
    [ERH_C_UNDELIVERED] = "undelivered",
    [ERH_C_SPOOLED] = "spooled",
    [ERH_C_REPLAYED] = "replayed",
    [ERH_C_SPOOL_CORRUPT] = "spool_corrupt",
    [ERH_C_SPOOL_ERRORS] = "spool_errors",
    [ERH_C_PAYLOADS_OMITTED] = "payloads_omitted",
    [ERH_C_PRESENCE_QUEUED] = "presence_queued",
    [ERH_C_PRESENCE_DROPPED] = "presence_dropped",
    [ERH_C_PRESENCE_APPLIED] = "presence_applied",
    [ERH_C_PRESENCE_IGNORED] = "presence_ignored",
    [ERH_C_PRESENCE_RETRIED] = "presence_retried",
    [ERH_C_PRESENCE_ERRORS] = "presence_errors",
    [ERH_C_PRESENCE_RESYNCS] = "presence_resyncs",
    [ERH_C_PRESENCE_REWRITTEN] = "presence_rewritten",
    [ERH_C_PRESENCE_SUPERSEDED] = "presence_superseded",
    [ERH_C_PRESENCE_SWEPT] = "presence_swept",
    [ERH_C_PRESENCE_UNDELIVERED] = "presence_undelivered",
    [ERH_C_PRESENCE_LOST_WRITES] = "presence_lost_writes",
    [ERH_C_REDIS_RECONNECTS] = "redis_reconnects",
    [ERH_C_REDIS_CONNECT_FAILURES] = "redis_connect_failures",
    [ERH_C_REDIS_SCRIPT_RELOADS] = "redis_script_reloads",
};

const char *erh_counter_name(erh_counter c)
{
    return (c >= 0 && c < ERH_C__COUNT) ? names[c] : "unknown";
}
