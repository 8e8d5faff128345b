/* UTF-8 checks for the strings that go into JSON. */
#ifndef ERH_UTF8_H
#define ERH_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#include "erh_buf.h"

/* True when data is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
 * NUL bytes are valid UTF-8. */
bool erh_utf8_valid(const char *data, size_t len);

/* Append data to out with each maximal ill-formed subpart replaced by one U+FFFD (the practice
 * Unicode §3.9 recommends: "\xE2\x82" becomes one U+FFFD, "\xC0\xAF" two). */
erh_status erh_utf8_sanitize(const char *data, size_t len, erh_buf *out);

#endif
