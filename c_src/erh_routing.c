#include "erh_routing.h"

#include <string.h>

#define PLACEHOLDER(token, field, dots) {token, sizeof token - 1, field, dots}

static const struct placeholder {
    const char *token;
    size_t len;
    erh_field field;
    bool dots; /* '/' becomes '.', so MQTT levels become AMQP topic-exchange words */
} placeholders[] = {
    PLACEHOLDER("${clientid}", ERH_F_CLIENTID, false),
    PLACEHOLDER("${username}", ERH_F_USERNAME, false),
    PLACEHOLDER("${topic}", ERH_F_TOPIC, true),
};

/* The placeholder that at (pointing at "${") opens, or NULL for an unknown or unterminated one. */
static const struct placeholder *placeholder_at(const char *at)
{
    for (size_t i = 0; i < sizeof placeholders / sizeof placeholders[0]; i++)
        if (strncmp(at, placeholders[i].token, placeholders[i].len) == 0)
            return &placeholders[i];
    return NULL;
}

bool erh_routing_template_valid(const char *template_str)
{
    for (const char *open = strstr(template_str, "${"); open; ) {
        const struct placeholder *placeholder = placeholder_at(open);
        if (!placeholder)
            return false;
        open = strstr(open + placeholder->len, "${");
    }
    return true;
}

/* The key being rendered: once a piece does not fit, it is cut and later pieces are dropped. */
typedef struct key_writer {
    char *out;
    size_t len;
    bool cut;
} key_writer;

static bool is_continuation(unsigned char byte)
{
    return (byte & 0xC0) == 0x80;
}

static void put(key_writer *w, const char *data, size_t len, bool dots)
{
    if (w->cut || len == 0)
        return;
    size_t room = ERH_ROUTING_KEY_MAX - w->len;
    size_t fit = len < room ? len : room;
    char *at = w->out + w->len;
    memcpy(at, data, fit);
    for (size_t i = 0; dots && i < fit; i++)
        if (at[i] == '/')
            at[i] = '.';
    w->len += fit;
    if (fit == len)
        return;
    /* Drop the start of a character the cut splits: at most 3 bytes, as UTF-8 characters have at most 4. */
    w->cut = true;
    unsigned char next = (unsigned char)data[fit];
    for (int i = 0; i < 3 && w->len > 0 && is_continuation(next); i++)
        next = (unsigned char)w->out[--w->len];
}

erh_status erh_routing_render(const char *template_str, const erh_event *event,
                              char out[ERH_ROUTING_KEY_MAX + 1], size_t *out_len)
{
    key_writer w = {out, 0, false};
    for (const char *at = template_str; *at; ) {
        const char *open = strstr(at, "${");
        size_t text_len = open ? (size_t)(open - at) : strlen(at);
        put(&w, at, text_len, false);
        at += text_len;
        if (!open)
            break;
        const struct placeholder *placeholder = placeholder_at(open);
        if (placeholder) {
            const erh_bytes *value = &event->field[placeholder->field];
            put(&w, value->data, value->len, placeholder->dots);
            at += placeholder->len;
        } else {
            put(&w, open, 2, false); /* templates are checked at start; copy a stray "${" as text */
            at += 2;
        }
    }
    out[w.len] = '\0';
    *out_len = w.len;
    return w.cut ? ERH_ERR_TOO_LONG : ERH_OK;
}
