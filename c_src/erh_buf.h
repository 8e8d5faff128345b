/* Counted byte strings and a growable output buffer. */
#ifndef ERH_BUF_H
#define ERH_BUF_H

#include <stddef.h>

#include "erh_status.h"

/* A borrowed run of bytes; data == NULL means "absent" (JSON null), which is not the same as len == 0. */
typedef struct erh_bytes {
    const char *data;
    size_t len;
} erh_bytes;

/* An owned buffer that grows; len bytes are used out of cap. */
typedef struct erh_buf {
    char *data;
    size_t len;
    size_t cap;
} erh_buf;

/* Make room for at least cap bytes in total; keeps the content. */
erh_status erh_buf_reserve(erh_buf *buf, size_t cap);
erh_status erh_buf_append(erh_buf *buf, const char *data, size_t len);
void erh_buf_free(erh_buf *buf);

#endif
