#include "erh_utf8.h"

#include <stdint.h>
#include <string.h>

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Length of the well-formed character at s (RFC 3629, Unicode Table 3-7), or 0 when ill-formed;
 * then *bad is the length of its maximal ill-formed subpart: the lead byte plus the continuation
 * bytes that were still acceptable, so one U+FFFD replaces them (Unicode §3.9). */
static size_t char_len(const unsigned char *s, size_t len, size_t *bad)
{
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    size_t need;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        need = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        need = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        need = 4;
    else {
        *bad = 1; /* a continuation byte, an overlong lead C0/C1, or above U+10FFFF */
        return 0;
    }
    if (s[0] == 0xE0)
        lo = 0xA0; /* overlong */
    else if (s[0] == 0xED)
        hi = 0x9F; /* surrogates D800-DFFF */
    else if (s[0] == 0xF0)
        lo = 0x90; /* overlong */
    else if (s[0] == 0xF4)
        hi = 0x8F; /* above U+10FFFF */

    size_t i = 1;
    for (; i < need && i < len; i++) {
        if (s[i] < lo || s[i] > hi)
            break;
        lo = 0x80, hi = 0xBF;
    }
    if (i == need)
        return need;
    *bad = i;
    return 0;
}

static bool ascii8(const unsigned char *s)
{
    uint64_t word;
    memcpy(&word, s, sizeof word);
    return !(word & 0x8080808080808080u);
}

/* Length of the well-formed prefix of s. ASCII, the common case, is skipped eight bytes at a time. */
static size_t valid_prefix(const unsigned char *s, size_t len)
{
    size_t i = 0, bad;
    while (i < len) {
        if (len - i >= 8 && ascii8(s + i)) {
            i += 8;
            continue;
        }
        size_t n = char_len(s + i, len - i, &bad);
        if (!n)
            break;
        i += n;
    }
    return i;
}

bool erh_utf8_valid(const char *data, size_t len)
{
    return valid_prefix((const unsigned char *)data, len) == len;
}

erh_status erh_utf8_sanitize(const char *data, size_t len, erh_buf *out)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t i = 0;
    for (;;) {
        size_t good = valid_prefix(s + i, len - i), bad = 1;
        erh_status st = erh_buf_append(out, data + i, good);
        i += good;
        if (st != ERH_OK || i == len)
            return st;
        char_len(s + i, len - i, &bad);
        st = erh_buf_append(out, replacement, sizeof replacement - 1);
        if (st != ERH_OK)
            return st;
        i += bad;
    }
}
