/* MQTT topic filters (MQTT 3.1.1 §4.7): '+' one level, '#' the rest; a filter that starts with a
 * wildcard never matches a topic that starts with '$', so "$SYS/..." passes only a filter naming it. */
#ifndef ERH_FILTER_H
#define ERH_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "erh_status.h"

/* True when filter is a valid MQTT topic filter: non-empty, '#' only as the whole last level,
 * '+' only as a whole level, no NUL byte. */
bool erh_filter_valid(const char *filter, size_t filter_len);

/* True when topic matches filter; filter is assumed valid. */
bool erh_filter_match(const char *filter, size_t filter_len, const char *topic, size_t topic_len);

/* A set of filters; an empty set matches no topic. */
typedef struct erh_filter_set {
    char **filters;
    size_t *lens;
    size_t count;
} erh_filter_set;

/* Copy count filters in; ERH_ERR_BADARG when one is invalid (its index in *bad_index unless
 * bad_index is NULL). On error the set is left empty. */
erh_status erh_filter_set_init(erh_filter_set *set, const char *const *filters, const size_t *lens,
                               size_t count, size_t *bad_index);
bool erh_filter_set_match(const erh_filter_set *set, const char *topic, size_t topic_len);
/* Safe on a zeroed set, and more than once. */
void erh_filter_set_free(erh_filter_set *set);

#endif
