#include "erh_buf.h"

#include <stdlib.h>
#include <string.h>

erh_status erh_buf_reserve(erh_buf *buf, size_t cap)
{
    if (cap <= buf->cap)
        return ERH_OK;
    size_t grown = buf->cap ? buf->cap : 256;
    while (grown < cap) {
        if (grown > (size_t)-1 / 2)
            return ERH_ERR_NOMEM;
        grown *= 2;
    }
    char *data = realloc(buf->data, grown);
    if (!data)
        return ERH_ERR_NOMEM;
    buf->data = data;
    buf->cap = grown;
    return ERH_OK;
}

erh_status erh_buf_append(erh_buf *buf, const char *data, size_t len)
{
    if (len > (size_t)-1 - buf->len)
        return ERH_ERR_NOMEM;
    erh_status st = erh_buf_reserve(buf, buf->len + len);
    if (st != ERH_OK)
        return st;
    if (len)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return ERH_OK;
}

void erh_buf_free(erh_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}
