/* The JSON body of an event (DESIGN §4), written straight into a buffer. Runs on publisher threads only. */
#ifndef ERH_JSON_H
#define ERH_JSON_H

#include <stdbool.h>

#include "erh_buf.h"
#include "erh_event.h"

typedef struct erh_json_options {
    const char *node;   /* EMQX node name, the "node" field */
    bool force_base64;  /* payload_encoding = base64: every payload is base64 */
    erh_buf *scratch;   /* holds a text field that is not UTF-8 while it is sanitized; NULL: the
                         * encoder allocates one for the call when it needs it */
} erh_json_options;

/* Replace out's content with the JSON object of event (compact, UTF-8, no trailing newline).
 * Strings other than the payload that are not UTF-8 have each bad sequence replaced by U+FFFD;
 * a payload that is not UTF-8 (or any payload with force_base64) is base64 with
 * "payload_encoding":"base64". A payload marked omitted becomes "payload":null,
 * "payload_omitted":true,"payload_size":N (no payload_encoding). Absent strings (data == NULL) are null.
 * The text is what jansson prints with JSON_COMPACT: '"' and '\\' escaped, \b \f \n \r \t, other
 * bytes below 0x20 as \u00XX (upper-case hex), nothing else escaped. Reuse one out and one scratch
 * per thread to keep their allocations.
 * On error out->len is 0: ERH_ERR_NOMEM or ERH_ERR_BADARG (unknown event type). */
erh_status erh_json_encode(const erh_event *event, const erh_json_options *options, erh_buf *out);

#endif
