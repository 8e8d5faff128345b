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
    [ERH_C_ENCODE_ERRORS] = "encode_errors",
    [ERH_C_UNDELIVERED] = "undelivered",
    [ERH_C_SPOOLED] = "spooled",
    [ERH_C_REPLAYED] = "replayed",
    [ERH_C_SPOOL_CORRUPT] = "spool_corrupt",
    [ERH_C_SPOOL_ERRORS] = "spool_errors",
    [ERH_C_PAYLOADS_OMITTED] = "payloads_omitted",
};

const char *erh_counter_name(erh_counter c)
{
    return (c >= 0 && c < ERH_C__COUNT) ? names[c] : "unknown";
}
