/* Routing keys from templates: "${clientid}", "${username}" and "${topic}" (with '/' turned into '.')
 * are replaced by the event's values; everything else is copied. */
#ifndef ERH_ROUTING_H
#define ERH_ROUTING_H

#include <stdbool.h>
#include <stddef.h>

#include "erh_event.h"

/* AMQP routing keys are short strings: at most 255 bytes. */
#define ERH_ROUTING_KEY_MAX 255

/* True when every "${" in template opens one of the known placeholders. Check at configuration
 * time: erh_routing_render copies an unknown "${" as plain text. */
bool erh_routing_template_valid(const char *template_str);

/* Render into out (ERH_ROUTING_KEY_MAX + 1 bytes, NUL-terminated), *out_len set.
 * A key longer than ERH_ROUTING_KEY_MAX is cut at that length at a UTF-8 character boundary
 * and ERH_ERR_TOO_LONG is returned with the cut key still usable. An absent username renders empty. */
erh_status erh_routing_render(const char *template_str, const erh_event *event,
                              char out[ERH_ROUTING_KEY_MAX + 1], size_t *out_len);

#endif
