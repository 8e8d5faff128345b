/* Standard base64 (RFC 4648 §4, with padding). */
#ifndef ERH_BASE64_H
#define ERH_BASE64_H

#include <stddef.h>

#include "erh_buf.h"

/* Bytes needed to encode len input bytes (without a NUL). */
size_t erh_base64_encoded_len(size_t len);
/* Append the encoding of data to out. */
erh_status erh_base64_encode(const char *data, size_t len, erh_buf *out);

#endif
