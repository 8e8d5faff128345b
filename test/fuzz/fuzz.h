/* What the harnesses share: reading fields out of libFuzzer's input, a check that aborts with a
 * message (libFuzzer then keeps the input as a finding), and plain reference versions of the
 * MQTT and template rules to compare the real code with. Each harness includes this once. */
#ifndef ERH_FUZZ_H
#define ERH_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erh_buf.h"

/* The input being read. Past its end every read gives zeros and empty fields. */
typedef struct fuzz_input {
    const uint8_t *data;
    size_t size;
} fuzz_input;

static inline uint8_t fuzz_byte(fuzz_input *in)
{
    if (in->size == 0)
        return 0;
    in->size--;
    return *in->data++;
}

static inline uint64_t fuzz_u64(fuzz_input *in)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = value << 8 | fuzz_byte(in);
    return value;
}

/* A field: a two-byte big-endian length, then that many bytes (fewer when the input ends first).
 * Seeds are written in the same form. */
static inline erh_bytes fuzz_field(fuzz_input *in)
{
    size_t len = (size_t)fuzz_byte(in) << 8;
    len |= fuzz_byte(in);
    if (len > in->size)
        len = in->size;
    erh_bytes field = {(const char *)in->data, len};
    in->data += len;
    in->size -= len;
    return field;
}

/* A copy of a field as a C string, cut at its first NUL (configuration values are C strings). */
static inline char *fuzz_cstring(erh_bytes field)
{
    size_t len = field.len ? strnlen(field.data, field.len) : 0;
    char *text = malloc(len + 1);
    if (!text)
        abort();
    if (len)
        memcpy(text, field.data, len);
    text[len] = '\0';
    return text;
}

#define FUZZ_CHECK(cond, ...)                                                                   \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);            \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fputc('\n', stderr);                                                                \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static inline bool fuzz_equal(erh_bytes a, const char *b, size_t b_len)
{
    return a.len == b_len && (b_len == 0 || memcmp(a.data, b, b_len) == 0);
}

/* ---- reference rules, written for clarity rather than speed ---- */

/* The level of s (length len) that starts at *at; *at moves past it and its '/'. */
static inline erh_bytes fuzz_next_level(const char *s, size_t len, size_t *at)
{
    size_t start = *at, end = start;
    while (end < len && s[end] != '/')
        end++;
    *at = end + 1;
    return (erh_bytes){s + start, end - start};
}

static inline bool fuzz_level_is(erh_bytes level, char c)
{
    return level.len == 1 && level.data[0] == c;
}

/* MQTT 3.1.1 §4.7: a non-empty filter, no NUL; '+' and '#' only as whole levels; '#' only last. */
static inline bool ref_filter_valid(const char *filter, size_t len)
{
    if (len == 0 || memchr(filter, '\0', len))
        return false;
    for (size_t at = 0; at <= len;) {
        erh_bytes level = fuzz_next_level(filter, len, &at);
        bool wild = memchr(level.data, '+', level.len) || memchr(level.data, '#', level.len);
        if (wild && !fuzz_level_is(level, '+') && !fuzz_level_is(level, '#'))
            return false;
        if (fuzz_level_is(level, '#') && at <= len)
            return false;
    }
    return true;
}

/* Level by level: '+' takes one level, '#' the rest including none ("a/#" matches "a");
 * a first-level wildcard does not match a topic starting with '$'. */
static inline bool ref_filter_match(const char *filter, size_t filter_len, const char *topic, size_t topic_len)
{
    if (topic_len > 0 && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    size_t f = 0, t = 0;
    while (f <= filter_len) {
        erh_bytes want = fuzz_next_level(filter, filter_len, &f);
        if (fuzz_level_is(want, '#'))
            return true;
        if (t > topic_len)
            return false; /* the topic has fewer levels */
        erh_bytes have = fuzz_next_level(topic, topic_len, &t);
        if (!fuzz_level_is(want, '+') && !fuzz_equal(have, want.data, want.len))
            return false;
    }
    return t > topic_len;
}

static const char *const fuzz_placeholders[] = {"${clientid}", "${username}", "${topic}"};

/* The placeholder that starts at s, or -1. */
static inline int ref_placeholder_at(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strncmp(s, fuzz_placeholders[i], strlen(fuzz_placeholders[i])) == 0)
            return i;
    return -1;
}

/* A routing-key template is valid when every "${" opens a known placeholder. */
static inline bool ref_template_valid(const char *template_str)
{
    for (const char *at = template_str; *at; at++) {
        if (at[0] == '$' && at[1] == '{') {
            int i = ref_placeholder_at(at);
            if (i < 0)
                return false;
            at += strlen(fuzz_placeholders[i]) - 1;
        }
    }
    return true;
}

#endif
