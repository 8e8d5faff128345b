#include "erh_status.h"

static const char *const messages[] = {
    [-ERH_OK] = "ok",
    [-ERH_ERR_NOMEM] = "out of memory",
    [-ERH_ERR_BADARG] = "bad argument",
    [-ERH_ERR_TOO_LONG] = "value too long",
    [-ERH_ERR_ENCODE] = "JSON encoding failed",
    [-ERH_ERR_SOCKET] = "connection failed",
    [-ERH_ERR_LOGIN] = "login refused",
    [-ERH_ERR_PROTOCOL] = "protocol error",
    [-ERH_ERR_TIMEOUT] = "timed out",
    [-ERH_ERR_CLOSED] = "closed",
    [-ERH_ERR_FULL] = "buffer full",
    [-ERH_ERR_SYSTEM] = "system call failed",
    [-ERH_ERR_BUSY] = "in use",
    [-ERH_ERR_AGAIN] = "would wait",
};

const char *erh_strerror(erh_status status)
{
    if (status > 0 || status < ERH_STATUS_MIN || messages[-status] == 0)
        return "unknown status";
    return messages[-status];
}
