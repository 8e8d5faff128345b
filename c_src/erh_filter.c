#include "erh_filter.h"

#include <stdlib.h>
#include <string.h>

bool erh_filter_valid(const char *filter, size_t filter_len)
{
    if (filter_len == 0 || memchr(filter, '\0', filter_len))
        return false;
    for (size_t i = 0; i < filter_len; i++) {
        bool level_start = i == 0 || filter[i - 1] == '/';
        bool last = i + 1 == filter_len;
        bool level_end = last || filter[i + 1] == '/';
        if (filter[i] == '+' && !(level_start && level_end))
            return false;
        if (filter[i] == '#' && !(level_start && last))
            return false;
    }
    return true;
}

/* Index of the '/' that ends the level starting at from, or len for the last level. */
static size_t level_end(const char *s, size_t from, size_t len)
{
    const char *slash = memchr(s + from, '/', len - from);
    return slash ? (size_t)(slash - s) : len;
}

bool erh_filter_match(const char *filter, size_t filter_len, const char *topic, size_t topic_len)
{
    if (!topic)
        topic = ""; /* an empty binary may arrive without a pointer */
    /* MQTT 3.1.1 §4.7.2: wildcards at the first level do not reach into "$..." topics. */
    if (topic_len && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    size_t f = 0, t = 0; /* both at the start of a level */
    for (;;) {
        size_t f_end = level_end(filter, f, filter_len);
        size_t t_end = level_end(topic, t, topic_len);
        if (f_end - f == 1 && filter[f] == '#')
            return true; /* valid filters hold '#' only as their last level */
        bool plus = f_end - f == 1 && filter[f] == '+';
        if (!plus && (f_end - f != t_end - t || memcmp(filter + f, topic + t, f_end - f)))
            return false;
        f = f_end, t = t_end;
        if (f == filter_len || t == topic_len)
            break;
        f++, t++; /* the '/' of both */
    }
    if (f == filter_len)
        return t == topic_len;
    /* The topic ended first: "a/#" also matches "a", the parent of its levels (§4.7.1.2). */
    return filter_len - f == 2 && memcmp(filter + f, "/#", 2) == 0;
}

erh_status erh_filter_set_init(erh_filter_set *set, const char *const *filters, const size_t *lens,
                               size_t count, size_t *bad_index)
{
    *set = (erh_filter_set){0};
    for (size_t i = 0; i < count; i++) {
        if (!erh_filter_valid(filters[i], lens[i])) {
            if (bad_index)
                *bad_index = i;
            return ERH_ERR_BADARG;
        }
    }
    if (count == 0)
        return ERH_OK;
    set->filters = calloc(count, sizeof *set->filters);
    set->lens = calloc(count, sizeof *set->lens);
    set->count = count; /* erh_filter_set_free copes with the NULL entries of a half-made set */
    if (!set->filters || !set->lens)
        goto nomem;
    for (size_t i = 0; i < count; i++) {
        /* A trailing NUL keeps the copies printable in a debugger or a log line. */
        char *copy = malloc(lens[i] + 1);
        if (!copy)
            goto nomem;
        memcpy(copy, filters[i], lens[i]);
        copy[lens[i]] = '\0';
        set->filters[i] = copy;
        set->lens[i] = lens[i];
    }
    return ERH_OK;
nomem:
    erh_filter_set_free(set);
    return ERH_ERR_NOMEM;
}

bool erh_filter_set_match(const erh_filter_set *set, const char *topic, size_t topic_len)
{
    for (size_t i = 0; i < set->count; i++)
        if (erh_filter_match(set->filters[i], set->lens[i], topic, topic_len))
            return true;
    return false;
}

void erh_filter_set_free(erh_filter_set *set)
{
    for (size_t i = 0; set->filters && i < set->count; i++)
        free(set->filters[i]);
    free(set->filters);
    free(set->lens);
    *set = (erh_filter_set){0};
}
