#include "erh_base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t erh_base64_encoded_len(size_t len)
{
    return (len / 3 + (len % 3 != 0)) * 4;
}

erh_status erh_base64_encode(const char *data, size_t len, erh_buf *out)
{
    if (len == 0)
        return ERH_OK; /* out->data may still be NULL, and NULL + 0 is undefined */
    /* Past this the encoded length no longer fits a size_t. */
    if (len / 3 >= SIZE_MAX / 4 - 1)
        return ERH_ERR_NOMEM;
    size_t encoded = erh_base64_encoded_len(len);
    if (encoded > SIZE_MAX - out->len)
        return ERH_ERR_NOMEM;
    erh_status st = erh_buf_reserve(out, out->len + encoded);
    if (st != ERH_OK)
        return st;

    const unsigned char *in = (const unsigned char *)data;
    char *at = out->data + out->len;
    size_t i = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t group = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *at++ = alphabet[group >> 18];
        *at++ = alphabet[group >> 12 & 0x3f];
        *at++ = alphabet[group >> 6 & 0x3f];
        *at++ = alphabet[group & 0x3f];
    }
    if (i < len) {
        /* One or two bytes left: pad the last group with '='. */
        uint32_t group = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        *at++ = alphabet[group >> 18];
        *at++ = alphabet[group >> 12 & 0x3f];
        *at++ = i + 1 < len ? alphabet[group >> 6 & 0x3f] : '=';
        *at++ = '=';
    }
    out->len += encoded;
    return ERH_OK;
}
